// Message envelope codec (protocol.md §6).
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "sdmp/error.hpp"
#include "sdmp/protocol/message.hpp"

using namespace sdmp;
using namespace sdmp::protocol;

namespace {

Bytes hex(std::string_view h) {
    Bytes out;
    REQUIRE(from_hex(h, out));
    return out;
}

bool same(const Message& a, const Message& b) {
    if (a.index() != b.index())
        return false;
    return std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            const T& y = std::get<T>(b);
            if constexpr (std::is_same_v<T, Request>) {
                return x.id == y.id && x.method == y.method && x.timeout_ms == y.timeout_ms &&
                       x.metadata == y.metadata && x.body == y.body;
            } else if constexpr (std::is_same_v<T, Response>) {
                return x.id == y.id && x.status == y.status && x.metadata == y.metadata &&
                       x.body == y.body;
            } else if constexpr (std::is_same_v<T, Notification>) {
                return x.method == y.method && x.metadata == y.metadata && x.body == y.body;
            } else if constexpr (std::is_same_v<T, Cancel>) {
                return x.id == y.id;
            } else if constexpr (std::is_same_v<T, Ping> || std::is_same_v<T, Pong>) {
                return x.opaque == y.opaque;
            } else if constexpr (std::is_same_v<T, GoAway>) {
                return x.last_request_id == y.last_request_id && x.reason == y.reason;
            } else {
                static_assert(std::is_same_v<T, End>);
                return true;
            }
        },
        a);
}

// Decodes one framed envelope and requires that it is the whole input.
std::error_code decode_framed(const Bytes& framed, Message& out, const MessageLimits& limits = {}) {
    std::vector<Message> messages;
    auto ec = decode_messages(framed, messages, limits);
    if (!ec) {
        REQUIRE(messages.size() == 1);
        out = messages.front();
    }
    return ec;
}

// Frames a raw envelope as decode_messages expects it.
Bytes framed(const Bytes& envelope) {
    Bytes out;
    put_varint(envelope.size(), out);
    out.insert(out.end(), envelope.begin(), envelope.end());
    return out;
}

std::string random_string(std::mt19937& rng, std::size_t min, std::size_t max) {
    std::uniform_int_distribution<std::size_t> len(min, max);
    std::uniform_int_distribution<int> ch(0, 255);
    std::string s(len(rng), '\0');
    for (auto& c : s)
        c = static_cast<char>(ch(rng));
    return s;
}

std::uint64_t random_u64(std::mt19937& rng) {
    // Spread across every varint length, including the 10-byte ones.
    std::uniform_int_distribution<int> bits(0, 64);
    const int b = bits(rng);
    const std::uint64_t full = (std::uint64_t{rng()} << 32) | rng();
    return b == 64 ? full : full & ((std::uint64_t{1} << b) - 1);
}

Metadata random_metadata(std::mt19937& rng) {
    std::uniform_int_distribution<std::size_t> count(0, 16);
    Metadata m(count(rng));
    for (auto& [k, v] : m) {
        k = random_string(rng, 1, 64);
        v = random_string(rng, 0, 1024);
    }
    return m;
}

Bytes random_body(std::mt19937& rng) {
    const std::string s = random_string(rng, 0, 2000);
    return Bytes(s.begin(), s.end());
}

Message random_message(std::mt19937& rng) {
    std::uniform_int_distribution<int> type(0, 7);
    switch (type(rng)) {
        case 0:
            return Request{random_u64(rng) | 1, random_string(rng, 1, 255), random_u64(rng),
                           random_metadata(rng), random_body(rng)};
        case 1: {
            std::uniform_int_distribution<int> status(0, 9);
            return Response{random_u64(rng) | 1, static_cast<Status>(status(rng)),
                            random_metadata(rng), random_body(rng)};
        }
        case 2:
            return Notification{random_string(rng, 1, 255), random_metadata(rng), random_body(rng)};
        case 3:
            return Cancel{random_u64(rng) | 1};
        case 4:
            return Ping{random_u64(rng)};
        case 5:
            return Pong{random_u64(rng)};
        case 6:
            return GoAway{random_u64(rng), random_string(rng, 0, 1024)};
        default:
            return End{};
    }
}

}  // namespace

