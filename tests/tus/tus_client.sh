#!/usr/bin/env bash
# A standard tus client uploads to the upload example, unchanged: tus-js-client
# (from the npm registry, pinned in package-lock.json) in Node, against
# `cargo run --example upload -- serve` on a free loopback port. Two uploads of a
# 3 MiB file in 1 MiB parts: one straight through, one cut after its first part
# and resumed from its URL (the client asks the offset with HEAD, then sends the
# rest). Each stored upload's digest (`GET /uploads/ID/digest`) must be the file's.
# Run by .ci/run; needs node and npm (installs tus-js-client with `npm ci` if
# missing). Exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/tus_client.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL $1" >&2
  [ -f "$work/server.log" ] && sed 's/^/  server: /' "$work/server.log" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not installed"
locked=$(cd "$here" && node -p "require('./package-lock.json').packages['node_modules/tus-js-client'].version")
installed=$(cd "$here" && node -p "require('./node_modules/tus-js-client/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$locked" ]; then
  echo "== npm ci (tus-js-client $locked, pinned in package-lock.json; needs the npm registry)"
  (cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/tus"
fi
echo "ok   tus-js-client $(cd "$here" && node -p "require('./node_modules/tus-js-client/package.json').version")"

echo "== cargo build --example upload"
(cd "$repo" && timeout 600 cargo build --quiet --example upload) || fail "cargo build --example upload"
target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target="$repo/$target" ;; esac
bin="$target/debug/examples/upload"

mkdir -p "$work/store"
"$bin" serve --addr 127.0.0.1:0 --dir "$work/store" >"$work/server.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's|^listening on http://\([0-9.]*:[0-9]*\)$|\1|p' "$work/server.log" | head -n1)
  [ -n "$addr" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "the upload server exited"
  sleep 0.1
done
[ -n "$addr" ] || fail "the upload server never said where it listens"
echo "ok   upload serve on $addr"

head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$work/file.bin"
want=$(sha1sum "$work/file.bin" | cut -d' ' -f1)
size=$(stat -c %s "$work/file.bin")

timeout 120 node "$here/tus_client.js" "http://$addr/uploads" "$work/file.bin" 1048576 >"$work/client.txt" 2>&1 ||
  { cat "$work/client.txt" >&2; fail "tus-js-client upload"; }
count=$(grep -c '^uploaded ' "$work/client.txt" || true)
[ "$count" -eq 2 ] || { cat "$work/client.txt" >&2; fail "two uploads, one of them resumed (got $count)"; }
echo "ok   tus-js-client uploaded the file twice, the second cut after its first part and resumed"

while read -r _ url bytes; do
  [ "$bytes" = "$size" ] || fail "$url: the client says $bytes bytes, the file has $size"
  line=$(curl -sS --max-time 10 "$url/digest") || fail "GET $url/digest"
  case "$line" in
    "stored "*": $size bytes, sha1 $want") echo "ok   $url: $line" ;;
    *) fail "$url: the server stored something else: $line (want $size bytes, sha1 $want)" ;;
  esac
done <"$work/client.txt"
echo "tus client check passed"
