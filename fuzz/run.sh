#!/usr/bin/env bash
# Fuzzes every target (or the ones named) for SECONDS each, then minimises each corpus.
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# - Installs cargo-fuzz when it is missing (`cargo install cargo-fuzz --locked`).
# - Uses the nightly toolchain when there is one; without it, stable with `--sanitizer none`.
# - Builds with debug assertions and overflow checks (`-a`): an arithmetic overflow is a finding.
# - Sanitizer: `none` by default (the code under test is safe Rust, and AddressSanitizer costs
#   about 12x in executions per second on the session target). FUZZ_SANITIZER=address (nightly
#   only) turns it on.
# - One libFuzzer job and worker at a time (`-jobs=1 -workers=1`): the machines are small and
#   shared. The job's log, with its final stats, is kept in fuzz/logs/<target>.log.
# - Starts from the committed corpus plus the hand-made seeds (the auth-fuzz `seeds` example),
#   with the target's dictionary (fuzz/dicts/<target>.dict) when there is one, and minimises the
#   corpus afterwards (`cargo fuzz cmin`, by edge coverage), so what is committed stays small.
# - Findings land in fuzz/artifacts/<target>/; the script keeps going with the other targets
#   and exits non-zero at the end if there were any. docs/fuzzing.md says what to do with them.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
seconds=$1
shift

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$fuzz_dir/.." && pwd)
all_targets=(session token_response www_authenticate snapshot trace fleet)
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
for target in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $target "* ]] || {
        echo "unknown target $target (known: ${all_targets[*]})" >&2
        exit 2
    }
done

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

toolchain=()
sanitizer=${FUZZ_SANITIZER:-none}
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
    echo "== nightly toolchain, sanitizer $sanitizer"
else
    if [[ $sanitizer != none ]]; then
        echo "== no nightly toolchain: sanitizer $sanitizer needs it, using none" >&2
    fi
    sanitizer=none
    echo "== no nightly toolchain: stable with --sanitizer none"
fi
fuzz=(cargo "${toolchain[@]}" fuzz)
build_flags=(--fuzz-dir "$fuzz_dir" --debug-assertions --sanitizer "$sanitizer")

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
echo "== writing seeds"
cargo run --quiet --manifest-path "$root/Cargo.toml" -p auth-fuzz --example seeds -- "$seeds"

echo "== building the targets"
"${fuzz[@]}" build "${build_flags[@]}"

mkdir -p "$fuzz_dir/logs"
findings=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    artifacts="$fuzz_dir/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    cp -n "$seeds/$target"/* "$corpus"/ 2>/dev/null || true
    before=$(find "$artifacts" -type f | wc -l)
    dict=()
    [[ -f $fuzz_dir/dicts/$target.dict ]] && dict=(-dict="$fuzz_dir/dicts/$target.dict")

    echo "== fuzzing $target for ${seconds}s (output in fuzz/logs/$target.run.log)"
    # libFuzzer with -jobs writes the job's output to fuzz-0.log in the working directory.
    work=$(mktemp -d)
    status=0
    (cd "$work" && "${fuzz[@]}" run "${build_flags[@]}" "$target" "$corpus" -- \
        -max_total_time="$seconds" -jobs=1 -workers=1 -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 "${dict[@]}") >"$fuzz_dir/logs/$target.run.log" 2>&1 ||
        status=$?
    cat "$work"/fuzz-*.log >"$fuzz_dir/logs/$target.log" 2>/dev/null || true
    rm -rf "$work"
    # The final stats: "Done N runs in S second(s)" and the average executions per second.
    grep -E '^(Done [0-9]+ runs|stat::average_exec_per_sec)' "$fuzz_dir/logs/$target.log" |
        sed 's/^/   /' || true

    after=$(find "$artifacts" -type f | wc -l)
    if [[ $status -ne 0 || $after -gt $before ]]; then
        echo "!! $target: finding(s) in $artifacts (exit $status); see fuzz/logs/$target.log"
        findings+=("$target")
    fi

    echo "== minimising the $target corpus"
    # -use_counters=0: keep the fewest inputs that reach every edge (not every hit count), so
    # the committed corpus stays at tens to a few hundred files and replays in seconds.
    "${fuzz[@]}" cmin "${build_flags[@]}" "$target" "$corpus" -- -use_counters=0 \
        >"$fuzz_dir/logs/$target.cmin.log" 2>&1 ||
        echo "!! cmin of $target failed; see fuzz/logs/$target.cmin.log"
    echo "   $(find "$corpus" -type f | wc -l) files in $corpus"
done

if [[ ${#findings[@]} -gt 0 ]]; then
    echo "== findings in: ${findings[*]} (docs/fuzzing.md: turning a finding into a test)"
    exit 1
fi
echo "== no findings"