TEST_CASE("varint encodings", "[message][varint]") {
    const std::pair<std::uint64_t, std::string_view> vectors[] = {
        {0, "00"},
        {1, "01"},
        {127, "7f"},
        {128, "8001"},
        {300, "ac02"},
        {16383, "ff7f"},
        {16384, "808001"},
        {(std::uint64_t{1} << 63) - 1, "ffffffffffffffff7f"},
        {std::uint64_t{1} << 63, "80808080808080808001"},
        {~std::uint64_t{0}, "ffffffffffffffffff01"},
    };
    for (const auto& [value, encoding] : vectors) {
        CAPTURE(value);
        Bytes out;
        put_varint(value, out);
        REQUIRE(to_hex(out) == encoding);
        REQUIRE(varint_size(value) == out.size());
        std::size_t pos = 0;
        std::uint64_t decoded = 0;
        REQUIRE_FALSE(get_varint(out, pos, decoded));
        REQUIRE(decoded == value);
        REQUIRE(pos == out.size());
    }
}

TEST_CASE("varint decoding is strict", "[message][varint]") {
    const std::string_view bad[] = {
        "",                        // empty
        "80",                      // truncated
        "ffff",                    // truncated
        "8000",                    // non-minimal zero
        "ff00",                    // non-minimal
        "ac8200",                  // 300 padded with a zero group
        "ffffffffffffffffff02",    // above 2^64 - 1
        "ffffffffffffffffff81",    // 10th byte continues
        "ffffffffffffffffff8001",  // 11 bytes
        "80808080808080808000",    // 10 bytes, non-minimal
    };
    for (auto h : bad) {
        CAPTURE(h);
        const Bytes in = hex(h);
        std::size_t pos = 0;
        std::uint64_t value = 12345;
        REQUIRE(get_varint(in, pos, value) == errc::malformed);
        REQUIRE(pos == 0);  // not advanced on failure
    }
    // Decoding from an offset.
    const Bytes in = hex("ff2a8001");
    std::size_t pos = 1;
    std::uint64_t value = 0;
    REQUIRE_FALSE(get_varint(in, pos, value));
    REQUIRE(value == 42);
    REQUIRE(pos == 2);
    REQUIRE_FALSE(get_varint(in, pos, value));
    REQUIRE(value == 128);
    REQUIRE(pos == 4);
}

TEST_CASE("envelope bytes follow protocol.md §6.2", "[message]") {
    SECTION("request") {
        Request r{300, "echo", 1500, {{"k", "v"}}, {0xde, 0xad}};
        Bytes out;
        REQUIRE_FALSE(encode_message(r, out));
        //         len type id   timeout method      count key  value body
        REQUIRE(to_hex(out) ==
                "11"
                "01"
                "ac02"
                "dc0b"
                "046563686f"
                "01"
                "016b"
                "0176"
                "dead");
        REQUIRE(out.size() == encoded_size(r));
    }
    SECTION("response") {
        Response r{7, Status::not_found, {}, {'n', 'o'}};
        Bytes out;
        REQUIRE_FALSE(encode_message(r, out));
        REQUIRE(to_hex(out) ==
                "06"
                "02"
                "07"
                "03"
                "00"
                "6e6f");
    }
    SECTION("notification") {
        Notification n{"tick", {}, {}};
        Bytes out;
        REQUIRE_FALSE(encode_message(n, out));
        REQUIRE(to_hex(out) ==
                "07"
                "03"
                "047469636b"
                "00");
    }
    SECTION("cancel, ping, pong, goaway, end") {
        Bytes out;
        REQUIRE_FALSE(encode_message(Cancel{5}, out));
        REQUIRE_FALSE(encode_message(Ping{0x0102030405060708}, out));
        REQUIRE_FALSE(encode_message(Pong{0x0102030405060708}, out));
        REQUIRE_FALSE(encode_message(GoAway{0, "bye"}, out));
        REQUIRE_FALSE(encode_message(End{}, out));
        REQUIRE(to_hex(out) ==
                "02"
                "04"
                "05"
                "09"
                "05"
                "0102030405060708"
                "09"
                "06"
                "0102030405060708"
                "05"
                "07"
                "00"
                "627965"
                "01"
                "08");
        std::vector<Message> messages;
        REQUIRE_FALSE(decode_messages(out, messages));
        REQUIRE(messages.size() == 5);
        REQUIRE(std::get<Cancel>(messages[0]).id == 5);
        REQUIRE(std::get<Ping>(messages[1]).opaque == 0x0102030405060708);
        REQUIRE(std::get<Pong>(messages[2]).opaque == 0x0102030405060708);
        REQUIRE(std::get<GoAway>(messages[3]).reason == "bye");
        REQUIRE(std::holds_alternative<End>(messages[4]));
        REQUIRE(encoded_size(End{}) == 2);
        REQUIRE(envelope_size(End{}) == 1);
    }
}

