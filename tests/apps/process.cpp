#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace sdmp::test {
namespace {

void check(bool ok, const char* what) {
    if (!ok)
        throw std::system_error(errno, std::generic_category(), what);
}

int exit_code_of(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int milliseconds_left(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input) {
    // A child that exits before reading all of its stdin must not kill the test with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    int in_pipe[2], out_pipe[2], err_pipe[2];
    check(pipe2(in_pipe, O_CLOEXEC) == 0 && pipe2(out_pipe, O_CLOEXEC) == 0 &&
              pipe2(err_pipe, O_CLOEXEC) == 0,
          "pipe2");
    pid_t pid = fork();
    check(pid >= 0, "fork");
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(err_pipe[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);

    // Feed stdin and drain both outputs together so no pipe fills up and stalls the child.
    ProcessResult result;
    std::size_t written = 0;
    int in_fd = in_pipe[1];
    if (input.empty()) {
        close(in_fd);
        in_fd = -1;
    }
    int open_outputs = 2;
    char buffer[65536];
    while (open_outputs > 0 || in_fd >= 0) {
        pollfd fds[3] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}, {in_fd, POLLOUT, 0}};
        check(poll(fds, 3, -1) >= 0 || errno == EINTR, "poll");
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
            } else {
                close(fds[i].fd);
                (i == 0 ? out_pipe[0] : err_pipe[0]) = -1;
                --open_outputs;
            }
        }
        if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, input.data() + written, input.size() - written);
            if (n > 0)
                written += static_cast<std::size_t>(n);
            if (n <= 0 || written == input.size()) {
                close(in_fd);
                in_fd = -1;
            }
        }
    }
    int status = 0;
    check(waitpid(pid, &status, 0) == pid, "waitpid");
    result.exit_code = exit_code_of(status);
    return result;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, std::string stderr_file)
    : stderr_file_(std::move(stderr_file)) {
    int out_pipe[2];
    check(pipe2(out_pipe, O_CLOEXEC) == 0, "pipe2");
    const int err_fd = open(stderr_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    check(err_fd >= 0, "open stderr file");
    pid_ = fork();
    check(pid_ >= 0, "fork");
    if (pid_ == 0) {
        const int null_fd = open("/dev/null", O_RDONLY);
        dup2(null_fd, 0);
        dup2(out_pipe[1], 1);
        dup2(err_fd, 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
    }
    close(out_pipe[1]);
    close(err_fd);
    out_fd_ = out_pipe[0];
    // A pidfd makes "wait for exit, with a safety timeout" a poll() instead of a sleep loop.
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
    check(pidfd_ >= 0, "pidfd_open");
}

BackgroundProcess::~BackgroundProcess() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0)
        close(out_fd_);
    if (pidfd_ >= 0)
        close(pidfd_);
}

std::string BackgroundProcess::stderr_text() const {
    std::ifstream in(stderr_file_, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string BackgroundProcess::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (const auto newline = buffered_.find('\n'); newline != std::string::npos) {
            std::string line = buffered_.substr(0, newline);
            buffered_.erase(0, newline + 1);
            return line;
        }
        pollfd fds[1] = {{out_fd_, POLLIN, 0}};
        const int ready = poll(fds, 1, milliseconds_left(deadline));
        if (ready < 0 && errno == EINTR)
            continue;
        check(ready >= 0, "poll");
        if (ready == 0)
            throw std::runtime_error("no line on stdout in time; stderr:\n" + stderr_text());
        char buffer[4096];
        const ssize_t n = read(out_fd_, buffer, sizeof buffer);
        if (n <= 0)
            throw std::runtime_error("stdout ended before a full line; stderr:\n" + stderr_text());
        buffered_.append(buffer, static_cast<std::size_t>(n));
    }
}

void BackgroundProcess::send_signal(int signal) {
    if (running())
        check(::kill(pid_, signal) == 0, "kill");
}

int BackgroundProcess::wait(std::chrono::milliseconds timeout) {
    if (!running())
        return exit_code_;
    pollfd fds[1] = {{pidfd_, POLLIN, 0}};
    int ready = 0;
    do {
        ready = poll(fds, 1, static_cast<int>(timeout.count()));
    } while (ready < 0 && errno == EINTR);
    if (ready == 0)
        ::kill(pid_, SIGKILL);  // the safety net: reap it below, then report
    int status = 0;
    check(waitpid(pid_, &status, 0) == pid_, "waitpid");
    exit_code_ = exit_code_of(status);
    if (ready == 0)
        throw std::runtime_error("process did not exit in time; stderr:\n" + stderr_text());
    return exit_code_;
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "sdmp-test-XXXXXX").string();
    check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

}  // namespace sdmp::test
