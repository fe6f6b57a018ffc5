#!/usr/bin/env bash
# Two builds of wirepatterns side by side, alternating A B A B under the same load,
# to see what a change to the driver costs the server. On these 2-core machines the
# load tool sets the wall-clock rate, so what is compared is the server's own CPU
# time (utime + stime from /proc/PID/stat, or wsload's --pid figure) per operation:
#
#   throughput  request_response under `wrk -t1 -c50 -d5s` (as scripts/throughput.sh):
#               server CPU per request
#   broadcast   chat_push under `wsload chat --clients 1000 --senders 1 --messages 200`
#               (as scripts/broadcast.sh's fanout1000): server CPU per delivery, and
#               the server's peak RSS
#
#   scripts/ab_builds.sh                  # A = a035ebf (before the driver split), B = HEAD
#   scripts/ab_builds.sh REV_A REV_B
#   ROUNDS=4 scripts/ab_builds.sh
#
# Each revision is exported with `git archive` and built in release mode with a
# target dir of its own (kept in $AB_CACHE, default /tmp/ab_builds). Each run gets a fresh server. Needs wrk
# and wsload (`bash ../shared/bench/setup.sh` builds wsload; wrk is installed with
# apt-get if missing). Not run in CI: a few minutes with both cores busy.
set -euo pipefail

REV_A=${1:-a035ebf}
REV_B=${2:-HEAD}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
BASE_PORT=${BASE_PORT:-28300}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wsload=/tmp/tools-target/release/wsload
if [ ! -x "$wsload" ]; then
  echo "wsload not found at $wsload: run bash ../shared/bench/setup.sh first" >&2
  exit 1
fi
if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update >/dev/null && $sudo apt-get install -y wrk >/dev/null
fi
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
. "$repo/scripts/lib.sh" # port_free, pick_port, server_pid, stop_server, build_rev

work=$(mktemp -d "${TMPDIR:-/tmp}/ab_runs.XXXXXX")
declare -A bin_dir
bin_dir[A]=$(build_rev "$repo" "$REV_A")
bin_dir[B]=$(build_rev "$repo" "$REV_B")

ticks=$(getconf CLK_TCK)
# The process's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Its user time so far, in clock ticks.
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }

start_server() { # SIDE EXAMPLE PORT LOG
  "${bin_dir[$1]}/$2" --addr "127.0.0.1:$3" >"$4" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    if grep -q "listening on" "$4" 2>/dev/null && ! port_free "$3"; then return 0; fi
    sleep 0.05
  done
  echo "server did not come up: $(cat "$4")" >&2
  return 1
}

results="$work/results.txt"
: >"$results"
for round in $(seq "$ROUNDS"); do
  for side in A B; do
    port=$(pick_port)
    start_server "$side" request_response "$port" "$work/rr-$side-$round.log"
    wrk -t1 -c50 -d1s "http://127.0.0.1:$port/" >/dev/null
    c0=$(cpu_ticks "$server_pid")
    u0=$(user_ticks "$server_pid")
    out=$(wrk -t1 -c50 -d"$DURATION" "http://127.0.0.1:$port/")
    c1=$(cpu_ticks "$server_pid")
    u1=$(user_ticks "$server_pid")
    stop_server
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    us=$(awk -v c=$((c1 - c0)) -v t="$ticks" -v n="$requests" 'BEGIN {printf "%.2f", c / t * 1e6 / n}')
    user=$(awk -v u=$((u1 - u0)) -v c=$((c1 - c0)) 'BEGIN {printf "%.0f", c ? 100 * u / c : 0}')
    echo "throughput $round $side requests=$requests rps=$rps cpu_us_per_request=$us user_percent=$user" | tee -a "$results"

    port=$(pick_port)
    start_server "$side" chat_push "$port" "$work/chat-$side-$round.log"
    line=$("$wsload" chat --url "ws://127.0.0.1:$port/" --clients 1000 --senders 1 \
      --messages 200 --timeout 20 --pid "$server_pid" | grep '^RESULT ' | tail -n1)
    stop_server
    received=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "received" {print $2}')
    cpu=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "server_cpu_s" {print $2}')
    peak=$(echo "$line" | tr ' ' '\n' | awk -F= '$1 == "server_rss_peak_kb" {print $2}')
    ns=$(awk -v c="$cpu" -v n="$received" 'BEGIN {printf "%.0f", c * 1e9 / n}')
    echo "broadcast $round $side received=$received cpu_ns_per_delivery=$ns rss_peak_kib=$peak" | tee -a "$results"
  done
done

echo
echo "A = $REV_A, B = $REV_B; medians of $ROUNDS alternating rounds; ratio = B / A (lower is better)"
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def med(kind, side, key):
    vals = [float(f.split("=")[1]) for r in rows if r[0] == kind and r[2] == side
            for f in r[3:] if f.startswith(key + "=")]
    return statistics.median(vals) if vals else float("nan")
table = [
    ("server CPU per request (wrk)", "throughput", "cpu_us_per_request", "µs"),
    ("requests per second (wrk)", "throughput", "rps", "/s"),
    ("user share of server CPU (wrk)", "throughput", "user_percent", "%"),
    ("server CPU per delivery (wsload)", "broadcast", "cpu_ns_per_delivery", "ns"),
    ("server peak RSS (wsload)", "broadcast", "rss_peak_kib", "KiB"),
]
print(f"| {'measure':<34} | {'A':>12} | {'B':>12} | {'B / A':>6} |")
print(f"|{'-' * 36}|{'-' * 14}|{'-' * 14}|{'-' * 8}|")
for name, kind, key, unit in table:
    a, b = med(kind, "A", key), med(kind, "B", key)
    print(f"| {name:<34} | {a:>9.2f} {unit:<2} | {b:>9.2f} {unit:<2} | {b / a:>6.3f} |")
EOF