TEST_CASE("decode errors of protocol.md §6.2", "[message]") {
    struct Case {
        std::string_view envelope_hex;
        errc expected;
    };
    const Case cases[] = {
        {"", errc::malformed},                           // no type byte
        {"00", errc::malformed},                         // unknown type 0
        {"09", errc::malformed},                         // unknown type 9
        {"ff", errc::malformed},                         // unknown type 255
        {"01", errc::malformed},                         // request: id missing
        {"0100", errc::malformed},                       // request id 0
        {"010100", errc::malformed},                     // method missing
        {"01010000", errc::malformed},                   // method empty
        {"0101000461", errc::malformed},                 // method runs past the end
        {"010100016d", errc::malformed},                 // metadata count missing
        {"010100016d01", errc::malformed},               // metadata entry missing
        {"010100016d010000", errc::malformed},           // metadata key empty
        {"010100016d01016b", errc::malformed},           // metadata value missing
        {"010100016d01016b05", errc::malformed},         // metadata value runs past the end
        {"010100016d11", errc::limit_exceeded},          // 17 metadata entries
        {"01010001ff", errc::malformed},                 // metadata missing after the method
        {"0101008002", errc::limit_exceeded},            // method of 256 bytes
        {"010100016d014100", errc::limit_exceeded},      // metadata key of 65 bytes
        {"010100016d01016b8108", errc::limit_exceeded},  // metadata value of 1025 bytes
        {"010180006d", errc::malformed},                 // non-minimal timeout varint
        {"0200", errc::malformed},                       // response id 0
        {"0201", errc::malformed},                       // status missing
        {"02010a00", errc::malformed},                   // status 10
        {"0201ff00", errc::malformed},                   // status 255
        {"020100", errc::malformed},                     // metadata missing
        {"0300", errc::malformed},                       // notification method empty
        {"03", errc::malformed},                         // notification method missing
        {"04", errc::malformed},                         // cancel id missing
        {"0400", errc::malformed},                       // cancel id 0
        {"040100", errc::malformed},                     // trailing byte after cancel
        {"05", errc::malformed},                         // ping too short
        {"0501020304050607", errc::malformed},           // ping 7 bytes
        {"050102030405060708ff", errc::malformed},       // trailing byte after ping
        {"0601020304050607", errc::malformed},           // pong 7 bytes
        {"060102030405060708ff", errc::malformed},       // trailing byte after pong
        {"07", errc::malformed},                         // goaway id missing
        {"0780", errc::malformed},                       // goaway id truncated
        {"0800", errc::malformed},                       // trailing byte after end
        {"08ff", errc::malformed},                       // trailing byte after end
        {"0808", errc::malformed},                       // two ends in one envelope
    };
    for (const auto& c : cases) {
        CAPTURE(c.envelope_hex);
        const Bytes envelope = hex(c.envelope_hex);
        Message m;
        REQUIRE(decode_message(envelope, m) == c.expected);
        if (!envelope.empty())
            REQUIRE(decode_framed(framed(envelope), m) == c.expected);
    }
}

