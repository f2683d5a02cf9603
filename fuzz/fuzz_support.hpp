// What the fuzz-target bodies (targets.cpp, session_lifecycle_target.cpp) share: the invariant
// check, the cursor that reads an event program, and the seed generators of the targets whose
// bodies live outside targets.cpp (make_seeds in targets.cpp dispatches to them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sdmp/crypto/bytes.hpp"
#include "targets.hpp"

namespace sdmp::fuzz {

// A violated invariant: prints what failed and aborts, which libFuzzer reports as a crash.
[[noreturn]] inline void violated(const char* what) {
    std::fprintf(stderr, "sdmp fuzz: invariant violated: %s\n", what);
    std::abort();
}

inline void require(bool ok, const char* what) {
    if (!ok)
        violated(what);
}

// An event program's input in order; zeros once it is exhausted, so that every input is a
// whole program.
class Cursor {
  public:
    explicit Cursor(ByteView in) : in_(in) {}
    bool done() const noexcept { return pos_ >= in_.size(); }
    std::uint8_t byte() noexcept { return done() ? 0 : in_[pos_++]; }
    ByteView rest() noexcept {
        const ByteView r = in_.subspan(std::min(pos_, in_.size()));
        pos_ = in_.size();
        return r;
    }

  private:
    ByteView in_;
    std::size_t pos_ = 0;
};

// session_lifecycle_target.cpp
std::vector<Seed> session_lifecycle_seeds();

}  // namespace sdmp::fuzz
