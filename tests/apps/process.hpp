// Runs a program to completion and captures its output (for tests of the real binaries).
#pragma once

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
