# What bench/github.sh and bench/okta.sh share: the release build, core pinning, the fake
# vendor's process, timing with peak RSS, medians and counting exported rows. Sourced after
# they set $work and cd to the repository root.

cargo build --release --quiet --examples
cargo build --release --quiet
bin=$PWD/target/release/scopetrail
vendor_bin=$PWD/target/release/examples/fake_vendor
fetch_bin=$PWD/target/release/examples/fetch_pages

need() { command -v "$1" >/dev/null 2>&1; }
pin_client=""; pin_vendor=""
if need taskset; then
  pin_client="taskset -c 0"
  [ "$(nproc)" -lt 2 ] || pin_vendor="taskset -c 1"
fi
export BENCH_TOKEN=bench-token-not-secret

vendor=""
stop_vendor() { if [ -n "$vendor" ]; then kill "$vendor" 2>/dev/null || true; wait "$vendor" 2>/dev/null || true; vendor=""; fi; }
trap stop_vendor EXIT

# Sets $secs and $rss (KB) for a command; its stdout goes to $work/stdout. Runs in this shell,
# not a subshell, so a failing command stops the bench with its log instead of a bogus row.
measure() {
  local t0=$EPOCHREALTIME status
  /usr/bin/time -o "$work/time" -f "%x %M" "$@" >"$work/stdout" 2>"$work/stderr" || true
  secs=$(echo "$EPOCHREALTIME - $t0" | bc -l)
  read -r status rss <"$work/time"
  if [ "$status" != 0 ]; then
    echo "FAILED (exit $status): $*" >&2
    tail -20 "$work/stderr" >&2
    exit 1
  fi
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

# Data rows of every exported file of a dataset (one header line each; no field holds a
# line break).
exported_rows() {
  local total=0 f lines
  while IFS= read -r -d '' f; do
    lines=$(zcat "$f" | wc -l)
    total=$((total + (lines > 0 ? lines - 1 : 0)))
  done < <(find "$1/out/v1/$2" -name '*.csv.gz' -print0 2>/dev/null)
  echo "$total"
}

