#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable for the same binary
# whatever else the machine is doing (wall-clock load runs on a shared 2-core machine vary by
# ±15 %). Starts `portcullis demo` under callgrind, signs in, then counts only while wrk sends
# requests over one connection: Portcullis's /healthz (no auth, no proxy) and the sample app
# through Portcullis with a session cookie. The demo process also runs the sample app, so its
# work is in the proxied row: compare builds, not absolute values.
#
#   bench/instructions.sh [seconds=8]          # this checkout (release build)
#   PORTCULLIS_BIN=/path/to/portcullis bench/instructions.sh
#
# Needs: valgrind, wrk, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
for c in valgrind callgrind_control wrk curl; do
  command -v "$c" >/dev/null || { echo "bench/instructions.sh: install $c" >&2; exit 1; }
done
bin=${PORTCULLIS_BIN:-target/release/portcullis}
[ -n "${PORTCULLIS_BIN:-}" ] || cargo build --release -q -p portcullis
work=$(mktemp -d)
trap 'kill $demo_pid 2>/dev/null || true; wait $demo_pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
launcher="valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=$work/cg.%p.out -q"
. bench/demo-session.sh
[ -n "$app" ] || { echo "the demo did not start" >&2; cat "$work/err" >&2; exit 1; }
# valgrind answers control commands once it polls for them: retry briefly.
for _ in $(seq 50); do callgrind_control -i on "$demo_pid" >/dev/null 2>&1 && break; sleep 0.2; done

count() { # name url [cookie] → instructions per request
  local name=$1 url=$2 out n before after
  callgrind_control -z "$demo_pid" >/dev/null 2>&1
  if [ $# -ge 3 ]; then
    out=$(wrk -t1 -c1 -d"${secs}s" -H "Cookie: $3" "$url")
  else
    out=$(wrk -t1 -c1 -d"${secs}s" "$url")
  fi
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: responses other than 2xx" >&2; exit 1; fi
  rm -f "$work"/cg.*.out.*
  callgrind_control -d "$demo_pid" >/dev/null 2>&1
  local total
  total=$(cat "$work"/cg.*.out.* | awk '/^totals:/ {print $2}' | tail -1)
  awk -v t="$total" -v n="$n" -v name="$name" 'BEGIN { printf "%-36s %8d requests   %10.0f instructions/request\n", name, n, t / n }'
}
echo "callgrind, wrk -t1 -c1 -d${secs}s, $bin"
count "portcullis /healthz (no auth)" "$base/healthz"
count "app via portcullis, session cookies" "$base/bench" "$cookies"
