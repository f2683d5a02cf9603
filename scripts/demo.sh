#!/usr/bin/env bash
# Installs what is missing, builds the release preset and runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target sdmp-demo
exec build/release/apps/sdmp-demo/sdmp-demo "$@"
