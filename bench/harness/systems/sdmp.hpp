// Options of the `sdmp` system (systems/sdmp.cpp), set from sdmp-bench's command line before any
// system is made. Nothing here needs the framework, so main.cpp builds with or without the sdmp
// system.
#pragma once

#include <string>

namespace sdmp::bench {

// --crypto: the CryptoProvider of both ends of every sdmp connection, by the name
// sdmp::crypto::find_provider() takes ("botan", "openssl"). Making the sdmp system with a name
// this build lacks throws std::invalid_argument naming the ones it has.
inline std::string sdmp_crypto = "botan";

}  // namespace sdmp::bench
