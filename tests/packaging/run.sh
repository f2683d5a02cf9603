#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, checks the installed `sdmp` command (when the
# apps are built), then configures, builds and runs the consumer project against the prefix:
# find_package(sdmp) + target_link_libraries(app sdmp::sdmp).
# Usage: run.sh BUILD_DIR SOURCE_DIR "CXX_FLAGS" WITH_APPS(1|0) [CXX_COMPILER]
# The test passes on the consumer's "consumer ok" line, so every check comes before it.
set -euo pipefail
build=$1 source=$2 flags=${3:-} with_apps=${4:-0} compiler=${5:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null

if [[ $with_apps == 1 ]]; then
  tool=$work/prefix/bin/sdmp
  [[ -x $tool ]] || { echo "packaging: $tool was not installed"; exit 1; }
  help=$("$tool" --help) || { echo "packaging: '$tool --help' failed"; exit 1; }
  [[ $help == *keygen* ]] || { echo "packaging: '$tool --help' lists no keygen:"; echo "$help"; exit 1; }
  echo "installed sdmp --help ok"
fi

compiler_arg=()
[[ -n $compiler ]] && compiler_arg=(-DCMAKE_CXX_COMPILER="$compiler")
cmake -S "$source/tests/packaging/consumer" -B "$work/build" -G Ninja "${compiler_arg[@]}" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$work/build"
"$work/build/consumer"
