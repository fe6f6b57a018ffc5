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

work=$(mktemp -d "${TMPDIR:-/tmp}/chat_page.XXXXXX")
server_pid=""
refusing_pid=""
stop_pid() { # PID
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop_pid "$server_pid"
  stop_pid "$refusing_pid"
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

echo "== cargo build --example chat_push"
(cd "$repo" && timeout 600 cargo build --quiet --example chat_push) ||
  give_up "cargo build --example chat_push"
target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
server_bin="$target/debug/examples/chat_push"
[ -x "$server_bin" ] || give_up "built server at $server_bin"

# --- the run (bounded: 3 minutes at most) -------------------------------------------
deadline=$((SECONDS + 180))

log="$work/server.log"
"$server_bin" --addr 127.0.0.1:0 >"$log" 2>&1 &
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
  give_up "chat_push prints 'listening on http://ADDR' within 10 s"
fi
pass "chat_push listening on $addr"

# A second chat_push that accepts WebSockets only from an origin no page here has.
refusing_log="$work/refusing.log"
"$server_bin" --addr 127.0.0.1:0 --allow-origin http://nobody.invalid >"$refusing_log" 2>&1 &
refusing_pid=$!
refusing_addr=""
for _ in $(seq 100); do
  refusing_addr=$(sed -n 's|^listening on http://\([0-9.]*:[0-9]*\)$|\1|p' "$refusing_log" | head -n1)
  [ -n "$refusing_addr" ] && break
  kill -0 "$refusing_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$refusing_addr" ]; then
  cat "$refusing_log" >&2
  give_up "chat_push --allow-origin http://nobody.invalid prints its ready line within 10 s"
fi
pass "chat_push --allow-origin http://nobody.invalid listening on $refusing_addr"

echo "== headless Chromium on http://$addr/"
left=$((deadline - SECONDS))
set +e
timeout --kill-after=5 "$left" node "$here/chat_page.js" "http://$addr/" "http://$refusing_addr/" | tee "$work/page.log"
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
  pass "chat_push still running after the browsers left"
else
  fail "chat_push still running after the browsers left (it exited)"
fi
if grep -q "panicked" "$log"; then
  fail "chat_push log has no panic"
  cat "$log" >&2
else
  pass "chat_push log has no panic"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
