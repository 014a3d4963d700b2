#!/usr/bin/env bash
# Correlation over generated weeks (issue #9): time and peak RSS of the engine, against a
# baseline measured in the same run, over the same generated records (bench/correlate.rs).
#
#   bench/correlate.sh                          # 100k and 1M failures, changes = failures/10
#   SIZES="100000" ROUNDS=5 bench/correlate.sh
#
# Three modes per size, interleaved round by round and pinned to one core:
#   correlate  every record to Correlator::add as it is generated, then finish;
#   baseline   the least any correlator must do: group key, time and id per failure, the
#              changes kept, sorted by key and time, groups split at the 30-minute gap;
#   generate   the records only, built and dropped: what the other two spend generating.
# Seconds are the program's own (generating + feeding + finish; not process start or exit),
# medians of the rounds; peak RSS is /usr/bin/time's maximum resident set, else the
# program's VmHWM, medians too. "ratio" is (correlate - generate) / (baseline - generate):
# how many times the least work the engine costs. With changes = failures/10 and the rest of
# the world fixed (bindings, snapshots, counts), near-linear is about 10x time per 10x size.
#
# bench/vendor-lib.sh's measure and median would do, but sourcing it builds every example and
# the binary; this bench needs one example and reads its times from the program.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"100000 1000000"}
rounds=${ROUNDS:-3}
work=target/bench/correlate
mkdir -p "$work"

cargo build --release --quiet --example correlate
bin=$PWD/target/release/examples/correlate

need() { command -v "$1" >/dev/null 2>&1; }
pin="taskset -c 0"
need taskset || pin=""
timer=""; rss_from="VmHWM (in the JSON)"
if [ -x /usr/bin/time ]; then timer="/usr/bin/time -o $work/time -f %M"; rss_from="/usr/bin/time"; fi

# One run of mode $1, $2 failures, $3 changes, round $4: sets $secs (the program's) and $rss
# (KB); its JSON is left in $work/$1-$2-$4.json.
run() {
  local out=$work/$1-$2-$4.json
  if ! $timer $pin "$bin" "$1" "$2" "$3" >"$out" 2>"$work/stderr"; then
    echo "FAILED: $bin $1 $2 $3" >&2
    tail -20 "$work/stderr" >&2
    exit 1
  fi
  secs=$(sed -n 's/.*"seconds":\([-0-9.eE+]*\).*/\1/p' "$out")
  if [ -n "$timer" ]; then rss=$(tail -1 "$work/time"); else rss=$(sed -n 's/.*"vmhwm_kb":\([0-9]*\).*/\1/p' "$out"); fi
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }
modes="generate baseline correlate"

echo "rounds: $rounds, pinned: ${pin:-no}, peak RSS from: $rss_from"
printf '%-9s %-8s %9s %9s %9s %7s %7s %11s %9s %9s %9s\n' failures changes "corr s" "base s" "gen s" ratio "c/b" "net fail/s" "corr MB" "base MB" "gen MB"
prev_n=""
for n in $sizes; do
  m=$((n / 10))
  declare -A t=() r=()
  for round in $(seq "$rounds"); do
    for mode in $modes; do
      run "$mode" "$n" "$m" "$round"
      t[$mode]+="$secs "; r[$mode]+="$rss "
    done
  done
  for mode in $modes; do
    eval "sec_$mode=$(echo "${t[$mode]}" | median)"
    eval "mb_$mode=$(echo "${r[$mode]}" | median | awk '{printf "%.1f", $1 / 1024}')"
  done
  # shellcheck disable=SC2154 # set by the eval above
  awk -v n="$n" -v m="$m" -v c="$sec_correlate" -v b="$sec_baseline" -v g="$sec_generate" \
    -v cm="$mb_correlate" -v bm="$mb_baseline" -v gm="$mb_generate" 'BEGIN {
      ratio = (b - g > 0) ? sprintf("%.1f", (c - g) / (b - g)) : "n/a"
      rate = (c - g > 0) ? sprintf("%.0f", n / (c - g)) : "n/a"
      printf "%-9d %-8d %9.3f %9.3f %9.3f %7s %7.1f %11s %9.1f %9.1f %9.1f\n", n, m, c, b, g, ratio, c / b, rate, cm, bm, gm
    }'
  sed -n 's/.*"findings":\([0-9]*\).*"types":\({[^}]*}\).*/  findings of the last run: \1 \2/p' "$work/correlate-$n-$rounds.json"
  eval "c_$n=$sec_correlate b_$n=$sec_baseline g_$n=$sec_generate"
  if [ -n "$prev_n" ]; then
    eval "pc=\$c_$prev_n pb=\$b_$prev_n pg=\$g_$prev_n"
    # shellcheck disable=SC2154
    awk -v f="$(echo "$n / $prev_n" | bc -l)" -v c="$sec_correlate" -v b="$sec_baseline" -v g="$sec_generate" \
      -v pc="$pc" -v pb="$pb" -v pg="$pg" -v n="$n" -v p="$prev_n" 'BEGIN {
        net = (pc - pg > 0 && c - g > 0) ? sprintf("%.1fx", (c - g) / (pc - pg)) : "n/a"
        bnet = (pb - pg > 0 && b - g > 0) ? sprintf("%.1fx", (b - g) / (pb - pg)) : "n/a"
        printf "scaling %d -> %d (%.0fx the failures): correlate %.1fx (net of generation %s), baseline %.1fx (net %s), generate %.1fx\n", p, n, f, c / pc, net, b / pb, bnet, g / pg
      }'
  fi
  prev_n=$n
done
