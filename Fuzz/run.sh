#!/usr/bin/env bash
# Decoder fuzzing: builds the libFuzzer targets of Fuzz/ (a package of its own, outside the main build)
# with -sanitize=fuzzer and runs each for FUZZ_SECONDS (default 25) from its committed corpus
# (Fuzz/corpus/<target>; new finds go to a scratch copy, not into the tree). A crash leaves its input in
# Fuzz/crashes/<target>/ and fails the run. Usage: Fuzz/run.sh [target…] (default: every target).
# Prints "decoder-fuzz: ..." last.
set -u -o pipefail

here="$(cd "$(dirname "$0")" && pwd)"
seconds="${FUZZ_SECONDS:-25}"
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(sic-frame ha-message revision backup-archive enrolment)

started=$SECONDS
work="$(mktemp -d "${TMPDIR:-/tmp}/rampart-fuzz.XXXXXX")"
build_log="$work/build.log"
trap 'rm -rf "$work"' EXIT
# One product at a time: a plain `swift build` here would build the root package's every target too.
for target in "${targets[@]}"; do
    if ! (cd "$here" && nice -n 10 swift build -c debug -Xswiftc -sanitize=fuzzer --product "$target" >"$build_log" 2>&1); then
        grep -E "error" "$build_log" | head -20
        echo "decoder-fuzz: FAILED (build of $target)"
        exit 1
    fi
done
echo "fuzz targets built in $((SECONDS - started)) s"
bin="$(cd "$here" && swift build -c debug -Xswiftc -sanitize=fuzzer --show-bin-path)"

failed=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "$here/crashes/$target"
    cp "$here/corpus/$target/"* "$work/$target/" 2>/dev/null
    log="$work/$target.log"
    # -rss_limit_mb bounds a decoder that allocates what a header claims; -timeout one that loops.
    "$bin/$target" "$work/$target" -max_total_time="$seconds" -max_len=100000 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="$here/crashes/$target/" >"$log" 2>&1
    status=$?
    runs="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)"
    coverage="$(grep -oE 'cov: [0-9]+' "$log" | tail -1)"
    if [[ $status -eq 0 ]]; then
        echo "ok   $target: ${runs:-?} executions in $seconds s, ${coverage:-cov: ?}"
        rmdir "$here/crashes/$target" 2>/dev/null
    else
        failed+=("$target")
        echo "FAIL $target (exit $status): input kept in Fuzz/crashes/$target/"
        grep -E "ERROR|Fatal error|SUMMARY|==[0-9]+==" "$log" | head -10 | sed 's/^/     /'
    fi
done
rmdir "$here/crashes" 2>/dev/null
if [[ ${#failed[@]} -ne 0 ]]; then
    echo "decoder-fuzz: FAILED (${failed[*]})"
    exit 1
fi
echo "decoder-fuzz: ${#targets[@]} targets passed ($seconds s each; $((SECONDS - started)) s with the build)"
