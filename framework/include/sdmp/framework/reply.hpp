// The outcome of one call: a status, a body and metadata (protocol.md §6.2, §6.3).
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "sdmp/crypto/bytes.hpp"
#include "sdmp/protocol/message.hpp"

namespace sdmp {

using protocol::Metadata;
using protocol::Status;

// Bytes holding a copy of `text` (bodies are bytes; this is for text and tests).
inline Bytes bytes_of(std::string_view text) {
    return Bytes(text.begin(), text.end());
}

// What a handler returns and what a caller receives. Statuses are values: a call that reached
// the peer and came back with a non-ok status is not an exception.
struct Reply {
    Status status = Status::ok;
    Bytes body;  // for a non-ok status: a short UTF-8 message for humans (protocol.md §6.3)
    Metadata metadata;
    // Send this answer in a record of its own at level 0 (never compressed): for a secret, or
    // data already compressed. An answer to a request sent with CallOptions::no_compress is
    // never compressed either (protocol.md §6.2, `sdmp-no-compress`).
    bool no_compress = false;

    static Reply ok(Bytes body = {}, Metadata metadata = {});
    static Reply ok(std::string_view text, Metadata metadata = {});
    static Reply error(Status status, std::string_view message);

    Reply& uncompressed() & noexcept {
        no_compress = true;
        return *this;
    }
    Reply&& uncompressed() && noexcept {
        no_compress = true;
        return std::move(*this);
    }

    bool is_ok() const noexcept { return status == Status::ok; }
    // The body as text (the error message of a non-ok reply).
    std::string_view text() const noexcept { return as_string_view(body); }
    // Value of the first metadata entry named `key`, or empty.
    std::string_view find_metadata(std::string_view key) const noexcept;
    // Throws StatusError(status, text()) unless the status is ok: a raw call then reports a
    // non-ok answer exactly as a typed call (sdmp::call_as) does.
    void ensure_ok() const;
};

// Thrown by a handler to answer with a specific status (the message goes into the body).
// Typed calls (sdmp::call_as) throw it when the peer answers with a non-ok status.
class StatusError : public std::runtime_error {
  public:
    StatusError(Status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    Status status() const noexcept { return status_; }

  private:
    Status status_;
};

}  // namespace sdmp
