// Must not compile: JsonCodec with a type nlohmann-json cannot convert. Built by
// expect_compile_error.cmake, once without to_json (encoding must be refused) and once with
// -DSDMP_HAS_TO_JSON (decoding must be refused for want of from_json).
#include <sdmp/json.hpp>

namespace {
struct Plain {
    int value = 0;
};
#ifdef SDMP_HAS_TO_JSON
[[maybe_unused]] void to_json(nlohmann::json& json, const Plain& plain) {
    json = plain.value;
}
#endif
}  // namespace

int main() {
#ifdef SDMP_HAS_TO_JSON
    return sdmp::JsonCodec::decode<Plain>(sdmp::ByteView{}).value;
#else
    return static_cast<int>(sdmp::JsonCodec::encode(Plain{}).size());
#endif
}
