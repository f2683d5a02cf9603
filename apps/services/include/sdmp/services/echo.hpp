// The echo service: method `echo` answers with the request body, byte for byte.
#pragma once

#include "sdmp/framework/router.hpp"

namespace sdmp::services {

inline constexpr const char* k_echo_method = "echo";

void add_echo(Router& router);

}  // namespace sdmp::services
