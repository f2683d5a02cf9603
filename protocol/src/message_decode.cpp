// Decoding the message envelope, protocol.md §6: strict (minimal varints, no trailing bytes,
// the §6.2 limits checked before anything is allocated).
#include <cstring>

#include "message_checks.hpp"
#include "sdmp/error.hpp"
#include "sdmp/protocol/message.hpp"

namespace sdmp::protocol {

namespace {

using namespace detail;

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