TEST_CASE("valid edge cases decode", "[message]") {
    Message m;
    // Largest method, metadata and reason sizes are accepted.
    Request r{1, std::string(255, 'm'), 0, {}, {}};
    for (int i = 0; i < 16; ++i) {
        r.metadata.emplace_back(std::string(64, static_cast<char>('a' + i)),
                                std::string(1024, 'v'));
    }
    Bytes out;
    REQUIRE_FALSE(encode_message(r, out));
    REQUIRE_FALSE(decode_framed(out, m));
    REQUIRE(same(m, r));
    // An empty metadata value, an empty body, an empty goaway reason.
    Bytes e =
        hex("0101000178"
            "01"
            "016b"
            "00");
    REQUIRE_FALSE(decode_message(e, m));
    REQUIRE(std::get<Request>(m).metadata == Metadata{{"k", ""}});
    REQUIRE(std::get<Request>(m).body.empty());
    REQUIRE_FALSE(decode_message(hex("0700"), m));
    REQUIRE(std::get<GoAway>(m).reason.empty());
    REQUIRE_FALSE(decode_message(hex("07ffffffffffffffffff01"), m));
    REQUIRE(std::get<GoAway>(m).last_request_id == ~std::uint64_t{0});
    // Status 9 is the largest valid one.
    REQUIRE_FALSE(decode_message(hex("02010900"), m));
    REQUIRE(std::get<Response>(m).status == Status::shutting_down);
}

TEST_CASE("goaway reason and envelope size limits", "[message]") {
    Message m;
    Bytes goaway = hex("0701");
    goaway.resize(goaway.size() + 1024, 'r');
    REQUIRE_FALSE(decode_message(goaway, m));
    goaway.push_back('r');
    REQUIRE(decode_message(goaway, m) == errc::limit_exceeded);

    MessageLimits limits;
    limits.max_message_size = 64;
    Bytes notification = hex("03016e00");
    notification.resize(64, 'b');
    REQUIRE_FALSE(decode_message(notification, m, limits));
    REQUIRE_FALSE(decode_framed(framed(notification), m, limits));
    notification.push_back('b');
    REQUIRE(decode_message(notification, m, limits) == errc::limit_exceeded);
    REQUIRE(decode_framed(framed(notification), m, limits) == errc::limit_exceeded);
    // The frame length alone is enough to refuse, before any envelope byte is present.
    REQUIRE(decode_framed(hex("41"), m, limits) == errc::limit_exceeded);
}

TEST_CASE("framing errors of decode_messages", "[message]") {
    std::vector<Message> out;
    REQUIRE(decode_messages(ByteView{}, out) == errc::malformed);       // payload never empty
    REQUIRE(decode_messages(hex("00"), out) == errc::malformed);        // empty envelope
    REQUIRE(decode_messages(hex("05"), out) == errc::malformed);        // frame past the end
    REQUIRE(decode_messages(hex("020405ff"), out) == errc::malformed);  // trailing partial frame
    REQUIRE(decode_messages(hex("8001"), out) == errc::malformed);      // 128 announced, none there
    REQUIRE(decode_messages(hex("ffffffffffffffffff01"), out) == errc::limit_exceeded);
    // Messages before the bad one are appended; earlier contents are kept.
    out.clear();
    out.emplace_back(Ping{1});
    REQUIRE(decode_messages(hex("020405"
                                "020400"),
                            out) == errc::malformed);
    REQUIRE(out.size() == 2);
    REQUIRE(std::get<Cancel>(out[1]).id == 5);
}

