// The message envelope carried inside records (protocol.md §6).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "sdmp/crypto/bytes.hpp"

namespace sdmp::protocol {

enum class Status : std::uint8_t {
    ok = 0,
    unknown_method = 1,
    invalid_argument = 2,
    not_found = 3,
    application_error = 4,
    deadline_exceeded = 5,
    cancelled = 6,
    too_large = 7,
    overloaded = 8,
    shutting_down = 9,
};
inline constexpr std::uint8_t k_max_status = 9;
std::string_view to_string(Status status) noexcept;

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct Request {
    std::uint64_t id = 0;  // >= 1, chosen by the caller, unique among its open calls
    std::string method;
    std::uint64_t timeout_ms = 0;  // remaining budget; 0 = none
    Metadata metadata;
    Bytes body;
};
struct Response {
    std::uint64_t id = 0;
    Status status = Status::ok;
    Metadata metadata;
    Bytes body;  // for a non-ok status: a UTF-8 message for humans
};
struct Notification {
    std::string method;
    Metadata metadata;
    Bytes body;
};
struct Cancel {
    std::uint64_t id = 0;
};
struct Ping {
    std::uint64_t opaque = 0;
};
struct Pong {
    std::uint64_t opaque = 0;
};
struct GoAway {
    std::uint64_t last_request_id = 0;  // highest peer request id this side will still answer
    std::string reason;
};
// protocol.md §6.2, §6.6: the sender's last envelope; it shuts down its write side after the
// record that carries it.
struct End {};

// Alternatives in wire order: index + 1 is the type byte (MessageType).
using Message = std::variant<Request, Response, Notification, Cancel, Ping, Pong, GoAway, End>;

enum class MessageType : std::uint8_t {
    request = 1,
    response = 2,
    notification = 3,
    cancel = 4,
    ping = 5,
    pong = 6,
    goaway = 7,
    end = 8,
};

// protocol.md §6.2: an envelope is at most 16 MiB, counted from its type byte to its last byte;
// the varint length frame in front of it is not counted. A receiver refuses a frame announcing
// more (a decode error). A node may handle less (SessionOptions::max_message_size), but must
// still decode up to this size so that it can answer `too_large` instead of closing.
inline constexpr std::size_t k_max_envelope_size = std::size_t{16} << 20;

// protocol.md §6.2: metadata keys starting with "sdmp-" are reserved for the protocol; unknown
// ones are ignored. "sdmp-no-compress: 1" on a request asks for an uncompressed response.
inline constexpr std::string_view k_reserved_metadata_prefix = "sdmp-";
inline constexpr std::string_view k_metadata_no_compress = "sdmp-no-compress";
// True when `metadata` holds sdmp-no-compress with the value "1" (protocol.md §6.2).
bool asks_no_compress(const Metadata& metadata) noexcept;

struct MessageLimits {
    // One envelope without its length frame (protocol.md §6.2). Encoding and decoding refuse
    // more with errc::limit_exceeded; exactly this many bytes are accepted.
    std::size_t max_message_size = k_max_envelope_size;
    std::size_t max_method_size = 255;
    std::size_t max_metadata_entries = 16;
    std::size_t max_metadata_key_size = 64;
    std::size_t max_metadata_value_size = 1024;
    std::size_t max_reason_size = 1024;
};

// Appends varint(length) || envelope. Fails with errc::limit_exceeded (nothing appended) when
// a field exceeds `limits`, and with errc::malformed for what a receiver must reject anyway
// (id 0 in a request/response/cancel, empty method or metadata key, status above 9).
[[nodiscard]] std::error_code encode_message(const Message& message, Bytes& out,
                                             const MessageLimits& limits = {});
// Appends what encode_message would, except the body of a Request, Response or Notification
// (the frame's length counts it): the caller sends the body right after these bytes, e.g.
// gathered by reference instead of copied. Same validation and failure contract.
[[nodiscard]] std::error_code encode_message_head(const Message& message, Bytes& out,
                                                  const MessageLimits& limits = {});
// Size encode_message would append (for queue accounting), without encoding: the length frame
// plus envelope_size().
std::size_t encoded_size(const Message& message);
// Size of the envelope alone, type byte to last byte: what the limits of protocol.md §6.2 count.
std::size_t envelope_size(const Message& message) noexcept;

// Decodes every framed message of one record payload, appending to `out`. On error, `out`
// may hold the messages before the bad one; callers close the connection anyway.
[[nodiscard]] std::error_code decode_messages(ByteView payload, std::vector<Message>& out,
                                              const MessageLimits& limits = {});
// Decodes the framed message at `pos` (protocol.md §5.1, §6.2): on success `pos` moves past it
// and `envelope_size` is its envelope's length (without the frame). On error `pos` stays put.
// Receivers that dispatch a large payload one message at a time walk it with this.
[[nodiscard]] std::error_code decode_next_message(ByteView payload, std::size_t& pos, Message& out,
                                                  std::size_t& envelope_size,
                                                  const MessageLimits& limits = {});
// Decodes one envelope (without its length frame).
[[nodiscard]] std::error_code decode_message(ByteView envelope, Message& out,
                                             const MessageLimits& limits = {});

// LEB128 varints, at most 10 bytes, minimal encoding required when decoding.
void put_varint(std::uint64_t value, Bytes& out);
std::size_t varint_size(std::uint64_t value) noexcept;
// Reads a varint at `pos`, advancing it. errc::malformed on truncation/overlong/non-minimal.
[[nodiscard]] std::error_code get_varint(ByteView in, std::size_t& pos,
                                         std::uint64_t& value) noexcept;

}  // namespace sdmp::protocol
