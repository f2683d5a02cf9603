// The message envelope, protocol.md §6.
#include "sdmp/protocol/message.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <type_traits>

#include "message_checks.hpp"
#include "sdmp/error.hpp"

namespace sdmp::protocol {

namespace {

using namespace detail;  // the field rules shared with the decoder

constexpr std::size_t k_max_varint_size = 10;

template <class... Fs>
struct Overloaded : Fs... {
    using Fs::operator()...;
};
// Explicit guide: clang before 17 does not deduce aggregate template arguments (the fuzz build).
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::size_t string_size(std::size_t n) noexcept {
    return varint_size(n) + n;
}

std::size_t metadata_size(const Metadata& metadata) noexcept {
    std::size_t n = varint_size(metadata.size());
    for (const auto& [key, value] : metadata)
        n += string_size(key.size()) + string_size(value.size());
    return n;
}

// Size of the envelope without its length frame (protocol.md §6.2).
std::size_t size_of_envelope(const Message& message) noexcept {
    return 1 +
           std::visit(
               Overloaded{
                   [](const Request& m) {
                       return varint_size(m.id) + varint_size(m.timeout_ms) +
                              string_size(m.method.size()) + metadata_size(m.metadata) +
                              m.body.size();
                   },
                   [](const Response& m) {
                       return varint_size(m.id) + 1 + metadata_size(m.metadata) + m.body.size();
                   },
                   [](const Notification& m) {
                       return string_size(m.method.size()) + metadata_size(m.metadata) +
                              m.body.size();
                   },
                   [](const Cancel& m) { return varint_size(m.id); },
                   [](const Ping&) { return std::size_t{8}; },
                   [](const Pong&) { return std::size_t{8}; },
                   [](const GoAway& m) { return varint_size(m.last_request_id) + m.reason.size(); },
                   [](const End&) { return std::size_t{0}; },
               },
               message);
}

std::error_code validate(const Message& message, const MessageLimits& limits) noexcept {
    return std::visit(Overloaded{
                          [&](const Request& m) -> std::error_code {
                              if (auto ec = check_id(m.id))
                                  return ec;
                              if (auto ec = check_method(m.method.size(), limits))
                                  return ec;
                              return check_metadata(m.metadata, limits);
                          },
                          [&](const Response& m) -> std::error_code {
                              if (auto ec = check_id(m.id))
                                  return ec;
                              if (static_cast<std::uint8_t>(m.status) > k_max_status)
                                  return errc::malformed;
                              return check_metadata(m.metadata, limits);
                          },
                          [&](const Notification& m) -> std::error_code {
                              if (auto ec = check_method(m.method.size(), limits))
                                  return ec;
                              return check_metadata(m.metadata, limits);
                          },
                          [&](const Cancel& m) -> std::error_code { return check_id(m.id); },
                          [&](const Ping&) -> std::error_code { return {}; },
                          [&](const Pong&) -> std::error_code { return {}; },
                          [&](const GoAway& m) -> std::error_code {
                              if (m.reason.size() > limits.max_reason_size)
                                  return errc::limit_exceeded;
                              return {};
                          },
                          [&](const End&) -> std::error_code { return {}; },
                      },
                      message);
}

// --- encoding ---
//
// The head of an envelope (everything but the body) is written through a pointer into space
// sized once (envelope_size is exact); the body is appended with one insert, never zero-filled
// first. Writing byte by byte with push_back cost more than the rest of encoding.

std::uint8_t* write_varint(std::uint64_t value, std::uint8_t* p) noexcept {
    while (value >= 0x80) {
        *p++ = static_cast<std::uint8_t>(value | 0x80);
        value >>= 7;
    }
    *p++ = static_cast<std::uint8_t>(value);
    return p;
}

std::uint8_t* write_u64(std::uint64_t value, std::uint8_t* p) noexcept {
    for (int shift = 56; shift >= 0; shift -= 8)
        *p++ = static_cast<std::uint8_t>(value >> shift);
    return p;
}

std::uint8_t* write_raw(ByteView bytes, std::uint8_t* p) noexcept {
    if (!bytes.empty())
        std::memcpy(p, bytes.data(), bytes.size());
    return p + bytes.size();
}

std::uint8_t* write_string(std::string_view s, std::uint8_t* p) noexcept {
    return write_raw(as_bytes(s), write_varint(s.size(), p));
}

std::uint8_t* write_metadata(const Metadata& metadata, std::uint8_t* p) noexcept {
    p = write_varint(metadata.size(), p);
    for (const auto& [key, value] : metadata)
        p = write_string(value, write_string(key, p));
    return p;
}

// The envelope without the body of a request, response or notification (protocol.md §6.2).
std::uint8_t* write_head(const Message& message, std::uint8_t* p) noexcept {
    *p++ = static_cast<std::uint8_t>(message.index() + 1);  // MessageType order
    return std::visit(Overloaded{
                          [&](const Request& m) {
                              p = write_varint(m.id, p);
                              p = write_varint(m.timeout_ms, p);
                              p = write_string(m.method, p);
                              return write_metadata(m.metadata, p);
                          },
                          [&](const Response& m) {
                              p = write_varint(m.id, p);
                              *p++ = static_cast<std::uint8_t>(m.status);
                              return write_metadata(m.metadata, p);
                          },
                          [&](const Notification& m) {
                              p = write_string(m.method, p);
                              return write_metadata(m.metadata, p);
                          },
                          [&](const Cancel& m) { return write_varint(m.id, p); },
                          [&](const Ping& m) { return write_u64(m.opaque, p); },
                          [&](const Pong& m) { return write_u64(m.opaque, p); },
                          [&](const GoAway& m) {
                              p = write_varint(m.last_request_id, p);
                              return write_raw(as_bytes(m.reason), p);
                          },
                          [&](const End&) { return p; },
                      },
                      message);
}

ByteView body_of(const Message& message) noexcept {
    return std::visit(Overloaded{
                          [](const Request& m) { return ByteView(m.body); },
                          [](const Response& m) { return ByteView(m.body); },
                          [](const Notification& m) { return ByteView(m.body); },
                          [](const auto&) { return ByteView{}; },
                      },
                      message);
}

// encode_message and encode_message_head.
std::error_code encode(const Message& message, Bytes& out, const MessageLimits& limits,
                       bool with_body) {
    if (auto ec = validate(message, limits))
        return ec;
    const std::size_t envelope = size_of_envelope(message);
    // protocol.md §6.2: the limit counts the envelope, not its length frame.
    if (envelope > limits.max_message_size)
        return errc::limit_exceeded;
    const ByteView body = body_of(message);
    const std::size_t head = varint_size(envelope) + envelope - body.size();
    const std::size_t base = out.size();
    // Grow geometrically: an exact reserve per message would make appending many quadratic.
    const std::size_t needed = base + head + (with_body ? body.size() : 0);
    if (needed > out.capacity())
        out.reserve(std::max(needed, 2 * out.capacity()));
    out.resize(base + head);
    [[maybe_unused]] std::uint8_t* const end =
        write_head(message, write_varint(envelope, out.data() + base));
    assert(end == out.data() + out.size());
    if (with_body)
        out.insert(out.end(), body.begin(), body.end());
    return {};
}

// The variant's alternatives are declared in wire order, so index + 1 is the type byte.
static_assert(std::is_same_v<std::variant_alternative_t<0, Message>, Request>);
static_assert(std::is_same_v<std::variant_alternative_t<6, Message>, GoAway>);
static_assert(std::is_same_v<std::variant_alternative_t<7, Message>, End>);
static_assert(std::variant_size_v<Message> == 8);
static_assert(static_cast<int>(MessageType::goaway) == 7);
static_assert(static_cast<int>(MessageType::end) == 8);

}  // namespace

std::string_view to_string(Status status) noexcept {
    switch (status) {
        case Status::ok:
            return "ok";
        case Status::unknown_method:
            return "unknown_method";
        case Status::invalid_argument:
            return "invalid_argument";
        case Status::not_found:
            return "not_found";
        case Status::application_error:
            return "application_error";
        case Status::deadline_exceeded:
            return "deadline_exceeded";
        case Status::cancelled:
            return "cancelled";
        case Status::too_large:
            return "too_large";
        case Status::overloaded:
            return "overloaded";
        case Status::shutting_down:
            return "shutting_down";
    }
    return "unknown";
}

void put_varint(std::uint64_t value, Bytes& out) {
    while (value >= 0x80) {
        out.push_back(static_cast<std::uint8_t>(value | 0x80));
        value >>= 7;
    }
    out.push_back(static_cast<std::uint8_t>(value));
}

std::size_t varint_size(std::uint64_t value) noexcept {
    std::size_t n = 1;
    while (value >= 0x80) {
        value >>= 7;
        ++n;
    }
    return n;
}

std::error_code get_varint(ByteView in, std::size_t& pos, std::uint64_t& value) noexcept {
    // protocol.md §6.1: LEB128, at most 10 bytes and 2^64 - 1, minimal encoding only.
    std::uint64_t result = 0;
    std::size_t p = pos;
    for (std::size_t i = 0; i < k_max_varint_size; ++i) {
        if (p >= in.size())
            return errc::malformed;
        const std::uint8_t byte = in[p++];
        // The 10th byte carries only bit 63: anything above 1 overflows or continues.
        if (i == k_max_varint_size - 1 && byte > 1)
            return errc::malformed;
        result |= std::uint64_t{byte & 0x7fu} << (7 * i);
        if ((byte & 0x80) == 0) {
            if (byte == 0 && i > 0)
                return errc::malformed;  // non-minimal
            value = result;
            pos = p;
            return {};
        }
    }
    return errc::malformed;  // unreachable: the 10th byte never continues
}

std::size_t encoded_size(const Message& message) {
    const std::size_t envelope = size_of_envelope(message);
    return varint_size(envelope) + envelope;
}

std::size_t envelope_size(const Message& message) noexcept {
    return size_of_envelope(message);
}

bool asks_no_compress(const Metadata& metadata) noexcept {
    // protocol.md §6.2: only the value "1" asks; any other value is as if the key were absent.
    return std::any_of(metadata.begin(), metadata.end(), [](const auto& entry) {
        return entry.first == k_metadata_no_compress && entry.second == "1";
    });
}

std::error_code encode_message(const Message& message, Bytes& out, const MessageLimits& limits) {
    return encode(message, out, limits, true);
}

std::error_code encode_message_head(const Message& message, Bytes& out,
                                    const MessageLimits& limits) {
    return encode(message, out, limits, false);
}

}  // namespace sdmp::protocol
