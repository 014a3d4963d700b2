#!/usr/bin/env bash
# Events per second through the whole GitHub pipeline (fetch, parse, stage, export) and peak
# RSS, against a fake GitHub that advertises no rate limit and adds no latency, serving
# 100-delivery pages (bench/fake_vendor.rs). Every delivery failed, so every event becomes a
# webhook_failures row. The baseline, in the same run and interleaved, is fetch-and-parse only
# (bench/fetch_pages.rs): what any client of the API must do at the least. Both are pinned to
# core 0, the fake vendor to core 1. Median of ROUNDS.
#
#   bench/github.sh                     # 100k and 1M events, 3 rounds
#   SIZES="1000000" ROUNDS=1 bench/github.sh
#
# Goal (the issue): at least 50,000 events/s, memory flat in the number of events.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"100000 1000000"}
rounds=${ROUNDS:-3}
work=$PWD/target/bench/github
# A fixed instant in the past, given to both the fake vendor and scopetrail's clock. The
# newest delivery is an hour before it: 00:30 puts it before midnight, so the daily job's
# windows that have closed by now hold every event and the export can be counted exactly.
now=2026-03-09T00:30:00Z
mkdir -p "$work"
source bench/vendor-lib.sh

write_config() {
  local dir=$1 port=$2
  mkdir -p "$dir/jobs"
  cat >"$dir/scopetrail.toml" <<TOML
[store]
kind = "local"
path = "out"
[clock]
now = "$now"
[http]
max_pages = 100000
[tenants.bench]
environment = "prod"
[sources.gh]
kind = "github"
tenant = "bench"
org = "bench"
credential = "bench-bot"
api_url = "http://127.0.0.1:$port"
audit_log = false
[[credentials]]
name = "bench-bot"
environment = "prod"
token = "env:BENCH_TOKEN"
[[credentials.used_by]]
vendor = "github"
tenant = "bench"
TOML
  cat >"$dir/jobs/daily.toml" <<TOML
schedule = "0 0 * * *"
sources = ["gh"]
datasets = ["webhook_failures"]
TOML
}

declare -A sec mem
for n in $sizes; do
  rm -f "$work/port"
  $pin_vendor "$vendor_bin" "$work/port" "$n" "$now" 2>"$work/vendor.log" &
  vendor=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || { echo "fake_vendor did not start:" >&2; cat "$work/vendor.log" >&2; exit 1; }
  port=$(cat "$work/port")
  t_fetch=""; r_fetch=""; t_st=""; r_st=""
  # Interleaved rounds, so a noisy neighbour hurts both alike.
  for r in $(seq "$rounds"); do
    measure $pin_client "$fetch_bin" "http://127.0.0.1:$port"
    got=$(cat "$work/stdout")
    [ "$got" = "$n" ] || { echo "fetch_pages counted $got events, expected $n" >&2; exit 1; }
    t_fetch+="$secs "; r_fetch+="$rss "

    dir=$work/run-$n-$r
    rm -rf "$dir"
    write_config "$dir" "$port"
    measure $pin_client "$bin" run --config "$dir/scopetrail.toml"
    got=$(exported_rows "$dir" webhook_failures)
    if [ "$got" != "$n" ]; then
      echo "scopetrail exported $got webhook_failures rows, expected $n (see $dir and its log below)" >&2
      tail -20 "$work/stderr" >&2
      exit 1
    fi
    t_st+="$secs "; r_st+="$rss "
    rm -rf "$dir"
  done
  stop_vendor
  sec[$n,fetch]=$(echo "$t_fetch" | median); mem[$n,fetch]=$(echo "$r_fetch" | median)
  sec[$n,scopetrail]=$(echo "$t_st" | median); mem[$n,scopetrail]=$(echo "$r_st" | median)
done

printf '%-10s %-12s %10s %12s %12s\n' events tool seconds events/s "peak RSS"
for n in $sizes; do
  for tool in fetch scopetrail; do
    name=$tool; [ "$tool" = fetch ] && name=fetch-only
    printf '%-10s %-12s %10.3f %12.0f %9.1f MB\n' "$n" "$name" "${sec[$n,$tool]}" \
      "$(echo "$n / ${sec[$n,$tool]}" | bc -l)" "$(echo "${mem[$n,$tool]} / 1024" | bc -l)"
  done
  printf '%-10s scopetrail / fetch-only: %.2fx (events/s)\n' "$n" "$(echo "${sec[$n,fetch]} / ${sec[$n,scopetrail]}" | bc -l)"
done
read -r small large < <(echo "$sizes" | tr ' ' '\n' | grep . | sort -n | sed -n '1p;$p' | xargs)
large=${large:-$small}
printf 'peak RSS at %s vs %s events (%.0fx the events): scopetrail %.2fx, fetch-only %.2fx (median of %d rounds)\n' \
  "$large" "$small" "$(echo "$large / $small" | bc -l)" \
  "$(echo "${mem[$large,scopetrail]} / ${mem[$small,scopetrail]}" | bc -l)" \
  "$(echo "${mem[$large,fetch]} / ${mem[$small,fetch]}" | bc -l)" "$rounds"