TEST_CASE("encode refuses what decode would refuse, appending nothing", "[message]") {
    const Bytes before = {0xaa, 0xbb};
    const auto check = [&](const Message& m, errc expected, const MessageLimits& limits = {}) {
        Bytes out = before;
        REQUIRE(encode_message(m, out, limits) == expected);
        REQUIRE(out == before);
    };
    check(Request{0, "m", 0, {}, {}}, errc::malformed);
    check(Request{1, "", 0, {}, {}}, errc::malformed);
    check(Request{1, std::string(256, 'm'), 0, {}, {}}, errc::limit_exceeded);
    check(Request{1, "m", 0, Metadata(17, {"k", "v"}), {}}, errc::limit_exceeded);
    check(Request{1, "m", 0, {{"", "v"}}, {}}, errc::malformed);
    check(Request{1, "m", 0, {{std::string(65, 'k'), "v"}}, {}}, errc::limit_exceeded);
    check(Request{1, "m", 0, {{"k", std::string(1025, 'v')}}, {}}, errc::limit_exceeded);
    check(Response{0, Status::ok, {}, {}}, errc::malformed);
    check(Response{1, static_cast<Status>(10), {}, {}}, errc::malformed);
    check(Notification{"", {}, {}}, errc::malformed);
    check(Cancel{0}, errc::malformed);
    check(GoAway{1, std::string(1025, 'r')}, errc::limit_exceeded);

    MessageLimits limits;
    limits.max_message_size = 100;
    Notification n{"n", {}, Bytes(100 - 4, 'b')};  // type + method(2) + count(1) + body = 100
    Bytes out;
    REQUIRE_FALSE(encode_message(n, out, limits));
    REQUIRE(out.size() == 1 + 100);
    n.body.push_back('b');
    check(n, errc::limit_exceeded, limits);
    // Custom field limits are honoured both ways.
    limits = MessageLimits{};
    limits.max_method_size = 3;
    check(Notification{"four", {}, {}}, errc::limit_exceeded, limits);
    Bytes four;
    REQUIRE_FALSE(encode_message(Notification{"four", {}, {}}, four));
    Message m;
    REQUIRE(decode_framed(four, m, limits) == errc::limit_exceeded);
}

TEST_CASE("the 16 MiB envelope limit counts the envelope, not its frame", "[message][limits]") {
    // protocol.md §6.2: at most 16,777,216 bytes from the type byte to the last byte; the varint
    // frame in front (4 bytes here) is not counted. Exactly the limit is accepted.
    REQUIRE(MessageLimits{}.max_message_size == k_max_envelope_size);
    REQUIRE(k_max_envelope_size == 16'777'216);
    // type (1) + method "n" (2) + metadata count (1) + body
    Notification at_limit{"n", {}, Bytes(k_max_envelope_size - 4, 'b')};
    REQUIRE(envelope_size(at_limit) == k_max_envelope_size);
    REQUIRE(encoded_size(at_limit) == 4 + k_max_envelope_size);
    Bytes framed_at_limit;
    REQUIRE_FALSE(encode_message(at_limit, framed_at_limit));
    REQUIRE(framed_at_limit.size() == 4 + k_max_envelope_size);
    REQUIRE(to_hex(ByteView(framed_at_limit).first(5)) == "8080800803");  // 2^24, then type 3
    Message m;
    REQUIRE_FALSE(decode_framed(framed_at_limit, m));
    REQUIRE(std::get<Notification>(m).body.size() == k_max_envelope_size - 4);
    REQUIRE_FALSE(decode_message(ByteView(framed_at_limit).subspan(4), m));

    Notification over = at_limit;
    over.body.push_back('b');
    REQUIRE(envelope_size(over) == k_max_envelope_size + 1);
    Bytes out;
    REQUIRE(encode_message(over, out) == errc::limit_exceeded);
    REQUIRE(encode_message_head(over, out) == errc::limit_exceeded);
    REQUIRE(out.empty());
    // The receiver's view of the same envelope, built by hand: refused whole, framed, and from
    // the frame alone (before a single envelope byte has arrived).
    framed_at_limit.push_back('b');
    const Bytes frame = hex("81808008");  // 2^24 + 1
    std::copy(frame.begin(), frame.end(), framed_at_limit.begin());
    REQUIRE(decode_framed(framed_at_limit, m) == errc::limit_exceeded);
    REQUIRE(decode_message(ByteView(framed_at_limit).subspan(4), m) == errc::limit_exceeded);
    REQUIRE(decode_framed(frame, m) == errc::limit_exceeded);
    // One below the frame limit with nothing behind it is merely truncated.
    REQUIRE(decode_framed(hex("80808008"), m) == errc::malformed);
}

