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
# by their PIDs.
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
cleanup() {
  stop_pid "$server_pid"
  stop_pid "$refusing_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- installs (not counted in the 3 minutes) --------------------------------------
install_browser
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

finish chat_push "$server_pid" "$log"
