// Runs programs for tests of the real binaries: to completion (run_process), or in the
// background (BackgroundProcess, for `sdmp serve`).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sdmp::test {

struct ProcessResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

// Runs `argv` with `input` on stdin; waits for it to finish.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {});

// A program running in the background. Its stdout is a pipe read line by line with
// read_line(); its stderr goes to a file (kept for failure messages). Timeouts are safety nets
// only: nothing waits for a fixed time.
class BackgroundProcess {
  public:
    static constexpr std::chrono::milliseconds k_safety_timeout{60000};

    // Starts `argv`; stderr is appended to `stderr_file`.
    BackgroundProcess(const std::vector<std::string>& argv, std::string stderr_file);
    // Kills (SIGKILL) and reaps the process if it still runs.
    ~BackgroundProcess();
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

    // The next line of stdout, without its newline. Throws std::runtime_error (with the
    // stderr log) when stdout ends first or nothing comes within `timeout`.
    std::string read_line(std::chrono::milliseconds timeout = k_safety_timeout);
    void send_signal(int signal);
    // Waits for the process to exit and returns its exit code (128 + signal when killed by
    // one). After `timeout` it is killed and std::runtime_error is thrown.
    int wait(std::chrono::milliseconds timeout = k_safety_timeout);
    int terminate() {  // SIGTERM, then wait
        send_signal(15);
        return wait();
    }
    int kill() {  // SIGKILL, then wait
        send_signal(9);
        return wait();
    }
    bool running() const { return exit_code_ < 0; }
    pid_t pid() const { return pid_; }
    // What the process wrote to stderr so far.
    std::string stderr_text() const;

  private:
    pid_t pid_ = -1;
    int pidfd_ = -1;
    int out_fd_ = -1;
    int exit_code_ = -1;
    std::string buffered_;
    std::string stderr_file_;
};

// A fresh temporary directory, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

}  // namespace sdmp::test
