#!/usr/bin/env bash
# What Redis itself does per second on this machine, as a floor and a ceiling for
# the pub/sub built on it: redis-benchmark against a redis-server of the script's
# own, for
#
#   PUBLISH room <64-byte payload>                            no subscriber, then one
#   XADD stream MAXLEN ~ 100000 * m <64-byte payload>         trimmed to about 100,000
#
# each without pipelining (-P 1) and 16 commands to a write (-P 16), with
# -n 200000 requests over -c 50 connections. Besides ops/s it reads redis-server's
# CPU time (user + system, all its threads, from /proc/PID/stat) before and after
# each run: CPU µs per op is what one command costs the server, whatever the
# client's speed.
#
#   scripts/redis_baseline.sh
#   REQUESTS=500000 CLIENTS=100 scripts/redis_baseline.sh
#
# The server listens on a free port of 127.0.0.1 from BASE_PORT up (default 26379),
# runs in a temporary directory with persistence off, and is stopped on exit.
# Every run starts from an empty database (FLUSHALL). The one subscriber is
# `redis-cli SUBSCRIBE room` writing to /dev/null. Needs: redis-server, redis-cli,
# redis-benchmark (Debian: apt-get install -y redis-server redis-tools). Not run in
# CI: redis-benchmark and redis-server share the machine's cores, so compare rows of
# one run, not runs across machines or days.
#
# Then the crate's own client, examples/redis_load.rs (the RESP core on the loop),
# on the same server, beside redis-benchmark over one connection (-c 1), as
# redis_load sends: PUBLISH to a subscriber, XADD read back by XREAD BLOCK.
set -euo pipefail

REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-50}
BASE_PORT=${BASE_PORT:-26379}
PAYLOAD=$(printf '%064d' 0 | tr 0 m) # 64 bytes

for tool in redis-server redis-cli redis-benchmark; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "redis_baseline: $tool not found; install it: apt-get install -y redis-server redis-tools" >&2
    exit 1
  fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/redis_baseline.XXXXXX")
server_pid=""
subscriber_pid=""
stop() { # PID: TERM, then KILL after 5 s
  local pid=$1
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$subscriber_pid"
  stop "$server_pid"
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# True if nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

cli() { redis-cli -p "$port" "$@"; }

# Start redis-server on the first free port from BASE_PORT; if another process takes
# the port before redis-server binds it, try the next one (10 tries).
port=$BASE_PORT
for attempt in $(seq 10); do
  while ! port_free "$port"; do port=$((port + 1)); done
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --daemonize no --protected-mode no >"$dir/redis.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do # 10 s
    kill -0 "$server_pid" 2>/dev/null || break
    [ "$(cli PING 2>/dev/null)" = PONG ] && break
    sleep 0.05
  done
  if kill -0 "$server_pid" 2>/dev/null && [ "$(cli PING 2>/dev/null)" = PONG ] &&
    cli INFO server | grep -q "^process_id:$server_pid"; then
    break
  fi
  stop "$server_pid"
  server_pid=""
  if ! grep -q "Address already in use" "$dir/redis.log"; then
    echo "redis_baseline: redis-server did not start; its log:" >&2
    cat "$dir/redis.log" >&2
    exit 1
  fi
  port=$((port + 1))
done
if [ -z "$server_pid" ]; then
  echo "redis_baseline: no free port from $BASE_PORT after 10 tries" >&2
  exit 1
fi

ticks=$(getconf CLK_TCK)
# redis-server's CPU time so far, in clock ticks: utime + stime, fields 14 and 15
# of /proc/PID/stat (counted after the ")" that ends the command name, field 2).
cpu_ticks() {
  local stat rest f
  stat=$(<"/proc/$server_pid/stat")
  rest=${stat##*) }
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))
}

# One benchmark: prints "ops/s cpu_us_per_op". CONNS overrides -c.
run() { # PIPELINE COMMAND...
  local pipeline=$1 before after csv rps
  shift
  cli FLUSHALL >/dev/null
  before=$(cpu_ticks)
  csv=$(redis-benchmark -p "$port" -n "$REQUESTS" -c "${CONNS:-$CLIENTS}" -P "$pipeline" --csv "$@")
  after=$(cpu_ticks)
  # The second line: "COMMAND ARGS","rps","avg_latency_ms",...
  rps=$(printf '%s\n' "$csv" | sed -n 2p | cut -d, -f2 | tr -d '"')
  if [ -z "$rps" ]; then
    echo "redis_baseline: no result from redis-benchmark $*:" >&2
    printf '%s\n' "$csv" >&2
    exit 1
  fi
  awk -v rps="$rps" -v t=$((after - before)) -v hz="$ticks" -v n="$REQUESTS" \
    'BEGIN { printf "%.0f %.2f\n", rps, t / hz * 1e6 / n }'
}

