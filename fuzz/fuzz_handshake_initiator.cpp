// libFuzzer entry point of the handshake_initiator target; the body is in targets.cpp (see
// targets.hpp).
#include <cstddef>
#include <cstdint>

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sdmp::fuzz::fuzz_handshake_initiator(data, size);
}
