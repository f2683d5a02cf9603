// Endpoint strings: "host:port", "192.0.2.1:port", "[2001:db8::1]:port", and the Target a
// client connects to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sdmp/crypto/identity.hpp"

namespace sdmp {

struct EndpointSpec {
    std::string host;  // a name or an address literal, without brackets
    std::uint16_t port = 0;

    // Re-formats with brackets around IPv6 literals, so parse(to_string()) round-trips.
    std::string to_string() const;

    // Throws std::invalid_argument with a message naming the text and what is wrong.
    static EndpointSpec parse(std::string_view text);
};

// Parses an endpoint string. On failure returns nullopt and, when `error` is not null, a
// message for humans. An IPv6 literal needs brackets ("::1:80" is ambiguous and refused);
// the port is required, decimal, 0..65535 (0 = any free port, for listening).
std::optional<EndpointSpec> parse_endpoint(std::string_view text, std::string* error = nullptr);

// Whom connect() dials and authenticates: either an address with the server's fingerprint,
// or an entry of the trust store, whose address is dialled and whose key is expected. Either
// way the server must be in the trust store (protocol.md §1: the initiator knows the
// responder's public identity).
class Target {
  public:
    enum class Kind : unsigned char {
        address,  // endpoint() and fingerprint() given by the application
        named,    // name(): a trust-store entry, by name or fingerprint (64 hex digits)
    };

    // "host:port" / "[v6]:port" of the server whose key has `fingerprint`. Throws
    // std::invalid_argument for a malformed endpoint, at once rather than at connect().
    static Target address(std::string endpoint, crypto::Fingerprint fingerprint);
    // The trust-store entry that TrustStore::find(name_or_fingerprint) finds; its address must
    // be set. Resolved by connect() against the store it is given.
    static Target named(std::string name_or_fingerprint);

    Kind kind() const noexcept { return kind_; }
    bool is_address() const noexcept { return kind_ == Kind::address; }
    bool is_named() const noexcept { return kind_ == Kind::named; }
    // Kind::address only (empty / a zero fingerprint otherwise).
    const std::string& endpoint() const noexcept { return endpoint_; }
    const crypto::Fingerprint& fingerprint() const noexcept { return fingerprint_; }
    // Kind::named only (empty otherwise).
    const std::string& name() const noexcept { return name_; }

    // For messages and logs: the endpoint, or the name in quotes.
    std::string to_string() const;

  private:
    Target() = default;

    Kind kind_ = Kind::address;
    std::string endpoint_;
    crypto::Fingerprint fingerprint_;
    std::string name_;
};

}  // namespace sdmp
