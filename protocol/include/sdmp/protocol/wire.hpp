// Wire constants of protocol version 1 (docs/protocol.md). One place, so the spec and the
// code cannot drift apart silently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sdmp::protocol {

inline constexpr std::array<std::uint8_t, 4> k_magic = {'S', 'D', 'M', 'P'};
inline constexpr std::uint8_t k_version = 1;

enum class Role : std::uint8_t { initiator = 1, responder = 2 };

// protocol.md §3.1: magic(4) version(1) suite(1) role(1) reserved(1) ephemeral(32)
inline constexpr std::size_t k_prefix_size = 8;
inline constexpr std::size_t k_header_size = 40;
// protocol.md §3.2: fingerprint(32) timestamp(8) signature(64)
inline constexpr std::size_t k_body_plain_size = 104;
inline constexpr std::size_t k_body_sealed_size = k_body_plain_size + 16;
inline constexpr std::size_t k_connection_message_size = k_header_size + k_body_sealed_size;  // 160

// The four plaintext bytes of every validation failure (seed, "Connection dropping").
inline constexpr std::array<std::uint8_t, 4> k_nope = {'n', 'o', 'p', 'e'};

// Labels (ASCII, no terminator) used for domain separation; protocol.md §3 and §4.
inline constexpr std::string_view k_label_seal = "sdmp/1 seal";
inline constexpr std::string_view k_label_initiator_signature = "sdmp/1 initiator";
inline constexpr std::string_view k_label_responder_signature = "sdmp/1 responder";
inline constexpr std::string_view k_label_session_keys = "sdmp/1 session keys";
inline constexpr std::string_view k_label_key_update = "sdmp/1 key update";

// Records, protocol.md §5.
inline constexpr std::size_t k_record_prefix_size = 4;
inline constexpr std::size_t k_padding_block = 256;

}  // namespace sdmp::protocol
