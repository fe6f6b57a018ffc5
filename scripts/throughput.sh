#!/usr/bin/env bash
# Requests per second: request_response's `GET /` beside a single-threaded hyper 1.x
# hello world, with wrk, on 127.0.0.1, alternating A B A B so both see the same
# machine (it is shared and noisy: compare the two columns, not runs across days).
#
#   scripts/throughput.sh             # 2 rounds: ours, hyper, ours, hyper
#   ROUNDS=3 DURATION=10s scripts/throughput.sh
#
# Each server is started fresh for its run, gets an unrecorded warm-up
# (`wrk -t1 -c50 -d1s`), then `wrk -t1 -c50 -d5s --latency http://127.0.0.1:PORT/`,
# and is stopped by its PID. Ports are picked free from 28080 up. Needs: cargo, wrk
# (installed with apt-get if missing) and the hyper peer from shared/bench (built here
# if missing). Not run in CI: a few tens of seconds with both cores busy.
#
# The two servers do not send the same response: hyper answers `Hello, World!`
# (13 bytes), request_response answers the anatomy of the request (a few hundred
# bytes, built per request). So the comparison favours hyper slightly.
set -euo pipefail

ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-5s}
WARMUP=${WARMUP:-1s}
CONNECTIONS=${CONNECTIONS:-50}
BASE_PORT=${BASE_PORT:-28080}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The repository lives beside shared/ (../shared/bench); fall back to /work/shared.
bench_dir=$(dirname "$repo")/shared/bench
[ -d "$bench_dir/rust-hyper" ] || bench_dir=/work/shared/bench
if [ ! -d "$bench_dir/rust-hyper" ]; then
  echo "cannot find shared/bench/rust-hyper beside $repo nor in /work/shared" >&2
  exit 1
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/throughput.XXXXXX")

# --- tools -------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing wrk with apt-get" >&2
  $sudo apt-get install -y wrk >/dev/null 2>&1 ||
    { $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null; }
fi

echo "building request_response (release)" >&2
cargo build --quiet --release --example request_response --manifest-path "$repo/Cargo.toml"
ours_bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples/request_response"

# rust-hyper's .cargo/config.toml puts its target dir at /tmp/peers-target; cargo
# reads that file from the working directory, hence the cd.
hyper_bin=/tmp/peers-target/release/rust-hyper
echo "building rust-hyper (release, locked)" >&2
(cd "$bench_dir/rust-hyper" && cargo build --quiet --release --locked)

# --- servers -----------------------------------------------------------------------
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # port_free, pick_port, server_pid, stop_server


# Waits (up to 10 s) until the server's log has its ready line and the port accepts.
wait_ready() { # LOG PATTERN PORT
  for _ in $(seq 200); do
    if grep -q "$2" "$1" 2>/dev/null && ! port_free "$3"; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not come up (log: $1)" >&2
  cat "$1" >&2
  return 1
}

start_server() { # NAME PORT LOG
  case "$1" in
    ours)
      "$ours_bin" --addr "127.0.0.1:$2" >"$3" 2>&1 &
      server_pid=$!
      wait_ready "$3" "listening on" "$2"
      ;;
    hyper)
      "$hyper_bin" --port "$2" --runtime current >"$3" 2>&1 &
      server_pid=$!
      wait_ready "$3" "listening on" "$2"
      ;;
  esac
}

# CPU seconds (user + system) the server has used so far.
server_cpu() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$server_pid/stat"
}

# --- runs --------------------------------------------------------------------------
results="$logs/results.tsv"
: >"$results"
for round in $(seq "$ROUNDS"); do
  for name in ours hyper; do
    port=$(pick_port)
    log="$logs/$name-$round.log"
    start_server "$name" "$port" "$log"
    url="http://127.0.0.1:$port/"
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
    cpu0=$(server_cpu)
    out="$logs/wrk-$name-$round.txt"
    wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$out"
    cpu1=$(server_cpu)
    stop_server
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF } /Socket errors:/ { print "errors" }' "$out" | paste -sd' ')
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$rps" "$p50" "$p99" "$cpu" "${bad:-}" >>"$results"
    printf 'round %s %-6s %12s req/s  p50 %-9s p99 %-9s server CPU %ss %s\n' \
      "$round" "$name" "$rps" "$p50" "$p99" "$cpu" "${bad:+($bad)}" >&2
  done
done

# --- table -------------------------------------------------------------------------
echo
echo "wrk -t1 -c$CONNECTIONS -d$DURATION --latency http://127.0.0.1:PORT/  (A B alternation, $ROUNDS rounds)"
echo
printf '| round | request_response req/s | p50 | p99 | hyper current_thread req/s | p50 | p99 | ours / hyper |\n'
printf '|---|---|---|---|---|---|---|---|\n'
awk -F'\t' '
  $2 == "ours"  { o[$1] = $3; op50[$1] = $4; op99[$1] = $5 }
  $2 == "hyper" { h[$1] = $3; hp50[$1] = $4; hp99[$1] = $5 }
  END {
    for (r = 1; r in o; r++) {
      printf "| %d | %.0f | %s | %s | %.0f | %s | %s | %.2f |\n", r, o[r], op50[r], op99[r], h[r], hp50[r], hp99[r], o[r] / h[r]
      so += o[r]; sh += h[r]; n++
    }
    printf "| mean | %.0f | | | %.0f | | | %.2f |\n", so / n, sh / n, so / sh
  }' "$results"
echo
echo "raw wrk output: $logs"
