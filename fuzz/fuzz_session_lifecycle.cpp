// libFuzzer entry point of the session_lifecycle target; the body is in
// session_lifecycle_target.cpp (see targets.hpp).
#include <cstddef>
#include <cstdint>

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sdmp::fuzz::fuzz_session_lifecycle(data, size);
}
