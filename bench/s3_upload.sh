#!/usr/bin/env bash
# Upload throughput of the S3 store: 1 GB of gzip CSV (8 files of 128 MB) to a local S3
# server (s3s-fs on loopback, SigV4), by scopetrail's store (as an export uploads: one file
# after another, create-only, in parts from the file) and by `aws s3 cp --recursive`
# (awscli from Debian, its defaults: 10 requests at once, 8 MB parts), in the same run,
# interleaved, median of ROUNDS.
#
#   bench/s3_upload.sh            # ROUNDS=3 FILES=8 FILE_MB=128
#   PART_MIB=64 bench/s3_upload.sh
#   CHECKSUM=when_required bench/s3_upload.sh   # no CRC32 on uploads: what awscli 2.9 sends
#
# With the default checksum mode scopetrail sends a CRC32 with every part, which the server
# verifies; awscli from Debian (2.9) predates default checksums and sends none.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}
files=${FILES:-8}
file_mb=${FILE_MB:-128}
work=$PWD/target/bench/s3
mkdir -p "$work/data"

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! /usr/bin/aws --version >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends awscli >/dev/null
fi
cargo build --release --quiet --example s3_server --example s3_put

# gzip CSV shaped like an export (ids, times, codes): one file, copied under eight names.
src=$work/data/denials-000.csv.gz
if [ ! -s "$src" ] || [ "$(stat -c %s "$src")" -lt $((file_mb * 1000000)) ]; then
  python3 - "$src" "$file_mb" <<'PY'
import gzip, os, random, sys, uuid
path, mb = sys.argv[1], int(sys.argv[2])
random.seed(7)
codes = ["insufficient_scope", "invalid_token", "forbidden", "rate_limited"]
with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as f:
    f.write(b"time,time_dt,event_uid,vendor,tenant_uid,status,api_operation,error_code,request_id\n")
    t = 1772668800000
    while raw.tell() < mb * 1000000:
        rows = []
        for _ in range(5000):
            t += random.randint(1, 900)
            rows.append(f"{t},2026-03-05T00:00:00.000Z,{uuid.UUID(int=random.getrandbits(128))},github,acme,{random.choice([401,403])},POST /repos/{{owner}}/{{repo}}/issues,{random.choice(codes)},{os.urandom(12).hex()}\n")
        f.write("".join(rows).encode())
PY
fi
for i in $(seq 1 $((files - 1))); do
  cp -f "$src" "$work/data/denials-$(printf %03d "$i").csv.gz"
done
total=$(du -cb "$work"/data/*.csv.gz | tail -1 | cut -f1)

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
root=$work/root
rm -rf "$root"; mkdir -p "$root/bench"
target/release/examples/s3_server "$root" "$port" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 1
endpoint=http://127.0.0.1:$port

# Prints "seconds max_rss_kb cpu_seconds" (CPU: the client's own, user + system; the server
# shares this machine, so it also tells what the client costs apart from the server).
measure() {
  local t0=$EPOCHREALTIME out
  out=$(/usr/bin/time -f "%M %U %S" "$@" 2>&1 >/dev/null | tail -1)
  set -- $out
  echo "$(echo "$EPOCHREALTIME - $t0" | bc -l) $1 $(echo "$2 + $3" | bc -l)"
}
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

: >"$work/times-scopetrail"; : >"$work/times-aws"
for r in $(seq 1 "$rounds"); do
  rm -rf "${root:?}/bench/"*
  measure target/release/examples/s3_put "$endpoint" bench "st-$r" "$work"/data/*.csv.gz >>"$work/times-scopetrail"
  rm -rf "${root:?}/bench/"*
  measure /usr/bin/aws s3 cp --quiet --recursive --endpoint-url "$endpoint" "$work/data" "s3://bench/aws-$r/" >>"$work/times-aws"
done
rm -rf "${root:?}/bench/"*

printf '%-12s %9s %9s %12s %12s\n' tool seconds MB/s "peak RSS" "client CPU"
for tool in scopetrail aws; do
  s=$(cut -d' ' -f1 "$work/times-$tool" | median)
  rss=$(cut -d' ' -f2 "$work/times-$tool" | median)
  cpu=$(cut -d' ' -f3 "$work/times-$tool" | median)
  printf '%-12s %9.2f %9.1f %9.1f MB %10.2f s\n' "$tool" "$s" "$(echo "$total / 1000000 / $s" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$cpu"
  echo "$s" >"$work/median-$tool"
done
printf 'scopetrail / aws s3 cp throughput: %.2fx (%d MB, %d rounds)\n' \
  "$(echo "$(cat "$work/median-aws") / $(cat "$work/median-scopetrail")" | bc -l)" $((total / 1000000)) "$rounds"