TEST_CASE("id 0 is a decode error in request, response and cancel", "[message]") {
    // protocol.md §6.2: a peer can rely on id 0 closing the connection, in every type that
    // carries an id (goaway's last_request_id is not an id and may be 0).
    Message m;
    REQUIRE(decode_message(hex("010000016d00"), m) == errc::malformed);
    REQUIRE(decode_message(hex("02000000"), m) == errc::malformed);
    REQUIRE(decode_message(hex("0400"), m) == errc::malformed);
    REQUIRE_FALSE(decode_message(hex("0700"), m));
    // The same envelopes with id 1 decode, so it is the id that is refused.
    REQUIRE_FALSE(decode_message(hex("010100016d00"), m));
    REQUIRE_FALSE(decode_message(hex("02010000"), m));
    REQUIRE_FALSE(decode_message(hex("0401"), m));
}

TEST_CASE("sdmp-no-compress asks only with the value 1", "[message]") {
    REQUIRE(k_metadata_no_compress.starts_with(k_reserved_metadata_prefix));
    REQUIRE(asks_no_compress({{"sdmp-no-compress", "1"}}));
    REQUIRE(asks_no_compress({{"trace", "x"}, {"sdmp-no-compress", "1"}}));
    REQUIRE_FALSE(asks_no_compress({}));
    REQUIRE_FALSE(asks_no_compress({{"sdmp-no-compress", "0"}}));
    REQUIRE_FALSE(asks_no_compress({{"sdmp-no-compress", ""}}));
    REQUIRE_FALSE(asks_no_compress({{"sdmp-no-compress", "true"}}));
    REQUIRE_FALSE(asks_no_compress({{"SDMP-NO-COMPRESS", "1"}}));  // keys are exact bytes
    REQUIRE_FALSE(asks_no_compress({{"sdmp-unknown", "1"}}));
    // Reserved keys are ordinary metadata to the codec: they round-trip unchanged.
    Bytes out;
    const Request r{1, "m", 0, {{"sdmp-no-compress", "1"}, {"sdmp-future", "x"}}, {}};
    REQUIRE_FALSE(encode_message(r, out));
    Message m;
    REQUIRE_FALSE(decode_framed(out, m));
    REQUIRE(same(m, r));
}

TEST_CASE("to_string names every status", "[message]") {
    REQUIRE(to_string(Status::ok) == "ok");
    REQUIRE(to_string(Status::shutting_down) == "shutting_down");
    for (int s = 0; s <= k_max_status; ++s) {
        REQUIRE(to_string(static_cast<Status>(s)) != "unknown");
    }
}

TEST_CASE("random messages round-trip and encoded_size is exact", "[message][property]") {
    std::mt19937 rng(5150);
    for (int iteration = 0; iteration < 3000; ++iteration) {
        std::vector<Message> sent;
        Bytes payload;
        std::size_t expected_size = 0;
        std::uniform_int_distribution<int> count(1, 4);
        for (int i = count(rng); i > 0; --i) {
            sent.push_back(random_message(rng));
            const std::size_t before = payload.size();
            REQUIRE_FALSE(encode_message(sent.back(), payload));
            REQUIRE(payload.size() - before == encoded_size(sent.back()));
            expected_size += encoded_size(sent.back());
        }
        REQUIRE(payload.size() == expected_size);
        std::vector<Message> received;
        REQUIRE_FALSE(decode_messages(payload, received));
        REQUIRE(received.size() == sent.size());
        for (std::size_t i = 0; i < sent.size(); ++i)
            REQUIRE(same(received[i], sent[i]));
    }
}

