// The message envelope, protocol.md §6.
#include "sdmp/protocol/message.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <type_traits>

#include "sdmp/error.hpp"

namespace sdmp::protocol {

namespace {

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

// --- validation shared by encoder and decoder (protocol.md §6.2 limits) ---

std::error_code check_method(std::size_t size, const MessageLimits& limits) noexcept {
    if (size == 0)
        return errc::malformed;
    if (size > limits.max_method_size)
        return errc::limit_exceeded;
    return {};
}

std::error_code check_metadata_key(std::size_t size, const MessageLimits& limits) noexcept {
    if (size == 0)
        return errc::malformed;
    if (size > limits.max_metadata_key_size)
        return errc::limit_exceeded;
    return {};
}

std::error_code check_metadata(const Metadata& metadata, const MessageLimits& limits) noexcept {
    if (metadata.size() > limits.max_metadata_entries)
        return errc::limit_exceeded;
    for (const auto& [key, value] : metadata) {
        if (auto ec = check_metadata_key(key.size(), limits))
            return ec;
        if (value.size() > limits.max_metadata_value_size)
            return errc::limit_exceeded;
    }
    return {};
}

// protocol.md §6.2: request ids are at least 1; responses and cancels name one.
std::error_code check_id(std::uint64_t id) noexcept {
    return id == 0 ? std::error_code{errc::malformed} : std::error_code{};
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

// --- decoding ---

class Reader {
  public:
    explicit Reader(ByteView in) noexcept : in_(in) {}

    bool at_end() const noexcept { return pos_ == in_.size(); }
    std::size_t remaining() const noexcept { return in_.size() - pos_; }

    std::error_code varint(std::uint64_t& value) noexcept { return get_varint(in_, pos_, value); }

    std::error_code u8(std::uint8_t& value) noexcept {
        if (remaining() < 1)
            return errc::malformed;
        value = in_[pos_++];
        return {};
    }

    std::error_code u64(std::uint64_t& value) noexcept {
        if (remaining() < 8)
            return errc::malformed;
        value = 0;
        for (std::size_t i = 0; i < 8; ++i)
            value = (value << 8) | in_[pos_ + i];
        pos_ += 8;
        return {};
    }

    // `string` of protocol.md §6.1; a length above `max` is limit_exceeded, one running past
    // the end malformed.
    std::error_code length(std::size_t max, std::size_t& n) noexcept {
        std::uint64_t v = 0;
        if (auto ec = varint(v))
            return ec;
        if (v > max)
            return errc::limit_exceeded;
        if (v > remaining())
            return errc::malformed;
        n = static_cast<std::size_t>(v);
        return {};
    }

    std::error_code string(std::size_t max, std::string& s) {
        std::size_t n = 0;
        if (auto ec = length(max, n))
            return ec;
        s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
        pos_ += n;
        return {};
    }

    std::error_code method(const MessageLimits& limits, std::string& s) {
        if (auto ec = string(limits.max_method_size, s))
            return ec;
        return check_method(s.size(), limits);
    }

    std::error_code metadata(const MessageLimits& limits, Metadata& metadata) {
        std::uint64_t count = 0;
        if (auto ec = varint(count))
            return ec;
        if (count > limits.max_metadata_entries)
            return errc::limit_exceeded;
        metadata.clear();
        metadata.reserve(static_cast<std::size_t>(count));
        for (std::uint64_t i = 0; i < count; ++i) {
            auto& [key, value] = metadata.emplace_back();
            if (auto ec = string(limits.max_metadata_key_size, key))
                return ec;
            if (auto ec = check_metadata_key(key.size(), limits))
                return ec;
            if (auto ec = string(limits.max_metadata_value_size, value))
                return ec;
        }
        return {};
    }

    std::error_code id(std::uint64_t& value) noexcept {
        if (auto ec = varint(value))
            return ec;
        return check_id(value);
    }

    ByteView rest() noexcept {
        const ByteView r = in_.subspan(pos_);
        pos_ = in_.size();
        return r;
    }

  private:
    ByteView in_;
    std::size_t pos_ = 0;
};

std::error_code decode_request(Reader& r, const MessageLimits& limits, Request& m) {
    if (auto ec = r.id(m.id))
        return ec;
    if (auto ec = r.varint(m.timeout_ms))
        return ec;
    if (auto ec = r.method(limits, m.method))
        return ec;
    if (auto ec = r.metadata(limits, m.metadata))
        return ec;
    const ByteView body = r.rest();
    m.body.assign(body.begin(), body.end());
    return {};
}

std::error_code decode_response(Reader& r, const MessageLimits& limits, Response& m) {
    if (auto ec = r.id(m.id))
        return ec;
    std::uint8_t status = 0;
    if (auto ec = r.u8(status))
        return ec;
    if (status > k_max_status)
        return errc::malformed;
    m.status = static_cast<Status>(status);
    if (auto ec = r.metadata(limits, m.metadata))
        return ec;
    const ByteView body = r.rest();
    m.body.assign(body.begin(), body.end());
    return {};
}

std::error_code decode_notification(Reader& r, const MessageLimits& limits, Notification& m) {
    if (auto ec = r.method(limits, m.method))
        return ec;
    if (auto ec = r.metadata(limits, m.metadata))
        return ec;
    const ByteView body = r.rest();
    m.body.assign(body.begin(), body.end());
    return {};
}

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

std::error_code decode_message(ByteView envelope, Message& out, const MessageLimits& limits) {
    if (envelope.size() > limits.max_message_size)
        return errc::limit_exceeded;
    Reader r(envelope);
    std::uint8_t type = 0;
    if (auto ec = r.u8(type))
        return ec;
    switch (static_cast<MessageType>(type)) {
        case MessageType::request: {
            Request m;
            if (auto ec = decode_request(r, limits, m))
                return ec;
            out = std::move(m);
            return {};
        }
        case MessageType::response: {
            Response m;
            if (auto ec = decode_response(r, limits, m))
                return ec;
            out = std::move(m);
            return {};
        }
        case MessageType::notification: {
            Notification m;
            if (auto ec = decode_notification(r, limits, m))
                return ec;
            out = std::move(m);
            return {};
        }
        case MessageType::cancel: {
            Cancel m;
            if (auto ec = r.id(m.id))
                return ec;
            if (!r.at_end())
                return errc::malformed;
            out = m;
            return {};
        }
        case MessageType::ping:
        case MessageType::pong: {
            std::uint64_t opaque = 0;
            if (auto ec = r.u64(opaque))
                return ec;
            if (!r.at_end())
                return errc::malformed;
            if (type == static_cast<std::uint8_t>(MessageType::ping)) {
                out = Ping{opaque};
            } else {
                out = Pong{opaque};
            }
            return {};
        }
        case MessageType::goaway: {
            GoAway m;
            if (auto ec = r.varint(m.last_request_id))
                return ec;
            if (r.remaining() > limits.max_reason_size)
                return errc::limit_exceeded;
            m.reason = std::string(as_string_view(r.rest()));
            out = std::move(m);
            return {};
        }
        case MessageType::end:
            // protocol.md §6.2: nothing follows the type byte.
            if (!r.at_end())
                return errc::malformed;
            out = End{};
            return {};
    }
    return errc::malformed;  // unknown type
}

std::error_code decode_next_message(ByteView payload, std::size_t& pos, Message& out,
                                    std::size_t& envelope_size, const MessageLimits& limits) {
    std::size_t at = pos;
    std::uint64_t length = 0;
    if (auto ec = get_varint(payload, at, length))
        return ec;
    // protocol.md §6.2: the frame alone is enough to refuse an envelope over the limit.
    if (length > limits.max_message_size)
        return errc::limit_exceeded;
    if (length > payload.size() - at)
        return errc::malformed;
    const auto n = static_cast<std::size_t>(length);
    if (auto ec = decode_message(payload.subspan(at, n), out, limits))
        return ec;
    pos = at + n;
    envelope_size = n;
    return {};
}

std::error_code decode_messages(ByteView payload, std::vector<Message>& out,
                                const MessageLimits& limits) {
    // protocol.md §5.1: a payload is one or more framed messages, never empty.
    if (payload.empty())
        return errc::malformed;
    std::size_t pos = 0;
    std::size_t size = 0;
    while (pos < payload.size()) {
        Message message;
        if (auto ec = decode_next_message(payload, pos, message, size, limits))
            return ec;
        out.push_back(std::move(message));
    }
    return {};
}

}  // namespace sdmp::protocol
