#!/usr/bin/env bash
# The notes' upload service, measured: one file (200 MiB by default) uploaded with
# `upload send` to `upload serve` (release builds), whole and in tus parts of 64 KiB
# to 16 MiB, then cut at 90% and resumed each way. Each run gets a fresh server and
# store, so the server's peak memory (VmHWM, /proc/PID/status) is that run's.
#
#   scripts/upload.sh                       # 200 MiB, parts 64K 256K 1M 4M 16M
#   SIZE_MIB=50 CHUNKS="1M 4M" scripts/upload.sh
#
# Prints a table (markdown) and writes target/upload-bench/upload.csv and .svg (the
# chart: `upload chart`). Loopback only; the store is in a temporary directory,
# removed at the end. Not run in CI: a few minutes, and 2 x SIZE of disk.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-200}
CHUNKS=${CHUNKS:-"64K 256K 1M 4M 16M"}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_dir=${OUT_DIR:-$repo/target/upload-bench}
work=$(mktemp -d "${TMPDIR:-/tmp}/upload_bench.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "building the upload example (release)" >&2
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" --example upload
bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples/upload"
mkdir -p "$out_dir"

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$work/file.bin"
size=$(stat -c %s "$work/file.bin")

# Starts a fresh server on a fresh store; sets server_pid and addr.
start_server() {
  rm -rf "$work/store"
  "$bin" serve --addr 127.0.0.1:0 --dir "$work/store" --max-size $((size * 2)) >"$work/server.log" 2>&1 &
  server_pid=$!
  addr=""
  for _ in $(seq 100); do
    addr=$(sed -n 's|^listening on http://\([0-9.]*:[0-9]*\)$|\1|p' "$work/server.log" | head -n1)
    [ -n "$addr" ] && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
}

stop_server() {
  kill -INT "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

csv="$out_dir/upload.csv"
echo "run,mode,chunk_size,throughput_mib_s,requests,server_peak_mib,resent_mib,time_s" >"$csv"

# One run: LABEL, then `upload send` flags.
run() {
  local label=$1
  shift
  start_server
  local log="$work/send.txt"
  if ! "$bin" send "$work/file.bin" --addr "$addr" "$@" >"$log" 2>&1; then
    echo "$label: upload send failed:" >&2
    cat "$log" >&2
    exit 1
  fi
  local hwm
  hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")
  stop_server
  local result
  result=$(grep '^RESULT ' "$log")
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
  [ "$(field matches)" = true ] || { echo "$label: the digest did not match" >&2; exit 1; }
  awk -v label="$label" -v mode="$(field mode)" -v chunk="$(field chunk_size)" \
    -v tp="$(field throughput_bytes_per_s)" -v req="$(field requests)" -v hwm="$hwm" \
    -v resent="$(field resent_bytes)" -v t="$(field time_s)" \
    'BEGIN { printf "%s,%s,%s,%.1f,%s,%.1f,%.1f,%s\n", label, mode, chunk, tp / 1048576, req, hwm / 1024, resent / 1048576, t }' >>"$csv"
  echo "  $label: $(tail -n1 "$csv")" >&2
}

run whole --mode whole
for c in $CHUNKS; do
  run "chunked $c" --mode chunked --chunk-size "$c"
done
run "whole cut at 90%" --mode whole --cut-after 90%
run "chunked 1M cut at 90%" --mode chunked --chunk-size 1M --cut-after 90%
# 90% of the file is a whole number of 1 MiB parts, so that cut falls between two
# parts; with 16 MiB parts it falls inside one, whose bytes are sent again.
run "chunked 16M cut at 90%" --mode chunked --chunk-size 16M --cut-after 90%

"$bin" chart "$csv" "$out_dir/upload.svg" >&2

echo
echo "One file of $SIZE_MIB MiB, \`upload send\` to a fresh \`upload serve\` each run (release, loopback):"
echo
echo "| run | throughput | requests | server peak memory (VmHWM) | re-sent after the cut | time |"
echo "|---|---:|---:|---:|---:|---:|"
tail -n +2 "$csv" | awk -F, '{ printf "| %s | %s MiB/s | %s | %s MiB | %s MiB | %s s |\n", $1, $4, $5, $6, $7, $8 }'
echo
echo "csv: $csv; chart: $out_dir/upload.svg"
