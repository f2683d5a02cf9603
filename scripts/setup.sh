#!/usr/bin/env bash
# Installs the Debian 12 packages sdmp needs, if any are missing. Idempotent: when everything
# is present it only runs dpkg queries and returns in well under a second.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config ccache
  libboost1.81-dev   # Asio (C++20 coroutines, awaitable operators, channels), Asio ssl
  libbotan-2-dev     # X25519, Ed25519, AES-256-GCM, ChaCha20-Poly1305, SHA-256, HKDF
  libdeflate-dev     # whole-buffer raw DEFLATE (RFC 1951)
  libfmt-dev         # formatting for logs and tools
  catch2             # unit and integration tests
  libcli11-dev       # command-line parsing for the sdmp tool
  nlohmann-json3-dev # JSON bodies (typed handlers, sample services)
  libsqlite3-dev     # durable storage for the sample services
  libssl-dev         # OpenSSL 3: the openssl crypto provider, the TLS 1.3 baseline in the benchmark
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # the gRPC baseline in the benchmark only
  clang libclang-rt-14-dev  # libFuzzer targets (fuzz preset, scripts/fuzz-smoke.sh)
  clang-format       # the format check that scripts/test.sh runs first
)

missing=()
for p in "${packages[@]}"; do
  [[ "$p" == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing missing packages: ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
