// Strict file reading, atomic writing and the public identity line grammar (protocol.md §7).
#include "file_util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/crypto/secret_bytes.hpp"

namespace sdmp::crypto::detail {
namespace {

// Closes a descriptor on every path out of a function.
class FdGuard {
  public:
    explicit FdGuard(int fd) noexcept : fd_(fd) {}
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    ~FdGuard() {
        if (fd_ >= 0)
            ::close(fd_);
    }
    int get() const noexcept { return fd_; }
    // Closes now and reports the result (close can report a delayed write error).
    int close_now() noexcept {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

  private:
    int fd_;
};

std::string errno_text(int error) {
    return std::strerror(error);
}

std::string octal_mode(mode_t mode) {
    std::array<char, 8> buffer{};
    std::snprintf(buffer.data(), buffer.size(), "%04o", static_cast<unsigned>(mode & 07777));
    return buffer.data();
}

bool is_space(char c) noexcept {
    return c == ' ' || c == '\t';
}

std::vector<std::string_view> split_tokens(std::string_view line) {
    std::vector<std::string_view> tokens;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && is_space(line[i]))
            ++i;
        const std::size_t start = i;
        while (i < line.size() && !is_space(line[i]))
            ++i;
        if (i > start)
            tokens.push_back(line.substr(start, i - start));
    }
    return tokens;
}

// A short, printable rendering of user input for error messages.
std::string quote(std::string_view text) {
    constexpr std::size_t k_max = 24;
    std::string out = "'";
    for (std::size_t i = 0; i < text.size() && i < k_max; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    if (text.size() > k_max)
        out += "...";
    out += "'";
    return out;
}

std::string random_suffix() {
    std::random_device device;
    std::array<std::uint8_t, 8> bytes{};
    for (auto& b : bytes)
        b = static_cast<std::uint8_t>(device());
    return to_hex(bytes);
}

}  // namespace

WipedString::~WipedString() {
    if (!text_.empty())
        secure_wipe(text_.data(), text_.size());
}

std::string display(const std::filesystem::path& path) {
    return path.string();
}

FileError make_file_error(errc code, const std::filesystem::path& path, std::string_view problem) {
    return {code, display(path) + ": " + std::string(problem)};
}

FileError read_file(const std::filesystem::path& path, std::size_t max_size, bool private_key,
                    std::string& out) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        const int error = errno;
        if (error == ENOENT || error == ENOTDIR) {
            return make_file_error(errc::file_not_found, path, "no such file");
        }
        return make_file_error(errc::file_io, path, "cannot open: " + errno_text(error));
    }
    FdGuard guard(fd);
    struct stat info {};
    if (::fstat(fd, &info) != 0) {
        return make_file_error(errc::file_io, path, "cannot stat: " + errno_text(errno));
    }
    if (!S_ISREG(info.st_mode)) {
        return make_file_error(errc::file_io, path, "not a regular file");
    }
    if (private_key && (info.st_mode & 077) != 0) {
        // Like ssh: a key others can read (or replace) is not a secret any more.
        return make_file_error(errc::file_permissions, path,
                               "private key is readable by group or others (mode " +
                                   octal_mode(info.st_mode) + "); run chmod 600 " + display(path));
    }
    if (static_cast<std::uintmax_t>(info.st_size) > max_size) {
        return make_file_error(errc::file_malformed, path,
                               "file too large (" + std::to_string(info.st_size) +
                                   " bytes, at most " + std::to_string(max_size) + ")");
    }
    std::string content;
    content.reserve(static_cast<std::size_t>(info.st_size));
    std::array<char, 4096> buffer{};
    for (;;) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            const int error = errno;
            secure_wipe(buffer.data(), buffer.size());
            if (!content.empty())
                secure_wipe(content.data(), content.size());
            return make_file_error(errc::file_io, path, "cannot read: " + errno_text(error));
        }
        if (n == 0)
            break;
        // Bound the read even if the file grows after fstat.
        if (content.size() + static_cast<std::size_t>(n) > max_size) {
            secure_wipe(buffer.data(), buffer.size());
            if (!content.empty())
                secure_wipe(content.data(), content.size());
            return make_file_error(errc::file_malformed, path, "file too large");
        }
        content.append(buffer.data(), static_cast<std::size_t>(n));
    }
    secure_wipe(buffer.data(), buffer.size());
    out.swap(content);
    if (!content.empty())
        secure_wipe(content.data(), content.size());
    return {};
}