row() { # LABEL SUBSCRIBERS PIPELINE OPS CPU
  printf '%-48s %11s %8s %12s %16s\n' "$@"
}

echo "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$port;" \
  "redis-benchmark -n $REQUESTS -c $CLIENTS; payload 64 bytes; $(nproc) cores"
echo
# "µs" is two bytes and one column: its field is one byte wider.
printf '%-48s %11s %8s %12s %17s\n' command subscribers pipeline ops/s "server CPU µs/op"
for pipeline in 1 16; do
  result=$(run "$pipeline" PUBLISH room "$PAYLOAD")
  read -r ops cpu <<<"$result"
  row "PUBLISH room <64 B>" 0 "-P $pipeline" "$ops" "$cpu"
done

redis-cli -p "$port" SUBSCRIBE room >/dev/null 2>&1 &
subscriber_pid=$!
for _ in $(seq 100); do
  [ "$(cli PUBSUB NUMSUB room | sed -n 2p)" = 1 ] && break
  sleep 0.05
done
for pipeline in 1 16; do
  result=$(run "$pipeline" PUBLISH room "$PAYLOAD")
  read -r ops cpu <<<"$result"
  # A subscriber too slow for its output buffer limit is cut by the server: then
  # the row measured no delivery, and says so.
  subs=$(cli PUBSUB NUMSUB room | sed -n 2p)
  [ "$subs" = 1 ] || subs="1 (cut)"
  row "PUBLISH room <64 B>" "$subs" "-P $pipeline" "$ops" "$cpu"
done
stop "$subscriber_pid"
subscriber_pid=""

for pipeline in 1 16; do
  result=$(run "$pipeline" XADD stream MAXLEN '~' 100000 '*' m "$PAYLOAD")
  read -r ops cpu <<<"$result"
  row "XADD stream MAXLEN ~ 100000 * m <64 B>" "" "-P $pipeline" "$ops" "$cpu"
done

# --- the crate's RESP core on the same server ---------------------------------------
# redis_load sends over ONE connection and reads over another (SUBSCRIBE, or XREAD
# BLOCK from the last id), counting a message when the reader has it: set beside
# redis-benchmark over one connection (-c 1) with one subscriber.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
echo
echo "one connection, as the crate's redis_load (examples/redis_load.rs) sends: -c 1, one subscriber"
echo "(redis_load's msgs/s are end to end: sent, through Redis, and read by its reader)"
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" --example redis_load
redis_load="${CARGO_TARGET_DIR:-$repo/target}/release/examples/redis_load"
printf '%-48s %11s %8s %12s %17s\n' command subscribers pipeline ops/s "server CPU µs/op"
redis-cli -p "$port" SUBSCRIBE room >/dev/null 2>&1 &
subscriber_pid=$!
for _ in $(seq 100); do
  [ "$(cli PUBSUB NUMSUB room | sed -n 2p)" = 1 ] && break
  sleep 0.05
done
for pipeline in 1 16; do
  result=$(CONNS=1 run "$pipeline" PUBLISH room "$PAYLOAD")
  read -r ops cpu <<<"$result"
  row "redis-benchmark -c 1: PUBLISH room <64 B>" 1 "-P $pipeline" "$ops" "$cpu"
done
stop "$subscriber_pid"
subscriber_pid=""
for pipeline in 1 16; do
  result=$(CONNS=1 run "$pipeline" XADD stream MAXLEN '~' 100000 '*' m "$PAYLOAD")
  read -r ops cpu <<<"$result"
  row "redis-benchmark -c 1: XADD stream ... <64 B>" "" "-P $pipeline" "$ops" "$cpu"
done
for pipeline in 1 16; do
  cli FLUSHALL >/dev/null
  out=$("$redis_load" --addr "127.0.0.1:$port" --mode both --messages "$REQUESTS" \
    --pipeline "$pipeline" --payload 64 --redis-pid "$server_pid")
  while read -r line; do
    get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
    case $(get mode) in
      publish) label="redis_load: PUBLISH -> SUBSCRIBE" ;;
      xadd) label="redis_load: XADD -> XREAD BLOCK" ;;
      *) continue ;;
    esac
    row "$label" 1 "-P $pipeline" "$(get msgs_per_s)" "$(get redis_cpu_us_per_msg)"
  done < <(grep '^RESULT' <<<"$out")
done
