#!/usr/bin/env bash
# Events per second through the whole Okta pipeline (fetch, parse, stage, export) and peak RSS,
# against a fake Okta that advertises no rate limit and adds no latency, serving the System Log
# in 1000-event pages (bench/fake_vendor.rs, `okta` mode): N events of about 2 KB made from the
# ListLogs fixture, 10% failed OAuth token requests (denials rows), 2% rate-limit violations
# (some in bursts: rate_limit_bursts rows), 0.2% OAuth client changes (changes rows), the rest
# successful logins (read, no row). The baseline, in the same run and interleaved, is
# fetch-and-parse only (bench/fetch_pages.rs): what any client of the API must do at the least.
# Both are pinned to core 0, the fake vendor to core 1. Median of ROUNDS. Each run's export is
# counted against what the fake served (`fake_vendor okta-expect N`): a mismatch stops the bench.
#
#   bench/okta.sh                       # 100k and 1M events, 3 rounds
#   SIZES="1000000" ROUNDS=1 bench/okta.sh
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"100000 1000000"}
rounds=${ROUNDS:-3}
work=$PWD/target/bench/okta
# A fixed instant in the past, given to both the fake vendor and scopetrail's clock. The
# newest event is an hour before it: 00:30 puts it before midnight, so the daily job's
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
[sources.okta]
kind = "okta"
tenant = "bench"
org_url = "http://127.0.0.1:$port"
credential = "okta-logs"
[[credentials]]
name = "okta-logs"
environment = "prod"
token = "env:BENCH_TOKEN"
[[credentials.used_by]]
vendor = "okta"
tenant = "bench"
TOML
  cat >"$dir/jobs/daily.toml" <<TOML
schedule = "0 0 * * *"
sources = ["okta"]
datasets = ["denials", "changes", "rate_limit_bursts"]
TOML
}

declare -A sec mem
for n in $sizes; do
  rm -f "$work/port"
  # What the fake serves must come out: denials, changes, violations, bursts.
  read -r want_denials want_changes _ want_bursts < <("$vendor_bin" okta-expect "$n")
  [ -n "${want_bursts:-}" ] || { echo "fake_vendor okta-expect $n failed" >&2; exit 1; }
  $pin_vendor "$vendor_bin" okta "$work/port" "$n" "$now" 2>"$work/vendor.log" &
  vendor=$!
  for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  [ -s "$work/port" ] || { echo "fake_vendor did not start:" >&2; cat "$work/vendor.log" >&2; exit 1; }
  port=$(cat "$work/port")
  t_fetch=""; r_fetch=""; t_st=""; r_st=""
  # Interleaved rounds, so a noisy neighbour hurts both alike.
  for r in $(seq "$rounds"); do
    measure $pin_client "$fetch_bin" okta "http://127.0.0.1:$port" "$now"
    got=$(cat "$work/stdout")
    [ "$got" = "$n" ] || { echo "fetch_pages counted $got events, expected $n" >&2; exit 1; }
    t_fetch+="$secs "; r_fetch+="$rss "

    dir=$work/run-$n-$r
    rm -rf "$dir"
    write_config "$dir" "$port"
    measure $pin_client "$bin" run --config "$dir/scopetrail.toml"
    for want in "denials $want_denials" "changes $want_changes" "rate_limit_bursts $want_bursts"; do
      read -r dataset expected <<<"$want"
      got=$(exported_rows "$dir" "$dataset")
      if [ "$got" != "$expected" ]; then
        echo "scopetrail exported $got $dataset rows of $n events, expected $expected (see $dir and its log below)" >&2
        tail -20 "$work/stderr" >&2
        exit 1
      fi
    done
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
