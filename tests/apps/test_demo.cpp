// sdmp-demo, the README's first command, through the real binary: two journal nodes on
// loopback converge, an untrusted key is refused with `nope`, a summary closes the output, the
// temporary folder is removed and the exit status is 0.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "process.hpp"

using sdmp::test::run_process;

namespace {

const std::string demo_path = SDMP_DEMO_PATH;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    return lines;
}

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

// The lines printed after `heading` up to the next line that does not start with 4 spaces.
std::vector<std::string> block_after(const std::vector<std::string>& lines,
                                     const std::string& heading) {
    std::vector<std::string> block;
    auto it = std::find_if(lines.begin(), lines.end(),
                           [&](const std::string& l) { return contains(l, heading); });
    if (it == lines.end())
        return block;
    for (++it; it != lines.end() && it->rfind("    ", 0) == 0; ++it)
        block.push_back(*it);
    return block;
}

}  // namespace

TEST_CASE("the demo runs two journal nodes on loopback and exits 0") {
    const auto demo = run_process({demo_path});
    INFO("stdout:\n" << demo.out << "\nstderr:\n" << demo.err);
    if (demo.exit_code == 77) {
        // Built with SDMP_BUILD_FRAMEWORK=OFF: the stub says why and nothing else runs.
        CHECK(contains(demo.err, "framework"));
        CHECK(demo.out.empty());
        return;
    }
    REQUIRE(demo.exit_code == 0);
    CHECK_FALSE(contains(demo.err, "failed"));
    const auto lines = lines_of(demo.out);

    // Pleasant to watch: a page of output, not a log dump.
    CHECK(lines.size() >= 30);
    CHECK(lines.size() <= 70);

    // The walkthrough names the sizes the protocol fixes.
    CHECK(contains(demo.out, "160-byte connection message"));
    CHECK(contains(demo.out, "multiple of 256 bytes"));

    // Both journals are shown, each with its first line and the three resources, and node-b
    // converged.
    CHECK(contains(demo.out, "node-b converged: all 3 resources"));
    const auto journal_a = block_after(lines, "node-a's journal:");
    const auto journal_b = block_after(lines, "node-b's journal:");
    CHECK(journal_a.size() == 4);
    CHECK(journal_b.size() == 4);
    for (const auto& line : journal_b) {
        INFO(line);
        CHECK((contains(line, "node-b's fingerprint") || contains(line, "by operator")));
    }
    CHECK(contains(demo.out, "same 3 (publisher, resource) pairs"));

    // mallory is refused: the wire said only `nope`, the reason is in node-a's own log.
    CHECK(contains(demo.out, "\"nope\""));
    CHECK(contains(demo.out, "refused_by_peer"));
    CHECK(contains(demo.out, "node-a's local log"));
    CHECK(contains(demo.out, "unknown_peer"));

    // One summary line, last, with timings.
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.back().rfind("Summary: ", 0) == 0);
    CHECK(contains(lines.back(), " ms"));
    CHECK(std::count_if(lines.begin(), lines.end(),
                        [](const std::string& l) { return contains(l, "Summary"); }) == 1);

    // The temporary folder (keys, trust stores, journals) is gone.
    const auto folder_line = std::find_if(
        lines.begin(), lines.end(), [](const std::string& l) { return contains(l, "folder: "); });
    REQUIRE(folder_line != lines.end());
    const auto start = folder_line->find("folder: ") + 8;
    const auto folder = folder_line->substr(start, folder_line->find(' ', start) - start);
    INFO(folder);
    CHECK(contains(folder, "sdmp-demo-"));
    CHECK_FALSE(std::filesystem::exists(folder));
}
