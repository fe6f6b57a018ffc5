#!/usr/bin/env bash
# Memory per idle WebSocket connection (issue 3: at most 10 KiB): 10,000 connections
# to ws_echo, then to chat_push, each server fresh, measured by
# examples/idle_conns.rs from the server's VmRSS (/proc/PID/status) before and after.
#
#   scripts/idle_memory.sh                 # 10,000 connections, both servers
#   CLIENTS=2000 HOLD=25 scripts/idle_memory.sh
#
# ws_echo's connections are idle from the handshake on. chat_push first tells every
# member of every join (N(N+1)/2 notices: 50 million for 10,000), which idle_conns
# reads and drops; its figure is what is left once that flood is over, and takes
# about 15 s more. chat_push is then measured a second time with clients that never
# read after the handshake (`idle_conns --read no`): the notices pile up in the
# sockets' buffers and, past them, wait in the server (the broadcast log holds
# each once; the connections only cursors). That server runs with
# `--ping-interval 0`: clients that read nothing never answer a ping, and would be
# closed as dead peers 40 s in, before the measurement.
#
#   RUNS="chat_push:no" scripts/idle_memory.sh   # only that run HOLD seconds (default 0) keeps the connections a while longer,
# answering pings, and measures again. Ports are picked free from 28080 up, on
# 127.0.0.1. Open files: N sockets in the client and N in the server, so the soft
# limit is raised to the hard one (20,000 here) in this shell, which starts both.
# Exits non-zero if a run fails or misses the goal (MAX_KIB, default 4).
set -euo pipefail

CLIENTS=${CLIENTS:-10000}
HOLD=${HOLD:-0}
MAX_KIB=${MAX_KIB:-4}
BASE_PORT=${BASE_PORT:-28080}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
logs=$(mktemp -d "${TMPDIR:-/tmp}/idle_memory.XXXXXX")

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((CLIENTS + 100))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  echo "open-file limit $(ulimit -n) < $need: lower CLIENTS or raise the hard limit" >&2
  exit 1
fi

echo "building ws_echo, chat_push and idle_conns (release)" >&2
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" \
  --example ws_echo --example chat_push --example idle_conns
bin="${CARGO_TARGET_DIR:-$repo/target}/release/examples"

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # port_free, pick_port, server_pid, stop_server


# Starts NAME on PORT, logging to LOG; waits (up to 10 s) for its ready line.
start_server() { # NAME PORT LOG [EXTRA FLAGS...]
  local name=$1 port=$2 log=$3
  shift 3
  case "$name" in
    ws_echo) "$bin/ws_echo" --addr "127.0.0.1:$port" "$@" >"$log" 2>&1 & ;;
    chat_push) "$bin/chat_push" --addr "127.0.0.1:$port" --max-connections $((CLIENTS + 100)) "$@" >"$log" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 200); do
    grep -q "listening on" "$log" 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "$name did not come up (log: $log)" >&2
  cat "$log" >&2
  return 1
}

status=0
results="$logs/results.tsv"
: >"$results"
for run in ${RUNS:-ws_echo:yes chat_push:yes chat_push:no}; do
  name=${run%%:*}
  read=${run##*:}
  port=$(pick_port)
  extra=()
  [ "$read" = no ] && extra=(--ping-interval 0)
  start_server "$name" "$port" "$logs/$name-$read.log" "${extra[@]}"
  out="$logs/idle_conns-$name-$read.txt"
  cmd=("$bin/idle_conns" --url "ws://127.0.0.1:$port/" --clients "$CLIENTS" --pid "$server_pid"
    --timeout 300 --hold "$HOLD" --max-kib-per-conn "$MAX_KIB" --read "$read")
  echo "== $name: ${cmd[*]}" >&2
  rc=0
  "${cmd[@]}" >"$out" || rc=$?
  cat "$out" >&2
  stop_server
  [ "$rc" -eq 0 ] || status=1
  result=$(grep '^RESULT ' "$out" || true)
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$result"; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$read" "$(field opened)" "$(field rss_before_kb)" \
    "$(field rss_after_kb)" "$(field kib_per_conn)" "$(field texts)" "$(field last_message_s)" "$rc" >>"$results"
done

echo
echo "examples/idle_conns --clients $CLIENTS (server's VmRSS before and after; goal <= $MAX_KIB KiB per connection)"
echo
echo "| server | clients read | connections | VmRSS before KiB | VmRSS after KiB | KiB per connection | messages received | last message at s | exit |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$results"
echo
echo "logs: $logs"
exit "$status"
