// The `ping` method every `sdmp serve` node answers: an empty reply, so `sdmp ping` measures
// the round trip of one request/response through the whole stack (records, queues, strand).
#pragma once

#include "sdmp/framework/router.hpp"

namespace sdmp::services {

inline constexpr const char* k_ping_method = "ping";

// Registers `ping`: any body (ignored), answers ok with an empty body.
void add_ping(Router& router);

}  // namespace sdmp::services
