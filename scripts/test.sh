#!/usr/bin/env bash
# Installs what is missing, builds and runs every test:
#   1. the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer (one run of every
#      test, with the sanitizers watching; it includes the benchmark smoke run),
#   2. the framework tests under ThreadSanitizer (only what TSan checks is built),
#   3. everything but fuzz/ built with clang 14 (Debug, no sanitizer) and the whole suite run
#      again, so that a break only one of the two compilers sees is caught,
#   4. a short fuzzing run of every protocol parser (scripts/fuzz-smoke.sh).
# Set SDMP_TEST_STAGES (e.g. "asan", or "asan clang") to run fewer stages.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)
stages=${SDMP_TEST_STAGES:-"asan tsan clang fuzz"}
start=$SECONDS
stage_done() { echo "== test.sh: $1 finished after $((SECONDS - start)) s"; }

# Every C++ file is formatted with the root .clang-format; an unformatted one fails the run.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z '*.cpp' '*.hpp' '*.h' | xargs -0 clang-format --dry-run -Werror
else
  find . -path ./build -prune -o \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) -print0 |
    xargs -0 clang-format --dry-run -Werror
fi
stage_done "format check"

if [[ " $stages " == *" asan "* ]]; then
  cmake --preset asan
  cmake --build --preset asan -j "$jobs"
  ctest --preset asan -j "$jobs"
  stage_done "ASan+UBSan suite"
fi
if [[ " $stages " == *" tsan "* ]]; then
  cmake --preset tsan
  cmake --build --preset tsan -j "$jobs"
  ctest --preset tsan -j "$jobs"
  stage_done "TSan framework suite"
fi
if [[ " $stages " == *" clang "* ]]; then
  cmake --preset clang
  cmake --build --preset clang -j "$jobs"
  ctest --preset clang -j "$jobs"
  stage_done "clang suite"
fi
if [[ " $stages " == *" fuzz "* ]]; then
  scripts/fuzz-smoke.sh 10
  stage_done "fuzz smoke"
fi
