#!/usr/bin/env bash
# Fuzz smoke test. Builds the `fuzz` preset (clang, libFuzzer, ASan + UBSan; build/fuzz), replays
# every committed seed (fuzz/corpus/<target>/) and regression input
# (tests/protocol/fuzz_regressions/<target>/), then fuzzes each target for a bounded time on a
# scratch copy of its seed corpus, and prints one line per target.
#
# Usage: scripts/fuzz-smoke.sh [seconds per target]     (default 10, or $SDMP_FUZZ_SECONDS)
# Exits non-zero when any target crashes, leaks, times out or fails an invariant; the input that
# did it is kept as build/fuzz/artifacts/<target>-crash-* (replay it with the target binary,
# then commit it under tests/protocol/fuzz_regressions/<target>/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-${SDMP_FUZZ_SECONDS:-10}}
build=$root/build/fuzz
targets=(connection_message handshake_responder handshake_initiator record_open record_plaintext
         message_decode session_core session_lifecycle)
limits=(-rss_limit_mb=2048 -timeout=10)

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

artifacts=$build/artifacts
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=0
summary=()
for target in "${targets[@]}"; do
    exe=$build/fuzz/fuzz_$target
    corpus=$root/fuzz/corpus/$target
    regressions=$root/tests/protocol/fuzz_regressions/$target
    log=$work/$target.log

    # 1. Every committed input once (a regression input that still crashes fails the run).
    replay=("$corpus")
    if [[ -d $regressions ]]; then replay+=("$regressions"); fi
    if ! "$exe" -runs=0 "${limits[@]}" -artifact_prefix="$artifacts/$target-" "${replay[@]}" \
        >"$log.replay" 2>&1; then
        echo "fuzz-smoke: $target FAILED replaying committed inputs:" >&2
        tail -n 40 "$log.replay" >&2
        summary+=("$(printf '%-20s FAILED (replay of committed inputs)' "$target")")
        failed=1
        continue
    fi

    # 2. Bounded fuzzing on a scratch copy of the seeds (new corpus entries are discarded).
    mkdir "$work/$target"
    cp "$corpus"/* "$work/$target"/
    status=ok
    if ! "$exe" -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1 \
        -artifact_prefix="$artifacts/$target-" "$work/$target" >"$log" 2>&1; then
        status=FAILED
        failed=1
        echo "fuzz-smoke: $target FAILED:" >&2
        grep -E 'invariant violated|ERROR:|SUMMARY:|Test unit written|runtime error' "$log" >&2 || true
        tail -n 40 "$log" >&2
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 |
          sed -E 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+)\/([^ ]+).*/cov \1, ft \2, corpus \3 (\4)/')
    summary+=("$(printf '%-20s %-6s %10s execs in %ss, %s' "$target" "$status" "${execs:-?}" \
        "$seconds" "${cov:-no coverage line}")")
done

printf '%s\n' "${summary[@]}"
if [[ $failed -ne 0 ]]; then
    echo "fuzz-smoke: FAILED (inputs kept in $artifacts)" >&2
    exit 1
fi
echo "fuzz-smoke: all ${#targets[@]} targets ok"
