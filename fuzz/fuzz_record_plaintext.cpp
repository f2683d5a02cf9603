// libFuzzer entry point of the record_plaintext target; the body is in targets.cpp (see
// targets.hpp).
#include <cstddef>
#include <cstdint>

#include "targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return sdmp::fuzz::fuzz_record_plaintext(data, size);
}
