#!/usr/bin/env bash
# Two builds of wirepatterns compared by what does not depend on a noisy machine:
# the instructions the server executes per operation (valgrind's callgrind counts
# them; the same binary and inputs give the same count whatever else runs) and the
# system calls it makes (strace -c).
#
#   request    request_response, 10 kept-alive connections, each sending GET / and
#              reading the answer, 300 then 600 times: instructions per request are
#              the difference of the two runs over the 3000 extra requests (start-up
#              and shutdown cancel out)
#   delivery   chat_push, wsload chat with 100 clients and 1 sender, 100 then 200
#              messages: instructions per delivery over the 10,000 extra deliveries
#
#   scripts/ab_instructions.sh                 # A = a035ebf (before the driver split), B = HEAD
#   scripts/ab_instructions.sh REV_A REV_B
#
# Builds come from scripts/ab_builds.sh's cache ($AB_CACHE, default /tmp/ab_builds),
# built here if missing. Needs valgrind, strace, python3 and wsload
# (`bash ../shared/bench/setup.sh`). Takes a few minutes: callgrind runs the server
# about 50 times slower.
set -euo pipefail

REV_A=${1:-a035ebf}
REV_B=${2:-HEAD}
BASE_PORT=${BASE_PORT:-28700}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wsload=/tmp/tools-target/release/wsload
for tool in valgrind strace python3; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install -y $tool)" >&2; exit 1; }
done
[ -x "$wsload" ] || { echo "wsload not found: run bash ../shared/bench/setup.sh" >&2; exit 1; }
. "$repo/scripts/lib.sh" # port_free, pick_port, build_rev
work=$(mktemp -d "${TMPDIR:-/tmp}/ab_instructions.XXXXXX")

declare -A bin_dir
bin_dir[A]=$(build_rev "$repo" "$REV_A")
bin_dir[B]=$(build_rev "$repo" "$REV_B")

# The client: CONNS connections, each sending PER requests one after the other.
cat >"$work/client.py" <<'EOF'
import socket, sys, threading
port, conns, per = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ab\r\n\r\n"
def run():
    s = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for _ in range(per):
        s.sendall(req)
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                head = buf[:end].decode().lower()
                length = int(head.split("content-length:")[1].split("\r\n")[0])
                if len(buf) >= end + 4 + length:
                    buf = buf[end + 4 + length:]
                    break
            buf += s.recv(65536)
    s.close()
threads = [threading.Thread(target=run) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
EOF

# Starts BIN under WRAPPER (valgrind or strace) on a free port; sets pid and port.
start() { # LOG WRAPPER... -- BIN
  local log=$1; shift
  port=$(pick_port)
  "$@" --addr "127.0.0.1:$port" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do grep -q "listening on" "$log" && return 0; sleep 0.05; done
  echo "server did not come up: $(cat "$log")" >&2; exit 1
}

# Instructions of one run: start, load, dump, kill.
instructions() { # SIDE EXAMPLE LOAD...
  local side=$1 example=$2; shift 2
  local out="$work/$side-$example-$RANDOM"
  start "$out.log" valgrind --tool=callgrind --callgrind-out-file="$out.cg" "${bin_dir[$side]}/$example"
  "$@" >/dev/null
  callgrind_control -d "$pid" >/dev/null 2>&1
  sleep 1
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
  callgrind_annotate "$out.cg".* >"$out.txt" 2>/dev/null
  awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' "$out.txt"
}

rr_load() { python3 "$work/client.py" "$port" 10 "$1"; }
chat_load() { "$wsload" chat --url "ws://127.0.0.1:$port/" --clients 100 --senders 1 --messages "$1" --timeout 120; }

# System calls of one run (strace -c), as "name=count" for the busy ones.
syscalls() { # SIDE
  local out="$work/$1-strace"
  start "$out.log" strace -c -f -o "$out.txt" "${bin_dir[$1]}/request_response"
  local server
  server=$(pgrep -P "$pid" -f request_response | head -n1)
  rr_load 300
  kill -9 "$server"; wait "$pid" 2>/dev/null || true
  awk '$NF ~ /^(recvfrom|sendto|epoll_wait|epoll_ctl|read|write)$/ {printf "%s=%s ", $NF, $4}' "$out.txt"
}

declare -A per_request per_delivery sys
for side in A B; do
  r1=$(instructions "$side" request_response rr_load 300)
  r2=$(instructions "$side" request_response rr_load 600)
  per_request[$side]=$(( (r2 - r1) / 3000 ))
  d1=$(instructions "$side" chat_push chat_load 100)
  d2=$(instructions "$side" chat_push chat_load 200)
  per_delivery[$side]=$(( (d2 - d1) / 10000 ))
  sys[$side]=$(syscalls "$side")
  echo "$side: request runs $r1 / $r2, chat runs $d1 / $d2 instructions" >&2
done

echo "A = $REV_A, B = $REV_B; ratio = B / A (lower is better)"
printf '| %-44s | %9s | %9s | %6s |\n' measure A B "B / A"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "-----------" "-----------" "--------"
for row in "instructions per request (request_response):per_request" "instructions per delivery (chat_push):per_delivery"; do
  name=${row%%:*}; key=${row##*:}
  declare -n table=$key
  printf '| %-44s | %9s | %9s | %6.3f |\n' "$name" "${table[A]}" "${table[B]}" \
    "$(awk -v a="${table[A]}" -v b="${table[B]}" 'BEGIN {print b / a}')"
done
echo
echo "system calls for 3000 requests on 10 connections (strace -c):"
echo "  A: ${sys[A]}"
echo "  B: ${sys[B]}"