TEST_CASE("random and mutated bytes never crash the decoder", "[message][property]") {
    std::mt19937 rng(8086);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> op(0, 3);
    int decoded = 0;
    for (int iteration = 0; iteration < 20000; ++iteration) {
        Bytes input;
        if (iteration % 2 == 0) {
            std::uniform_int_distribution<std::size_t> len(0, 64);
            input.resize(len(rng));
            for (auto& b : input)
                b = static_cast<std::uint8_t>(byte(rng));
        } else {
            // Mutations of a valid encoding reach deeper into the parser than pure noise.
            REQUIRE_FALSE(encode_message(random_message(rng), input));
            for (int k = 1 + byte(rng) % 3; k > 0 && !input.empty(); --k) {
                const std::size_t at = static_cast<std::size_t>(rng()) % input.size();
                switch (op(rng)) {
                    case 0:
                        input[at] = static_cast<std::uint8_t>(byte(rng));
                        break;
                    case 1:
                        input.resize(at);
                        break;
                    case 2:
                        input.insert(input.begin() + static_cast<std::ptrdiff_t>(at),
                                     static_cast<std::uint8_t>(byte(rng)));
                        break;
                    default:
                        input.erase(input.begin() + static_cast<std::ptrdiff_t>(at));
                        break;
                }
            }
        }
        std::vector<Message> messages;
        const auto ec = decode_messages(input, messages);
        if (ec) {
            REQUIRE((ec == errc::malformed || ec == errc::limit_exceeded));
        } else {
            // The encoding is canonical: whatever decodes re-encodes to the same bytes.
            ++decoded;
            Bytes again;
            for (const auto& m : messages)
                REQUIRE_FALSE(encode_message(m, again));
            REQUIRE(again == input);
        }
        Message single;
        const auto ec1 = decode_message(input, single);
        if (ec1) {
            REQUIRE((ec1 == errc::malformed || ec1 == errc::limit_exceeded));
        } else {
            Bytes again;
            REQUIRE_FALSE(encode_message(single, again));
            REQUIRE(ByteView(again).subspan(varint_size(input.size())).size() == input.size());
            REQUIRE(
                std::equal(input.begin(), input.end(),
                           again.begin() + static_cast<std::ptrdiff_t>(varint_size(input.size()))));
        }
    }
    REQUIRE(decoded > 1000);
}

TEST_CASE("decode_next_message walks a payload one framed message at a time", "[message]") {
    Bytes payload;
    REQUIRE_FALSE(encode_message(Ping{9}, payload));
    REQUIRE_FALSE(encode_message(Cancel{300}, payload));
    const std::size_t valid = payload.size();
    payload.push_back(0x05);  // a frame announcing 5 bytes, with only 1 after it
    payload.push_back(0x04);

    std::size_t pos = 0;
    std::size_t size = 0;
    Message message;
    REQUIRE_FALSE(decode_next_message(payload, pos, message, size));
    CHECK(std::get<Ping>(message).opaque == 9);
    CHECK(size == 9);  // type byte and the u64, without the frame
    CHECK(pos == 10);
    REQUIRE_FALSE(decode_next_message(payload, pos, message, size));
    CHECK(std::get<Cancel>(message).id == 300);
    CHECK(size == 3);  // type byte and a two-byte varint
    CHECK(pos == valid);
    // A truncated frame fails and leaves the position where it was.
    CHECK(decode_next_message(payload, pos, message, size) == errc::malformed);
    CHECK(pos == valid);
    // An envelope over the limit is refused from its frame alone.
    MessageLimits small;
    small.max_message_size = 2;
    pos = 10;
    CHECK(decode_next_message(payload, pos, message, size, small) == errc::limit_exceeded);
    CHECK(pos == 10);
}
