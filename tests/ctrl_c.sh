#!/usr/bin/env bash
# Ctrl-C as a user presses it: chat_push runs, a WebSocket client joins, the server
# gets SIGINT. The client must receive a close frame with code 1001 (Going Away,
# RFC 6455 section 7.4.1), the server must print its totals and exit with status 0.
# Then request_response: SIGINT with a kept-alive client, totals printed, status 0.
#
#   bash tests/ctrl_c.sh
#
# Needs cargo and python3 (the client is a few lines of raw WebSocket over a socket,
# so nothing is installed). Run by .ci/run.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cargo build --quiet --example chat_push --example request_response
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/examples"
logs=$(mktemp -d "${TMPDIR:-/tmp}/ctrl_c.XXXXXX")
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null; rm -rf "$logs"; }
trap cleanup EXIT

# Starts an example on a free port; sets server_pid and addr.
start() { # EXAMPLE LOG
  "$bin/$1" --addr 127.0.0.1:0 >"$2" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    addr=$(sed -n 's|^listening on http://||p' "$2")
    [ -n "$addr" ] && return 0
    sleep 0.05
  done
  echo "FAIL: $1 did not print its ready line"; cat "$2"; exit 1
}

# Waits (up to 10 s) for the server to exit; sets status to its exit status.
wait_exit() {
  for _ in $(seq 200); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$server_pid" 2>/dev/null; then echo "FAIL: still running 10 s after Ctrl-C"; exit 1; fi
  status=0
  wait "$server_pid" || status=$?
  server_pid=""
}

echo "== chat_push: Ctrl-C with a WebSocket client"
start chat_push "$logs/chat.log"
python3 - "$addr" "$server_pid" >"$logs/client.log" 2>&1 <<'EOF' &
import base64, os, signal, socket, struct, sys, time
host, port = sys.argv[1].rsplit(":", 1)
pid = int(sys.argv[2])
s = socket.create_connection((host, int(port)), timeout=10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET / HTTP/1.1\r\nHost: {sys.argv[1]}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
buf = b""
while b"\r\n\r\n" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("closed during the handshake")
    buf += chunk
head, buf = buf.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 101 "), head

def frame():
    global buf
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7F
            at = 2
            if n == 126:
                n, at = struct.unpack(">H", buf[2:4])[0], 4
            elif n == 127:
                n, at = struct.unpack(">Q", buf[2:10])[0], 10
            if len(buf) >= at + n:
                f = (buf[0] & 0x0F, buf[at:at + n])
                buf = buf[at + n:]
                return f
        chunk = s.recv(4096)
        if not chunk:
            return None
        buf += chunk

op, payload = frame()
print("joined:", payload.decode())
os.kill(pid, signal.SIGINT)  # the user presses Ctrl-C
while True:
    f = frame()
    if f is None:
        sys.exit("FAIL: connection closed without a close frame")
    op, payload = f
    if op == 0x8:
        code = struct.unpack(">H", payload[:2])[0]
        print("close code:", code, "reason:", payload[2:].decode())
        sys.exit(0 if code == 1001 else 1)
EOF
client=$!
wait_exit
client_status=0
wait "$client" || client_status=$?
cat "$logs/client.log"
[ "$client_status" = 0 ] || { echo "FAIL: the client did not get a 1001 close"; cat "$logs/chat.log"; exit 1; }
[ "$status" = 0 ] || { echo "FAIL: chat_push exited with $status"; cat "$logs/chat.log"; exit 1; }
grep -q "^server totals:" "$logs/chat.log" || { echo "FAIL: no totals"; cat "$logs/chat.log"; exit 1; }
sed -n '/^server totals:/,$p' "$logs/chat.log"

echo "== request_response: Ctrl-C with a kept-alive client"
start request_response "$logs/rr.log"
exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}"
printf 'GET /hello HTTP/1.1\r\nHost: x\r\n\r\n' >&3
sleep 0.2
kill -INT "$server_pid"
wait_exit
answer=$(cat <&3)
exec 3<&-
case "$answer" in
  "HTTP/1.1 200 OK"*) ;;
  *) echo "FAIL: the request before Ctrl-C got no answer: $answer"; exit 1 ;;
esac
[ "$status" = 0 ] || { echo "FAIL: request_response exited with $status"; cat "$logs/rr.log"; exit 1; }
grep -q "1 parsed, 1 answered" "$logs/rr.log" || { echo "FAIL: totals"; cat "$logs/rr.log"; exit 1; }
sed -n '/^server totals:/,$p' "$logs/rr.log"
echo "== ctrl_c: ok"
