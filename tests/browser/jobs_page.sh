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

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1" >&2; }
# Ends the run now: a step the rest depends on failed.
give_up() {
  fail "$1"
  echo "$passed passed, $failed failed"
  exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/jobs_page.XXXXXX")
server_pid=""
stop_pid() { # PID
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop_pid "$server_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- installs (not counted in the 3 minutes) --------------------------------------
if [ ! -x "$CHROMIUM" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "== installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  timeout 300 $sudo apt-get update -q >/dev/null ||
    give_up "apt-get update"
  timeout 600 $sudo apt-get install -y -q chromium >/dev/null ||
    give_up "apt-get install -y chromium"
fi
[ -x "$CHROMIUM" ] || give_up "chromium at $CHROMIUM"
pass "chromium: $("$CHROMIUM" --version 2>/dev/null | head -n1)"

# playwright-core's version pinned in package-lock.json, and the one installed.
locked=$(cd "$here" && node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")
installed=$(cd "$here" && node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ -n "$installed" ] && [ "$installed" = "$locked" ]; then
  echo "== playwright-core $installed already installed (package-lock.json): no npm ci"
else
  echo "== npm ci (playwright-core $locked, pinned in package-lock.json; needs the npm registry)"
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) ||
    give_up "npm ci in tests/browser (it needs the npm registry)"
fi
pass "playwright-core $(node -p "require('$here/node_modules/playwright-core/package.json').version")"

echo "== cargo build --example jobs"
(cd "$repo" && timeout 600 cargo build --quiet --example jobs) ||
  give_up "cargo build --example jobs"
target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
server_bin="$target/debug/examples/jobs"
[ -x "$server_bin" ] || give_up "built server at $server_bin"

# --- the run (bounded: 3 minutes at most) -------------------------------------------
deadline=$((SECONDS + 180))

log="$work/server.log"
"$server_bin" --addr 127.0.0.1:0 --step-ms "$STEP_MS" >"$log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's|^listening on http://\([0-9.]*:[0-9]*\)$|\1|p' "$log" | head -n1)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  cat "$log" >&2
  give_up "jobs prints 'listening on http://ADDR' within 10 s"
fi
pass "jobs --step-ms $STEP_MS listening on $addr"

echo "== headless Chromium on http://$addr/"
left=$((deadline - SECONDS))
set +e
timeout --kill-after=5 "$left" node "$here/jobs_page.js" "http://$addr/" "$server_bin" | tee "$work/page.log"
node_rc=${PIPESTATUS[0]}
set -e
result=$(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$work/page.log" | tail -n1)
if [ -n "$result" ]; then
  passed=$((passed + ${result% *}))
  failed=$((failed + ${result#* }))
fi
if [ "$node_rc" -ne 0 ] && [ -z "$result" ]; then
  fail "page checks ran to the end (node exited $node_rc$([ "$node_rc" -eq 124 ] && echo ', timed out'))"
elif [ "$node_rc" -ne 0 ] && [ "${result#* }" = 0 ]; then
  fail "node exited $node_rc with no failed check"
fi

if kill -0 "$server_pid" 2>/dev/null; then
  pass "jobs still running after the browser left"
else
  fail "jobs still running after the browser left (it exited)"
fi
if grep -q "panicked" "$log"; then
  fail "jobs log has no panic"
  cat "$log" >&2
else
  pass "jobs log has no panic"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
