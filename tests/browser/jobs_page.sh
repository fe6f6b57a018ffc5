#!/usr/bin/env bash
# A real browser against the jobs server: its lab page (GET /) in headless
# Chromium, one job followed four ways at once (short polling, long polling, SSE,
# WebSocket), checked by what the page shows and what the browser sent
# (jobs_page.js says what is checked).
#
#   bash tests/browser/jobs_page.sh
#
# Run by .ci/run after the chat page's test, on a fresh Debian machine as root. It
# installs what is missing, as chat_page.sh does: Debian's chromium (apt-get; a
# browser downloaded by a test tool is not used), and playwright-core from the
# committed package-lock.json (`npm ci`, which needs the npm registry; skipped when
# node_modules already holds the locked version). Then it builds and starts
# `jobs --addr 127.0.0.1:0 --step-ms 400` (a job takes 4 s), reads the address from
# its ready line, runs the page checks (which start two more servers of their own,
# one with a full store and one they kill mid-job, and stop them by their PIDs),
# and stops the server by its PID.
#
# Ends with `N passed, N failed` and exits non-zero if any check failed. Every wait
# is bounded: the part after the installs takes well under a minute, and is cut at
# 3 minutes in any case. Environment: CHROMIUM (default /usr/bin/chromium),
# STEP_TIMEOUT_MS (each short wait in the page, default 10000), LATE_BOUND_MS (the
# largest lateness accepted, default 3000), CARGO_TARGET_DIR.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
# The server's step: longer than the page's short poll interval (100 ms), so that
# short polling asks several times per update.
export STEP_MS=400
work=$(mktemp -d "${TMPDIR:-/tmp}/jobs_page.XXXXXX")
# shellcheck source=tests/browser/lib.sh
. "$here/lib.sh"

server_pid=""
cleanup() {
  stop_pid "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- installs (not counted in the 3 minutes) --------------------------------------
install_browser
build_example jobs

# --- the run (bounded: 3 minutes at most) -------------------------------------------
deadline=$((SECONDS + 180))

log="$work/server.log"
start_example "$log" "jobs --step-ms $STEP_MS" --step-ms "$STEP_MS"
server_pid=$started_pid
addr=$started_addr

echo "== headless Chromium on http://$addr/"
run_page_checks "$here/jobs_page.js" "http://$addr/" "$server_bin"

finish jobs "$server_pid" "$log"
