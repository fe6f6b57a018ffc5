# Shared by the measurement scripts in this folder: free-port picking on 127.0.0.1
# and stopping the one server a script started, by its PID. Source it after setting
# BASE_PORT (the first port to try; stay below the ephemeral range, 32768 and up,
# where client sockets left in TIME_WAIT by a large run can hold any port).

# True if nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the first free port from $BASE_PORT up.
pick_port() {
  local p=$BASE_PORT
  while ! port_free "$p"; do p=$((p + 1)); done
  echo "$p"
}

# The PID of the server the script is running, if any; stop_server ends it (TERM,
# then KILL after 5 s) and is run on exit.
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT INT TERM

# Builds request_response and chat_push of git revision REV in release mode, kept per
# commit under $AB_CACHE (default /tmp/ab_builds) so a second run reuses it, and
# prints the folder that holds the two binaries. For comparing two builds
# (ab_builds.sh, ab_instructions.sh).
build_rev() { # REPO REV
  local cache=${AB_CACHE:-/tmp/ab_builds} rev
  rev=$(git -C "$1" rev-parse --short "$2")
  if [ ! -d "$cache/$rev-src" ]; then
    mkdir -p "$cache/$rev-src"
    git -C "$1" archive "$rev" | tar -x -C "$cache/$rev-src"
  fi
  echo "building $(git -C "$1" log -1 --format='%h %s' "$rev" | cut -c1-70)" >&2
  CARGO_TARGET_DIR="$cache/$rev-target" cargo build --quiet --release \
    --manifest-path "$cache/$rev-src/Cargo.toml" --example request_response --example chat_push >&2
  echo "$cache/$rev-target/release/examples"
}
