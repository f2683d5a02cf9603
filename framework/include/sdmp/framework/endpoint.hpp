// Endpoint strings: "host:port", "192.0.2.1:port", "[2001:db8::1]:port".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace sdmp
