// Journal lines, the journal store, and the journal methods called over a loopback session.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "sdmp/services/journal_line.hpp"
#include "sdmp/services/journal_service.hpp"
#include "sdmp/services/journal_store.hpp"
#include "support.hpp"

using namespace sdmp;
using namespace sdmp::services;
using sdmp::test::fingerprint_of;
using sdmp::test::invoke;
using sdmp::test::ScratchDir;
using json = nlohmann::json;

namespace {

std::string hex_sha256(std::string_view text) {
    return to_hex(crypto::default_provider().sha256(as_bytes(text)));
}

}  // namespace

TEST_CASE("a journal line is number@publisher/resource with SHA-256 links") {
    const auto node = fingerprint_of(0x11);
    const auto publisher = fingerprint_of(0x22);
    const Bytes resource = bytes_of("some resource");
    const JournalEntry entry{line_number_after(node.hex()), publisher, resource_id_of(resource)};

    const std::string text = entry.text();
    CHECK(text ==
          hex_sha256(node.hex()) + "@" + publisher.hex() + "/" + hex_sha256("some resource"));
    CHECK(JournalEntry::parse(text) == entry);
    CHECK(follows(entry, node.hex()));
    CHECK_FALSE(follows(entry, text));

    CHECK_FALSE(JournalEntry::parse(""));
    CHECK_FALSE(JournalEntry::parse(text.substr(1)));
    std::string upper = text;
    upper[0] = upper[0] == 'a' ? 'A' : 'F';  // only the lower-case form is a line
    CHECK_FALSE(JournalEntry::parse(upper));
    std::string bad_separator = text;
    bad_separator[64] = '#';
    CHECK_FALSE(JournalEntry::parse(bad_separator));
}

TEST_CASE("JournalStore appends a chain, dedupes, pages and keeps cursors") {
    ScratchDir dir;
    const auto file = dir.file("journal.sqlite");
    const auto node = fingerprint_of(0x01);
    const auto alice = fingerprint_of(0x0a);
    const auto bob = fingerprint_of(0x0b);
    const Bytes r1 = bytes_of("one"), r2 = bytes_of("two");
    std::vector<std::string> lines;
    {
        JournalStore store(file, node);
        CHECK(store.first_line() == node.hex());
        CHECK(store.line_count() == 1);
        CHECK(store.last_line() == node.hex());

        auto a = store.append(alice, resource_id_of(r1), r1);
        CHECK(a.appended);
        auto again = store.append(alice, resource_id_of(r1), r1);
        CHECK_FALSE(again.appended);
        CHECK(again.line == a.line);
        // Same bytes, another publisher: another resource.
        auto b = store.append(bob, resource_id_of(r1), r1);
        CHECK(b.appended);
        auto c = store.append(bob, resource_id_of(r2), r2);
        lines = {a.line, b.line, c.line};
        CHECK(store.line_count() == 4);
        CHECK(store.verify_chain());

        CHECK(store.contains(bob, resource_id_of(r2)));
        CHECK_FALSE(store.contains(alice, resource_id_of(r2)));
        CHECK(store.resource(bob, resource_id_of(r2)) == r2);
        CHECK(store.resource(alice, resource_id_of(r2)) == std::nullopt);

        CHECK(store.lines_after(node.hex(), 10) == lines);
        CHECK(store.lines_after(node.hex(), 2) == std::vector<std::string>{lines[0], lines[1]});
        CHECK(store.lines_after(lines[0], 10) == std::vector<std::string>{lines[1], lines[2]});
        // By number: the line with that number, then the ones after it.
        const auto number = JournalEntry::parse(lines[1])->number;
        CHECK(store.lines_after(number, 10) == std::vector<std::string>{lines[2]});
        CHECK(store.lines_after(lines[2], 10)->empty());
        CHECK(store.lines_after("unknown", 10) == std::nullopt);

        CHECK(store.cursor(alice) == std::nullopt);
        store.set_cursor(alice, lines[0]);
        store.set_cursor(alice, lines[1]);
    }
    JournalStore reopened(file, node);
    CHECK(reopened.lines_after(node.hex(), 10) == lines);
    CHECK(reopened.cursor(alice) == lines[1]);
    CHECK(reopened.verify_chain());
    CHECK_THROWS_AS(JournalStore(file, alice), StoreError);
}

TEST_CASE("journal methods: publish, synchronize and resource.get") {
    ScratchDir dir;
    boost::asio::io_context io;
    const auto node = fingerprint_of(0x01);
    const auto caller_id = sdmp::test::make_caller();
    const auto caller = caller_id.fingerprint();
    JournalOptions options;
    options.max_resource_size = 16;
    options.max_sync_limit = 2;
    auto journal = JournalService::open(io.get_executor(), dir.file("journal.sqlite"), node,
                                        std::make_shared<SessionSet>(), options);
    Router router;
    journal->add_to(router);

    auto published = invoke(router, "journal.publish", "resource", caller_id);
    REQUIRE(published.is_ok());
    const auto answer = json::parse(published.text());
    CHECK(answer["id"] == hex_sha256("resource"));
    const JournalEntry expected{hex_sha256(node.hex()), caller,
                                resource_id_of(bytes_of("resource"))};
    CHECK(answer["line"] == expected.text());
    // Publishing the same bytes again gives the same line.
    CHECK(json::parse(invoke(router, "journal.publish", "resource", caller_id).text()) == answer);
    CHECK(invoke(router, "journal.publish", std::string(17, 'x'), caller_id).status ==
          Status::too_large);
    REQUIRE(invoke(router, "journal.publish", "second", caller_id).is_ok());
    REQUIRE(invoke(router, "journal.publish", "third", caller_id).is_ok());

    auto sync = invoke(router, "journal.synchronize", json{{"since", node.hex()}}.dump());
    REQUIRE(sync.is_ok());
    const auto page = json::parse(sync.text());
    CHECK(page["since"] == node.hex());
    REQUIRE(page["entries"].size() == 2);  // capped at max_sync_limit
    CHECK(page["entries"][0] == expected.text());
    auto rest = invoke(router, "journal.synchronize",
                       json{{"since", page["entries"][1]}, {"limit", 50}}.dump());
    CHECK(json::parse(rest.text())["entries"].size() == 1);
    CHECK(invoke(router, "journal.synchronize", json{{"since", "x"}}.dump()).status ==
          Status::not_found);
    CHECK(invoke(router, "journal.synchronize", "{}").status == Status::invalid_argument);
    CHECK(invoke(router, "journal.synchronize", json{{"since", node.hex()}, {"limit", -1}}.dump())
              .status == Status::invalid_argument);

    auto get = invoke(router, "resource.get",
                      json{{"author", caller.hex()}, {"resource", hex_sha256("resource")}}.dump());
    REQUIRE(get.is_ok());
    CHECK(get.text() == "resource");
    CHECK(invoke(router, "resource.get",
                 json{{"author", node.hex()}, {"resource", hex_sha256("resource")}}.dump())
              .status == Status::not_found);
    CHECK(
        invoke(router, "resource.get", json{{"author", "zz"}, {"resource", "zz"}}.dump()).status ==
        Status::invalid_argument);
}
