#!/usr/bin/env bash
# Throughput of the http_log source, against jq and DuckDB (one thread) doing the same
# filter-to-CSV on the same files, in the same run, each pinned to one core.
#
#   bench/http_log.sh                 # 1M and 10M lines
#   SIZES="1000000" bench/http_log.sh
#   DATA=/dev/shm/st bench/http_log.sh   # the log files in memory (tmpfs)
#   LAYOUTS=16 bench/http_log.sh      # lines in 16 layouts used evenly (optional headers)
#
# Where the VM's page cache does not keep a 3 GB file between runs, every tool reads it from
# disk again and the 10M-line figures measure the disk (grep, the fastest reader, shows it);
# DATA on a tmpfs measures the tools instead.
#
# scopetrail does more than the baselines: it also counts every line into request_counts,
# stages rate-limit events and derives bursts, and writes gzip CSV with a manifest.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${SIZES:-"1000000 10000000"}
layouts=${LAYOUTS:-1}
variant=""
[ "$layouts" = 1 ] || variant="-layouts$layouts"
rounds=${ROUNDS:-3}
work=target/bench/http_log
data=${DATA:-$work}
mkdir -p "$work" "$data"

need() { command -v "$1" >/dev/null 2>&1; }
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! need jq; then $sudo apt-get install -y -qq jq >/dev/null; fi
venv=target/tools/venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import duckdb" 2>/dev/null || "$venv/bin/pip" install -q --disable-pip-version-check "duckdb==1.4.1" || "$venv/bin/pip" install -q duckdb

cargo build --release --quiet --example gen_http_log
cargo build --release --quiet
bin=$PWD/target/release/scopetrail
pin="taskset -c 0"
need taskset || pin=""

# Prints "seconds max_rss_kb" for a command (seconds to the microsecond: grep is quick).
measure() {
  local t0=$EPOCHREALTIME rss
  rss=$(/usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1)
  echo "$(echo "$EPOCHREALTIME - $t0" | bc -l) $rss"
}
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

printf '%-12s %-10s %10s %12s %9s %12s\n' lines tool seconds lines/s MB/s "peak RSS"
declare -A rss_at
for n in $sizes; do
  file=$(realpath "$data")/lines-$n$variant.jsonl
  [ -s "$file" ] || target/release/examples/gen_http_log "$n" "$layouts" > "$file"
  mb=$(( $(stat -c %s "$file") / 1000000 ))
  dir=$work/run-$n$variant
  mkdir -p "$dir/jobs"
  cat > "$dir/scopetrail.toml" <<TOML
[store]
kind = "local"
path = "out"
[tenants.acme]
environment = "prod"
[sources.proxy]
kind = "http_log"
tenant = "acme"
paths = ["$file"]
[sources.proxy.fields]
time = "ts"
status = "response.status"
method = "request.method"
url = "request.url"
client_id = "client_id"
request_id = "request.id"
www_authenticate = "response.headers.www-authenticate"
retry_after = "response.headers.retry-after"
ratelimit_remaining = "response.headers.x-ratelimit-remaining"
error_code = "response.body.error"
user_agent = "request.headers.user-agent"
TOML
  printf 'schedule = "0 0 * * MON"\nsources = ["proxy"]\n' > "$dir/jobs/weekly.toml"
  jq_filter='select(.response.status == 401 or .response.status == 403) | [.ts, .response.status, .request.method, .request.url, .client_id, .request.id] | @csv'
  duck="import duckdb; c = duckdb.connect(); c.execute('SET threads=1'); c.execute(\"COPY (SELECT ts, response.status, request.method, request.url, client_id, request.id FROM read_json('$file', format='newline_delimited') WHERE response.status IN (401, 403)) TO '/dev/null' (FORMAT CSV)\")"
  declare -A t r
  for tool in scopetrail duckdb jq grep; do t[$tool]=""; r[$tool]=""; done
  # Interleaved rounds, so a noisy neighbour hurts every tool alike.
  for _ in $(seq "$rounds"); do
    rm -rf "$dir/out"
    read -r s m < <(measure $pin "$bin" run --config "$dir/scopetrail.toml" --now 2026-03-09T01:00:00Z)
    t[scopetrail]+="$s "; r[scopetrail]+="$m "
    read -r s m < <(measure $pin "$venv/bin/python" -c "$duck")
    t[duckdb]+="$s "; r[duckdb]+="$m "
    read -r s m < <(measure $pin jq -r "$jq_filter" "$file")
    t[jq]+="$s "; r[jq]+="$m "
    # grep stops at the first match when its output is /dev/null: give it a file.
    read -r s m < <(measure $pin sh -c 'LC_ALL=C grep -c "\"status\":40[13]" "$1" > "$2"' _ "$file" "$work/grep.out")
    t[grep]+="$s "; r[grep]+="$m "
  done
  for tool in scopetrail duckdb jq grep; do
    sec=$(echo "${t[$tool]}" | tr ' ' '\n' | grep . | median)
    rss=$(echo "${r[$tool]}" | tr ' ' '\n' | grep . | sort -n | tail -1)
    printf '%-12s %-10s %10.3f %12.0f %9.0f %10.1f MB\n' "$n" "$tool" "$sec" "$(echo "$n / $sec" | bc -l)" "$(echo "$mb / $sec" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    eval "sec_$tool=$sec"
    if [ "$tool" = scopetrail ]; then rss_at[$n]=$rss; fi
  done
  printf '%-12s scopetrail is %.2fx DuckDB, %.2fx jq and %.2fx grep (lines/s)\n' "$n" "$(echo "$sec_duckdb / $sec_scopetrail" | bc -l)" "$(echo "$sec_jq / $sec_scopetrail" | bc -l)" "$(echo "$sec_grep / $sec_scopetrail" | bc -l)"
done
# The goal is memory flat in the input: the largest size's peak against the smallest's.
read -r small large < <(echo "$sizes" | tr ' ' '\n' | grep . | sort -n | sed -n '1p;$p' | xargs)
large=${large:-$small}
printf 'peak RSS at %s vs %s lines (%.0fx the lines): scopetrail %.2fx (%.1f MB; goal: under 64 MB)\n' \
  "$large" "$small" "$(echo "$large / $small" | bc -l)" \
  "$(echo "${rss_at[$large]} / ${rss_at[$small]}" | bc -l)" "$(echo "${rss_at[$large]} / 1024" | bc -l)"
