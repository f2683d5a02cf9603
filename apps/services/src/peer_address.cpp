#include "sdmp/services/peer_address.hpp"

#include <fmt/core.h>

#include "sdmp/framework/endpoint.hpp"

namespace sdmp::services {

std::string PeerAddress::describe() const {
    if (name.empty())
        return fmt::format("{} at {}", fingerprint.short_hex(), endpoint);
    return fmt::format("{} ({}) at {}", name, fingerprint.short_hex(), endpoint);
}

std::optional<PeerAddress> parse_peer_address(std::string_view text,
                                              const crypto::TrustStore& trust, std::string& error) {
    const auto at = text.find('@');
    if (at == std::string_view::npos) {
        // A trust-store entry: the address comes from the store (protocol.md §7.3).
        const auto* peer = trust.find(text);
        if (peer == nullptr) {
            error = fmt::format(
                "peer '{}': no such name or fingerprint in the trust store (or use FP@HOST:PORT)",
                text);
            return std::nullopt;
        }
        if (peer->address.empty()) {
            error = fmt::format(
                "peer '{}': the trust store has no address for it; use FP@HOST:PORT", text);
            return std::nullopt;
        }
        std::string endpoint_error;
        const auto endpoint = parse_endpoint(peer->address, &endpoint_error);
        if (!endpoint || endpoint->port == 0) {
            error = fmt::format("peer '{}': bad address '{}' in the trust store: {}", text,
                                peer->address, endpoint ? "port 0" : endpoint_error);
            return std::nullopt;
        }
        return PeerAddress{peer->fingerprint, endpoint->to_string(), peer->name};
    }
    const auto fingerprint = crypto::Fingerprint::parse(text.substr(0, at));
    if (!fingerprint) {
        error = fmt::format("peer '{}': expected FP@HOST:PORT where FP is 64 hex characters", text);
        return std::nullopt;
    }
    std::string endpoint_error;
    const auto endpoint = parse_endpoint(text.substr(at + 1), &endpoint_error);
    if (!endpoint) {
        error = fmt::format("peer '{}': {}", text, endpoint_error);
        return std::nullopt;
    }
    if (endpoint->port == 0) {
        error = fmt::format("peer '{}': port 0 cannot be connected to", text);
        return std::nullopt;
    }
    const auto* peer = trust.find(*fingerprint);
    if (peer == nullptr) {
        error = fmt::format("peer '{}': fingerprint {} is not in the trust store", text,
                            fingerprint->hex());
        return std::nullopt;
    }
    return PeerAddress{*fingerprint, endpoint->to_string(), peer->name};
}

}  // namespace sdmp::services