FileError write_file_atomic(const std::filesystem::path& path, std::string_view content,
                            mode_t mode) {
    const std::filesystem::path directory =
        path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    const std::filesystem::path temp =
        directory / ("." + path.filename().string() + ".tmp-" + random_suffix());
    // O_EXCL: never write into a file someone else prepared; `mode` applies from creation,
    // so a secret never sits in a file with wider permissions.
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        const int error = errno;
        return make_file_error(
            error == ENOENT ? errc::file_not_found : errc::file_io, path,
            "cannot create temporary file in " + display(directory) + ": " + errno_text(error));
    }
    FdGuard guard(fd);
    auto fail = [&](const std::string& what) {
        const int error = errno;
        ::unlink(temp.c_str());
        return make_file_error(errc::file_io, path, what + ": " + errno_text(error));
    };
    // The umask may have removed bits from `mode`; set exactly what was asked.
    if (::fchmod(fd, mode) != 0)
        return fail("cannot set mode");
    std::size_t written = 0;
    while (written < content.size()) {
        const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail("cannot write");
        }
        written += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0)
        return fail("cannot sync");
    if (guard.close_now() != 0)
        return fail("cannot close");
    if (::rename(temp.c_str(), path.c_str()) != 0)
        return fail("cannot rename into place");
    // Make the rename durable; failure here does not undo a completed write.
    const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        FdGuard dir_guard(dir_fd);
        if (::fsync(dir_fd) != 0) {
            return make_file_error(errc::file_io, path,
                                   "cannot sync directory: " + errno_text(errno));
        }
    }
    return {};
}

std::vector<Line> split_lines(std::string_view content) {
    std::vector<Line> lines;
    std::size_t number = 1;
    std::size_t start = 0;
    while (start < content.size()) {
        std::size_t end = content.find('\n', start);
        if (end == std::string_view::npos)
            end = content.size();
        std::string_view text = content.substr(start, end - start);
        if (!text.empty() && text.back() == '\r')
            text.remove_suffix(1);
        lines.push_back({number, text});
        ++number;
        start = end + 1;
    }
    return lines;
}

bool is_ignorable(std::string_view line) {
    std::size_t i = 0;
    while (i < line.size() && is_space(line[i]))
        ++i;
    return i == line.size() || line[i] == '#';
}

bool starts_with_token(std::string_view line, std::string_view token) {
    std::size_t i = 0;
    while (i < line.size() && is_space(line[i]))
        ++i;
    line.remove_prefix(i);
    return line.starts_with(token) && (line.size() == token.size() || is_space(line[token.size()]));
}

std::string name_problem(std::string_view name) {
    if (name.empty() || name.size() > k_max_name_size)
        return "1 to 64 of A-Z a-z 0-9 . _ -";
    bool all_hex = true;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok)
            return "1 to 64 of A-Z a-z 0-9 . _ -";
        all_hex =
            all_hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
    }
    // protocol.md §7.2: 16 hex digits is the shortest fingerprint prefix that may stand for a
    // fingerprint, so no name may be one (or a longer prefix, or a whole fingerprint).
    if (all_hex && name.size() >= k_min_hex_name_size) {
        return "16 or more hex digits and nothing else: it could be read as a fingerprint";
    }
    return {};
}

bool valid_name(std::string_view name) {
    return name_problem(name).empty();
}

