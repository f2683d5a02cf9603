#include "system.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace sdmp::bench {
namespace {

// A function-local static, so registrars in other translation units may run in any order.
std::vector<SystemInfo>& registry() {
    static std::vector<SystemInfo> systems;
    return systems;
}

}  // namespace

nlohmann::ordered_json System::notes() const {
    return nlohmann::ordered_json::object();
}

std::vector<std::string> unavailable_systems() {
#ifdef SDMP_BENCH_UNAVAILABLE
    return {SDMP_BENCH_UNAVAILABLE};
#else
    return {};
#endif
}

detail::SystemRegistrar::SystemRegistrar(SystemInfo info) {
    registry().push_back(std::move(info));
}

std::vector<SystemInfo> registered_systems() {
    std::vector<SystemInfo> systems = registry();
    std::sort(systems.begin(), systems.end(),
              [](const SystemInfo& a, const SystemInfo& b) { return a.column < b.column; });
    return systems;
}

}  // namespace sdmp::bench
