#!/usr/bin/env bash
# A first load run against the release binary: `portcullis demo` (gateway + dev IdP + sample
# app in one process), signed in through the dev IdP with curl, then loaded with wrk.
# Compares the sample app reached directly, Portcullis's /healthz (no auth, no proxy), and the
# app through Portcullis with the session cookies (a page: no proof), and the app's API
# through Portcullis with the session cookies and a fresh DPoP proof on every request
# (pre-generated with bench/dpop.mjs, each used once). Every response must be a 200: wrk's
# non-2xx count is printed and the run fails if it is not zero.
#
#   bench/load.sh [seconds=10] [connections=32]
#
# PORTCULLIS_BIN=/path/to/portcullis runs that binary instead of building this checkout (to
# compare two builds with the same script). Besides requests/s and latency it prints the CPU
# time the demo process spent per request (user + system, from /proc; the sample app's own
# work is in the same process, so compare rows and builds, not absolute values).
#
# Needs: wrk (Debian package), curl, node. Load generator and server share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "bench/load.sh: install wrk (apt-get install wrk)" >&2; exit 1; }

bin=${PORTCULLIS_BIN:-target/release/portcullis}
[ -n "${PORTCULLIS_BIN:-}" ] || cargo build --release -q -p portcullis
work=$(mktemp -d)
trap 'kill $demo_pid 2>/dev/null || true; wait $demo_pid 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
. bench/demo-session.sh
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookies" "$base/bench")
[ "$status" = 200 ] || { echo "signed-in request answered $status" >&2; exit 1; }

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$demo_pid/stat"; }

run() { # name url [cookie header [wrk script]]
  local name=$1 url=$2 out before after
  before=$(cpu_ticks)
  if [ $# -ge 4 ]; then
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Cookie: $3" -s "$4" "$url")
  elif [ $# -ge 3 ]; then
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency -H "Cookie: $3" "$url")
  else
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$url")
  fi
  after=$(cpu_ticks)
  local rps p50 p99 non2xx total cpu
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v t="$((after - before))" -v c="$clk" -v n="$total" 'BEGIN { printf "%.1f", t / c * 1e6 / n }')
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  # The DPoP row's script counts every answer that is not a 200 (3xx included).
  local not200
  not200=$(awk '/^not-200:/ {print $2}' <<<"$out")
  if [ -n "$not200" ] && [ "$not200" != 0 ]; then non2xx=$not200; fi
  printf '%-34s %12s req/s   p50 %8s   p99 %8s   CPU %6s us/req   non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "$cpu" "${non2xx:-0}"
  [ -z "$non2xx" ] || { echo "responses other than 2xx: the figures above are invalid" >&2; exit 1; }
}
echo "wrk -t2 -c$conns -d${secs}s on $(nproc) cores, $(date -u +%Y-%m-%d)"
run "sample app, direct" "$app/bench"
run "portcullis /healthz (no auth)" "$base/healthz"
run "app via portcullis, session cookies" "$base/bench" "$cookies" bench/dpop-proofs.lua
# Proofs for the DPoP row, made just before it (each is valid for 120 s): enough for every
# request of the run at up to PROOFS_PER_SEC (default 20000) requests/s per wrk thread.
n=$((${PROOFS_PER_SEC:-20000} * secs))
node bench/dpop.mjs proofs "$dpop_key" GET "$base/api/bench" "$n" "$work/proofs.0" &
gen=$!
node bench/dpop.mjs proofs "$dpop_key" GET "$base/api/bench" "$n" "$work/proofs.1"
wait "$gen"
export PROOFS="$work/proofs"
run "app API via portcullis, cookies + DPoP" "$base/api/bench" "$cookies" bench/dpop-proofs.lua
echo "idle-after-load RSS of the demo process: $(awk '/VmRSS/ {print $2, $3}' /proc/$demo_pid/status)"