bool valid_address(std::string_view address) {
    if (address.empty() || address.size() > k_max_address_size)
        return false;
    const std::size_t colon = address.rfind(':');
    if (colon == std::string_view::npos)
        return false;
    const std::string_view host = address.substr(0, colon);
    const std::string_view port = address.substr(colon + 1);
    if (port.empty() || port.size() > 5)
        return false;
    unsigned value = 0;
    for (char c : port) {
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value == 0 || value > 65535)
        return false;
    if (host.empty())
        return false;
    if (host.front() == '[') {
        // A bracketed IPv6 literal.
        if (host.size() < 4 || host.back() != ']')
            return false;
        for (char c : host.substr(1, host.size() - 2)) {
            const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                            (c >= 'A' && c <= 'F') || c == ':' || c == '.';
            if (!ok)
                return false;
        }
        return true;
    }
    if (host.size() > 255)
        return false;
    for (char c : host) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

std::string parse_public_line(std::string_view line, PublicLine& out) {
    const std::vector<std::string_view> tokens = split_tokens(line);
    if (tokens.empty())
        return "empty line";
    if (tokens[0] == k_private_prefix) {
        return "found a private key ('" + std::string(k_private_prefix) +
               "') where a public identity ('" + std::string(k_public_prefix) + "') was expected";
    }
    if (tokens[0] != k_public_prefix) {
        return "expected '" + std::string(k_public_prefix) + "', found " + quote(tokens[0]);
    }
    if (tokens.size() < 2)
        return "missing the public key hex after '" + std::string(k_public_prefix) + "'";
    const std::string_view hex = tokens[1];
    constexpr std::size_t k_hex_size = 2 * (k_sign_public_size + k_dh_public_size);
    if (hex.size() != k_hex_size) {
        return "public key must be " + std::to_string(k_hex_size) + " hex characters, found " +
               std::to_string(hex.size());
    }
    Bytes bytes;
    if (!from_hex(hex, bytes))
        return "public key contains a non-hex character";
    PublicLine result;
    std::copy_n(bytes.begin(), k_sign_public_size, result.identity.sign_public.begin());
    std::copy_n(bytes.begin() + k_sign_public_size, k_dh_public_size,
                result.identity.dh_public.begin());
    // protocol.md §1: refused here so that no file can bring such a key into a trust store.
    if (std::string problem = result.identity.key_problem(); !problem.empty())
        return problem;
    bool have_name = false;
    bool have_address = false;
    for (std::size_t i = 2; i < tokens.size(); ++i) {
        const std::string_view token = tokens[i];
        if (token.starts_with("name=")) {
            if (have_name)
                return "name= given twice";
            const std::string_view value = token.substr(5);
            if (const std::string problem = name_problem(value); !problem.empty()) {
                return "invalid name " + quote(value) + " (" + problem + ")";
            }
            result.name = value;
            have_name = true;
        } else if (token.starts_with("address=")) {
            if (have_address)
                return "address= given twice";
            const std::string_view value = token.substr(8);
            if (!valid_address(value)) {
                return "invalid address " + quote(value) + " (expected HOST:PORT)";
            }
            result.address = value;
            have_address = true;
        } else {
            return "unexpected token " + quote(token) +
                   " (only name= and address= may follow the key)";
        }
    }
    out = std::move(result);
    return {};
}

std::string line_problem(std::size_t line, std::string_view problem) {
    return "line " + std::to_string(line) + ": " + std::string(problem);
}

FileError parse_public_file(const std::filesystem::path& path, std::string_view content,
                            PublicLine& out) {
    if (content.empty())
        return make_file_error(errc::file_malformed, path, "file is empty");
    std::optional<std::size_t> found_line;
    PublicLine parsed;
    for (const Line& line : split_lines(content)) {
        if (is_ignorable(line.text))
            continue;
        if (found_line) {
            return make_file_error(
                errc::file_malformed, path,
                line_problem(line.number,
                             "a public identity file holds one identity (first at line " +
                                 std::to_string(*found_line) + ")"));
        }
        const std::string problem = parse_public_line(line.text, parsed);
        if (!problem.empty()) {
            return make_file_error(errc::file_malformed, path, line_problem(line.number, problem));
        }
        found_line = line.number;
    }
    if (!found_line) {
        return make_file_error(errc::file_malformed, path, "no public identity line in the file");
    }
    out = std::move(parsed);
    return {};
}

std::string format_public_line(const PublicIdentity& identity, std::string_view name,
                               std::string_view address) {
    std::string line(k_public_prefix);
    line += ' ';
    line += to_hex(identity.canonical_bytes());
    if (!name.empty()) {
        line += " name=";
        line += name;
    }
    if (!address.empty()) {
        line += " address=";
        line += address;
    }
    return line;
}

}  // namespace sdmp::crypto::detail
