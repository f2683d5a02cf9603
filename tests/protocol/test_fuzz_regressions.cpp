// Replays fuzz inputs through the same target bodies libFuzzer runs (fuzz/targets.cpp): the
// committed seed corpora (fuzz/corpus/<target>/) and every input a fuzzer found a bug with
// (tests/protocol/fuzz_regressions/<target>/). A target aborts when one of its invariants fails,
// which fails this test binary. Also checks that the seeds reach what their names promise, so
// the corpora keep steering the fuzzers past the AEAD tags and signatures.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "sdmp/error.hpp"
#include "sdmp/framework/error.hpp"
#include "sdmp/protocol/handshake_error.hpp"
#include "targets.hpp"

namespace fs = std::filesystem;
using sdmp::Bytes;
using sdmp::protocol::HandshakeError;

namespace {

Bytes read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Inputs in a folder, sorted; README files and dot files are not inputs.
std::vector<fs::path> inputs_in(const fs::path& dir) {
    std::vector<fs::path> files;
    if (!fs::is_directory(dir))
        return files;
    for (const auto& entry : fs::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || name.starts_with(".") || name.starts_with("README")) {
            continue;
        }
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

const sdmp::fuzz::Target* find_target(std::string_view name) {
    for (const auto& t : sdmp::fuzz::all_targets()) {
        if (t.name == name)
            return &t;
    }
    return nullptr;
}

std::size_t replay(const sdmp::fuzz::Target& target, const fs::path& dir) {
    const auto files = inputs_in(dir);
    for (const auto& file : files) {
        INFO("input " << file.string());
        const Bytes input = read_file(file);
        CHECK(target.run(input.data(), input.size()) == 0);
    }
    return files.size();
}

Bytes seed(std::string_view target, std::string_view name) {
    return read_file(fs::path(SDMP_FUZZ_CORPUS_DIR) / std::string(target) / std::string(name));
}

}  // namespace

TEST_CASE("fuzz targets accept empty and tiny inputs", "[fuzz]") {
    const std::vector<Bytes> inputs = {{}, {0x00}, {0xff}, {0x07, 0x00}, {0x01, 0x02, 0x03}};
    for (const auto& target : sdmp::fuzz::all_targets()) {
        for (const Bytes& input : inputs) {
            INFO(target.name << " on " << input.size() << " bytes");
            CHECK(target.run(input.data(), input.size()) == 0);
        }
    }
}

TEST_CASE("fuzz seed corpora replay through their targets", "[fuzz]") {
    for (const auto& target : sdmp::fuzz::all_targets()) {
        INFO("target " << target.name);
        const std::size_t n =
            replay(target, fs::path(SDMP_FUZZ_CORPUS_DIR) / std::string(target.name));
        // The corpus must cover at least as much as the generator makes (fuzz/make_corpus.cpp).
        CHECK(n >= sdmp::fuzz::make_seeds(target.name).size());
    }
}

TEST_CASE("fuzz regression inputs replay through their targets", "[fuzz]") {
    const fs::path root = SDMP_FUZZ_REGRESSION_DIR;
    REQUIRE(fs::is_directory(root));
    for (const auto& entry : fs::directory_iterator(root)) {
        if (!entry.is_directory())
            continue;
        const std::string name = entry.path().filename().string();
        INFO("regression folder " << name);
        const auto* target = find_target(name);
        REQUIRE(target != nullptr);  // folders are named after targets
        CHECK(replay(*target, entry.path()) >= 1);
    }
}

TEST_CASE("connection_message seeds reach the verdicts their names promise", "[fuzz]") {
    const std::vector<std::pair<std::string_view, HandshakeError>> expected = {
        {"valid_suite1.bin", HandshakeError::none},
        {"valid_suite2.bin", HandshakeError::none},
        {"valid_trailing.bin", HandshakeError::none},
        {"carol_valid.bin", HandshakeError::none},
        {"carol_valid_suite2.bin", HandshakeError::none},
        {"unknown_signer.bin", HandshakeError::unknown_peer},
        {"bad_signature.bin", HandshakeError::bad_signature},
        {"wrong_receiver_signed.bin", HandshakeError::bad_signature},
        {"sealed_to_other.bin", HandshakeError::seal_failed},
        {"clock_skew.bin", HandshakeError::clock_skew},
        {"low_order.bin", HandshakeError::low_order_point},
        {"bad_magic.bin", HandshakeError::bad_magic},
        {"bad_version.bin", HandshakeError::unsupported_version},
        {"unknown_suite.bin", HandshakeError::unsupported_suite},
        {"bad_role.bin", HandshakeError::bad_role},
        {"reserved_set.bin", HandshakeError::malformed},
        {"tampered_seal.bin", HandshakeError::seal_failed},
        {"truncated.bin", HandshakeError::truncated},
        {"nope.bin", HandshakeError::truncated},
    };
    for (const auto& [name, verdict] : expected) {
        INFO("seed " << name);
        const Bytes input = seed("connection_message", name);
        CHECK(sdmp::protocol::to_string(sdmp::fuzz::responder_verdict(input)) ==
              sdmp::protocol::to_string(verdict));
    }
}

TEST_CASE("handshake_initiator seeds reach the verdicts their names promise", "[fuzz]") {
    const std::vector<std::pair<std::string_view, std::optional<HandshakeError>>> expected = {
        {"reply_suite1.bin", HandshakeError::none},
        {"reply_suite2.bin", HandshakeError::none},
        {"reply_chunked_with_records.bin", HandshakeError::none},
        {"nope_eof.bin", HandshakeError::refused_by_peer},
        {"nope_split_eof.bin", HandshakeError::refused_by_peer},
        {"nope_then_data.bin", HandshakeError::unexpected_data},
        {"wrong_responder.bin", HandshakeError::wrong_responder},
        {"unknown_responder.bin", HandshakeError::unknown_peer},
        {"suite_mismatch.bin", HandshakeError::unsupported_suite},
        {"truncated_eof.bin", HandshakeError::truncated},
        {"abort.bin", HandshakeError::timeout},
    };
    for (const auto& [name, verdict] : expected) {
        INFO("seed " << name);
        const auto got = sdmp::fuzz::initiator_verdict(seed("handshake_initiator", name));
        REQUIRE(got.has_value());
        CHECK(sdmp::protocol::to_string(*got) == sdmp::protocol::to_string(*verdict));
    }
}

TEST_CASE("record_open seeds open the records they hold", "[fuzz]") {
    const std::vector<std::pair<std::string_view, std::size_t>> expected = {
        {"level0.bin", 1},     {"level6.bin", 1},       {"two_records_chunked.bin", 2},
        {"chacha.bin", 1},     {"ratchet_feed.bin", 4}, {"truncated.bin", 0},
        {"bad_length.bin", 0},
    };
    for (const auto& [name, count] : expected) {
        INFO("seed " << name);
        CHECK(sdmp::fuzz::records_opened(seed("record_open", name)) == count);
    }
}

TEST_CASE("session_core seeds reach the states their names promise", "[fuzz]") {
    const auto basic = sdmp::fuzz::session_core_counts(seed("session_core", "basic.bin"));
    CHECK(basic.records >= 2);
    CHECK(basic.tail_messages == 1);
    const auto waiters = sdmp::fuzz::session_core_counts(seed("session_core", "waiters.bin"));
    CHECK(waiters.grants >= 2);
    CHECK(waiters.failed_waiters >= 1);
    const auto gathered = sdmp::fuzz::session_core_counts(seed("session_core", "gathered.bin"));
    CHECK(gathered.gathered >= 2);
    CHECK(gathered.compressed >= 1);
    CHECK(gathered.grants >= 1);
    const auto coalesced = sdmp::fuzz::session_core_counts(seed("session_core", "coalesced.bin"));
    CHECK(coalesced.records >= 2);
    const auto keepalive = sdmp::fuzz::session_core_counts(seed("session_core", "keepalive.bin"));
    CHECK(keepalive.pings >= 2);
    CHECK(keepalive.peer_silent >= 1);
    CHECK(keepalive.idle >= 1);
    const auto tail = sdmp::fuzz::session_core_counts(seed("session_core", "tail_all_types.bin"));
    CHECK(tail.tail_messages == 8);
    const auto cut = sdmp::fuzz::session_core_counts(seed("session_core", "tail_truncated.bin"));
    CHECK(cut.tail_messages < 2);
}

TEST_CASE("session_lifecycle seeds reach the states their names promise", "[fuzz]") {
    using sdmp::framework_errc;
    const auto counts = [](std::string_view name) {
        return sdmp::fuzz::session_lifecycle_counts(seed("session_lifecycle", name));
    };

    const auto graceful = counts("graceful_close.bin");
    CHECK(graceful.state == "closed");
    CHECK(graceful.drained);
    CHECK_FALSE(graceful.aborted);
    CHECK(graceful.peer_ended);
    CHECK(graceful.goaways_sent == 1);
    CHECK(graceful.accepted == 1);
    CHECK(graceful.answered == 1);
    CHECK_FALSE(graceful.reason);

    const auto abort = counts("abort.bin");
    CHECK(abort.state == "closed");
    CHECK(abort.aborted);
    CHECK_FALSE(abort.drained);
    CHECK(abort.reason == std::errc::timed_out);
    CHECK(abort.cancelled_tasks == 3);
    CHECK(abort.failed_calls == 2);

    const auto goaway = counts("goaway.bin");
    CHECK(goaway.calls == 3);
    CHECK(goaway.refused_calls == 2);
    CHECK(goaway.answered == 1);
    CHECK(goaway.state == "closing");
    CHECK(goaway.drained);

    const auto peer_end = counts("peer_end.bin");
    CHECK(peer_end.state == "closed");
    CHECK(peer_end.peer_ended);
    CHECK(peer_end.drained);
    CHECK_FALSE(peer_end.aborted);
    CHECK(peer_end.goaways_sent == 0);
    CHECK(peer_end.failed_calls == 1);
    CHECK(peer_end.accepted == 1);

    const auto deadline = counts("drain_deadline.bin");
    CHECK(deadline.state == "closing");
    CHECK(deadline.drain_deadlines == 1);
    CHECK(deadline.cancelled_tasks == 2);
    CHECK(deadline.failed_calls == 1);
    CHECK(deadline.drained);
    CHECK_FALSE(deadline.aborted);

    const auto duplicate = counts("duplicate_id.bin");
    CHECK(duplicate.duplicates == 1);
    CHECK(duplicate.aborted);
    CHECK(duplicate.state == "closing");
    CHECK(duplicate.reason == sdmp::errc::malformed);

    const auto cut = counts("connection_cut.bin");
    CHECK(cut.aborted);
    CHECK(cut.reason == framework_errc::connection_lost);

    const auto refusals = counts("refusals.bin");
    CHECK(refusals.accepted == 1);
    CHECK(refusals.answered_now == 4);
    CHECK(refusals.shutting_down == 1);
    CHECK(refusals.notifications == 0);
    CHECK(refusals.state == "draining");

    const auto exhausted = counts("ids_exhausted.bin");
    CHECK(exhausted.calls == 1);
    CHECK(exhausted.ids_exhausted == 1);
    CHECK(exhausted.answered == 1);

    const auto late = counts("late_notification.bin");
    CHECK(late.drain_deadlines == 1);
    CHECK(late.notifications == 0);  // dropped: past the deadline nothing would cancel it
}
