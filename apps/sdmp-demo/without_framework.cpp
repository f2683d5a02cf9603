// sdmp-demo built without the framework layer (-DSDMP_BUILD_FRAMEWORK=OFF): the demo runs two
// nodes on loopback, which needs it. Exits 77, the conventional "skipped" status of test
// harnesses, so tests/apps/test_demo.cpp can tell this build from a failing demo.
#include <fmt/core.h>

int main() {
    fmt::print(stderr,
               "sdmp-demo: this build has no framework layer (SDMP_BUILD_FRAMEWORK=OFF); "
               "reconfigure with it ON to run the demo\n");
    return 77;
}
