# What the real-browser checks share (sourced by chat_page.sh and jobs_page.sh):
# the pass/fail tally, the installs (Debian's chromium; playwright-core from the
# committed package-lock.json), building an example, starting it on a free port
# and reading its address from its ready line, running the page checks within the
# time left, and the closing checks on the server. The sourcing script sets
# `here`, `repo` and `work` first, and calls `finish` last.

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

# Stops a process by its PID: TERM, up to 5 s, then KILL.
stop_pid() { # PID
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
  fi
}

# Debian's chromium (apt-get; a browser downloaded by a test tool is not used) and
# playwright-core at the version package-lock.json pins (`npm ci`, which needs the
# npm registry; skipped when node_modules already holds that version).
install_browser() {
  if [ ! -x "$CHROMIUM" ]; then
    local sudo=""
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

  local locked installed
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
}

# Builds example NAME (debug) and sets `server_bin` to it.
build_example() { # NAME
  echo "== cargo build --example $1"
  (cd "$repo" && timeout 600 cargo build --quiet --example "$1") ||
    give_up "cargo build --example $1"
  local target=${CARGO_TARGET_DIR:-$repo/target}
  case "$target" in /*) ;; *) target="$repo/$target" ;; esac
  server_bin="$target/debug/examples/$1"
  [ -x "$server_bin" ] || give_up "built server at $server_bin"
}

# Starts `$server_bin --addr 127.0.0.1:0 ARGS...` with its output in LOG, and
# waits up to 10 s for its `listening on http://ADDR` line. Sets `started_pid`
# and `started_addr`; gives up (naming WHAT) if the line never comes.
start_example() { # LOG WHAT ARGS...
  local log=$1 what=$2
  shift 2
  "$server_bin" --addr 127.0.0.1:0 "$@" >"$log" 2>&1 &
  started_pid=$!
  started_addr=""
  for _ in $(seq 100); do
    started_addr=$(sed -n 's|^listening on http://\([0-9.]*:[0-9]*\)$|\1|p' "$log" | head -n1)
    [ -n "$started_addr" ] && break
    kill -0 "$started_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$started_addr" ]; then
    cat "$log" >&2
    give_up "$what prints 'listening on http://ADDR' within 10 s"
  fi
  pass "$what listening on $started_addr"
}

# Runs the page checks `node SCRIPT ARGS...` within the time left before
# `deadline`, and adds its `RESULT passed=N failed=M` line to the tally.
run_page_checks() { # SCRIPT ARGS...
  local left=$((deadline - SECONDS)) node_rc result
  set +e
  timeout --kill-after=5 "$left" node "$@" | tee "$work/page.log"
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
}

# The closing checks: server PID (named WHAT) still running, no panic in LOG;
# then the tally, and the exit status.
finish() { # WHAT PID LOG
  if kill -0 "$2" 2>/dev/null; then
    pass "$1 still running after the browser left"
  else
    fail "$1 still running after the browser left (it exited)"
  fi
  if grep -q "panicked" "$3"; then
    fail "$1 log has no panic"
    cat "$3" >&2
  else
    pass "$1 log has no panic"
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
