// Endpoint strings and Target (no Asio: parsing only; resolving is in transport.cpp, a
// named Target is looked up in client.cpp).
#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <utility>

#include "sdmp/framework/endpoint.hpp"

namespace sdmp {

namespace {

bool parse_port(std::string_view text, std::uint16_t& port) {
    if (text.empty() || text.size() > 5)
        return false;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9')
            return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535)
        return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

bool valid_host_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_';
}

std::optional<EndpointSpec> fail(std::string* error, std::string_view text, std::string_view why) {
    if (error != nullptr) {
        *error = "invalid endpoint '" + std::string(text) + "': " + std::string(why) +
                 " (expected host:port, a.b.c.d:port or [ipv6]:port)";
    }
    return std::nullopt;
}

}  // namespace

std::optional<EndpointSpec> parse_endpoint(std::string_view text, std::string* error) {
    if (text.empty())
        return fail(error, text, "empty");
    EndpointSpec spec;
    std::string_view port_text;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos)
            return fail(error, text, "missing ']'");
        const std::string_view host = text.substr(1, close - 1);
        if (host.empty())
            return fail(error, text, "empty address in brackets");
        const bool hexish = std::all_of(host.begin(), host.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.' ||
                   c == '%' || std::isalnum(static_cast<unsigned char>(c)) != 0;
        });
        if (!hexish || host.find(':') == std::string_view::npos) {
            return fail(error, text, "brackets must hold an IPv6 address");
        }
        if (close + 1 >= text.size() || text[close + 1] != ':') {
            return fail(error, text, "missing ':port' after ']'");
        }
        spec.host = std::string(host);
        port_text = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return fail(error, text, "missing ':port'");
        const std::string_view host = text.substr(0, colon);
        if (host.find(':') != std::string_view::npos) {
            return fail(error, text, "an IPv6 address needs brackets, e.g. [::1]:7000");
        }
        if (host.empty())
            return fail(error, text, "missing host");
        if (!std::all_of(host.begin(), host.end(), valid_host_char)) {
            return fail(error, text, "bad character in host");
        }
        spec.host = std::string(host);
        port_text = text.substr(colon + 1);
    }
    if (!parse_port(port_text, spec.port)) {
        return fail(error, text, "port must be a number from 0 to 65535");
    }
    return spec;
}

EndpointSpec EndpointSpec::parse(std::string_view text) {
    std::string error;
    auto spec = parse_endpoint(text, &error);
    if (!spec)
        throw std::invalid_argument(error);
    return std::move(*spec);
}

std::string EndpointSpec::to_string() const {
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

Target Target::address(std::string endpoint, crypto::Fingerprint fingerprint) {
    (void)EndpointSpec::parse(endpoint);  // throws for a malformed one
    Target target;
    target.kind_ = Kind::address;
    target.endpoint_ = std::move(endpoint);
    target.fingerprint_ = fingerprint;
    return target;
}

Target Target::named(std::string name_or_fingerprint) {
    Target target;
    target.kind_ = Kind::named;
    target.name_ = std::move(name_or_fingerprint);
    return target;
}

std::string Target::to_string() const {
    return kind_ == Kind::address ? endpoint_ : "'" + name_ + "'";
}

}  // namespace sdmp
