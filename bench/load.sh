#!/usr/bin/env bash
# A first load run against the release binary: `portcullis demo` (gateway + dev IdP + sample
# app in one process), signed in through the dev IdP with curl, then loaded with wrk.
# Compares the sample app reached directly, Portcullis's /healthz (no auth, no proxy), and the
# app through Portcullis with a session cookie. Every response must be a 200: wrk's non-2xx
# count is printed and the run fails if it is not zero.
#
#   bench/load.sh [seconds=10] [connections=32]
#
# Needs: wrk (Debian package), curl. Load generator and server share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "bench/load.sh: install wrk (apt-get install wrk)" >&2; exit 1; }

cargo build --release -q -p portcullis
work=$(mktemp -d)
trap 'kill $demo_pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=18123
target/release/portcullis demo --port "$port" --database "$work/demo.db" >"$work/out" 2>"$work/err" &
demo_pid=$!
for _ in $(seq 50); do grep -q "Sample app:" "$work/out" 2>/dev/null && break; sleep 0.1; done
app=$(awk '/Sample app:/ {print $3}' "$work/out")
base="http://localhost:$port"

# Sign in as alice through the dev IdP, like a browser would.
jar="$work/jar"
login=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$base/")
authorize=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$login")
form=$(curl -s -c "$jar" -b "$jar" "$authorize")
action=$(printf '%s' "$form" | grep -o 'action="[^"]*"' | head -1 | cut -d'"' -f2)
request_id=$(printf '%s' "$form" | grep -o 'name="request_id" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
idp=$(printf '%s' "$authorize" | grep -o '^http://[^/]*')
callback=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
  --data-urlencode "request_id=$request_id" --data-urlencode username=alice --data-urlencode password=alice \
  "$idp$action")
curl -s -o /dev/null -c "$jar" -b "$jar" "$callback"
session=$(awk '$6 == "__Host-session" {print $7}' "$jar")
[ -n "$session" ] || { echo "sign-in failed" >&2; cat "$work/err" >&2; exit 1; }
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: __Host-session=$session" "$base/bench")
[ "$status" = 200 ] || { echo "signed-in request answered $status" >&2; exit 1; }

run() { # name url [cookie]
  local name=$1 url=$2 out
  if [ $# -ge 3 ]; then
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Cookie: __Host-session=$3" "$url")
  else
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url")
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-34s %12s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}"
  [ -z "$non2xx" ] || { echo "responses other than 2xx: the figures above are invalid" >&2; exit 1; }
}
echo "wrk -t2 -c$conns -d${secs}s on $(nproc) cores, $(date -u +%Y-%m-%d)"
run "sample app, direct" "$app/bench"
run "portcullis /healthz (no auth)" "$base/healthz"
run "app via portcullis, session cookie" "$base/bench" "$session"
echo "idle-after-load RSS of the demo process: $(awk '/VmRSS/ {print $2, $3}' /proc/$demo_pid/status)"
