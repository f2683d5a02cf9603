#!/usr/bin/env bash
# Extracts every file docs/guide.md marks with `<!-- guide-file: NAME -->` (the fenced blocks
# after each marker, concatenated in order) into an empty folder, installs the build tree into a
# scratch prefix, then configures, builds and runs the guide's program against it.
# Usage: run.sh BUILD_DIR SOURCE_DIR "CXX_FLAGS" [CXX_COMPILER]
set -euo pipefail
build=$1 source=$2 flags=${3:-} compiler=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/project"
awk -v dir="$work/project" '
  /^<!-- guide-file: .* -->$/ { file = $3; next }
  file != "" && !inside && /^```/ { inside = 1; next }
  inside && /^```$/ { inside = 0; file = ""; next }
  inside { print > (dir "/" file) }
' "$source/docs/guide.md"
for expected in CMakeLists.txt room_chat.cpp; do
  [[ -s $work/project/$expected ]] || { echo "guide: no $expected extracted"; exit 1; }
done

cmake --install "$build" --prefix "$work/prefix" >/dev/null
compiler_arg=()
[[ -n $compiler ]] && compiler_arg=(-DCMAKE_CXX_COMPILER="$compiler")
cmake -S "$work/project" -B "$work/build" -G Ninja "${compiler_arg[@]}" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$work/build"
"$work/build/room_chat"
