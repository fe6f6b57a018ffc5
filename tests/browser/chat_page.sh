#!/usr/bin/env bash
# A real browser against the push chat: chat_push's page (GET /) in headless
# Chromium, two pages chatting, checked by what each page shows (chat_page.js).
#
#   bash tests/browser/chat_page.sh
#
# Run by .ci/run after `cargo test`, on a fresh Debian machine as root. It installs
# what is missing: Debian's chromium (apt-get; a browser downloaded by a test tool
# is not used), and playwright-core from the committed package-lock.json (`npm ci`,
# which needs the npm registry; skipped when node_modules already holds the locked
# version). Then it builds and starts `chat_push --addr 127.0.0.1:0`, reads the
# address from its ready line, starts a second one that allows only another origin
# (its page must explain the refusal), runs the page checks, and stops both servers
# by their PIDs. Then the same checks across two servers sharing one room through
# Redis: a redis-server of its own on a free port (Debian's; installed with
# apt-get if missing), two `chat_push --redis`, page A on one and page B on the
# other.
#
# Ends with `N passed, N failed` and exits non-zero if any check failed. Every wait
# is bounded: the part after the installs takes well under 3 minutes, and is cut at
# 3 minutes in any case. Environment: CHROMIUM (default /usr/bin/chromium),
# STEP_TIMEOUT_MS (each wait in the page, default 10000), CARGO_TARGET_DIR.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
work=$(mktemp -d "${TMPDIR:-/tmp}/chat_page.XXXXXX")
# shellcheck source=tests/browser/lib.sh
. "$here/lib.sh"

server_pid=""
refusing_pid=""
redis_pid=""
room_a_pid=""
room_b_pid=""
cleanup() {
  stop_pid "$server_pid"
  stop_pid "$refusing_pid"
  stop_pid "$room_a_pid"
  stop_pid "$room_b_pid"
  stop_pid "$redis_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- installs (not counted in the 3 minutes) --------------------------------------
install_browser
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing Debian's redis-server"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 apt-get update -q >/dev/null || give_up "apt-get update"
  timeout 600 apt-get install -y -q redis-server >/dev/null || give_up "apt-get install -y redis-server"
fi
build_example chat_push

# --- the run (bounded: 3 minutes at most) -------------------------------------------
deadline=$((SECONDS + 180))

log="$work/server.log"
start_example "$log" chat_push
server_pid=$started_pid
addr=$started_addr

# A second chat_push that accepts WebSockets only from an origin no page here has.
start_example "$work/refusing.log" "chat_push --allow-origin http://nobody.invalid" \
  --allow-origin http://nobody.invalid
refusing_pid=$started_pid
refusing_addr=$started_addr

echo "== headless Chromium on http://$addr/"
run_page_checks "$here/chat_page.js" "http://$addr/" "http://$refusing_addr/"

# --- one room, two servers, through Redis --------------------------------------------
redis_port=26480
while (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null; do redis_port=$((redis_port + 1)); done
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
  grep -q "Ready to accept connections" "$work/redis.log" && break
  sleep 0.1
done
grep -q "Ready to accept connections" "$work/redis.log" || give_up "redis-server on 127.0.0.1:$redis_port"
pass "redis-server on 127.0.0.1:$redis_port"

start_example "$work/room_a.log" "chat_push --redis (A)" --redis "127.0.0.1:$redis_port"
room_a_pid=$started_pid
room_a_addr=$started_addr
start_example "$work/room_b.log" "chat_push --redis (B)" --redis "127.0.0.1:$redis_port"
room_b_pid=$started_pid
room_b_addr=$started_addr
for log_file in "$work/room_a.log" "$work/room_b.log"; do
  for _ in $(seq 100); do
    grep -q "is shared through Redis" "$log_file" && break
    sleep 0.1
  done
  grep -q "is shared through Redis" "$log_file" || give_up "$(basename "$log_file" .log) joins the room through Redis"
done
pass "both servers say the room is shared through Redis"

echo "== headless Chromium on http://$room_a_addr/ and http://$room_b_addr/, one room"
run_page_checks "$here/chat_page.js" --room "http://$room_a_addr/" "http://$room_b_addr/"
for pid_log in "$room_a_pid:$work/room_a.log" "$room_b_pid:$work/room_b.log"; do
  if kill -0 "${pid_log%%:*}" 2>/dev/null && ! grep -q panicked "${pid_log#*:}"; then
    pass "chat_push --redis ($(basename "${pid_log#*:}" .log)) still running, no panic"
  else
    fail "chat_push --redis ($(basename "${pid_log#*:}" .log)) still running, no panic"
    cat "${pid_log#*:}" >&2
  fi
done

finish chat_push "$server_pid" "$log"
