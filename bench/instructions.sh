#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable for the same binary
# whatever else the machine is doing (wall-clock load runs on a shared 2-core machine vary by
# ±15 %). Starts `portcullis demo` under callgrind, signs in, then counts only while wrk sends
# requests over one connection: Portcullis's /healthz (no auth, no proxy), the sample app
# through Portcullis with a session cookie, and the app's API through Portcullis with the
# session cookie and a fresh DPoP proof on every request. The demo process also runs the sample
# app, so its work is in the proxied rows: compare rows and builds, not absolute values.
#
# Last, the cost of DPoP: the DPoP row minus the session row, against the instructions of one
# bare ES256 verification (aws-lc, the core crate's `es256_verify` example run under callgrind
# with 0 and 200 verifications). The target is at most 1.3 verifications' worth.
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

count() { # name url [cookie [wrk script]] → instructions per request (also left in $per_request)
  local name=$1 url=$2 out n before after
  callgrind_control -z "$demo_pid" >/dev/null 2>&1
  if [ $# -ge 4 ]; then
    out=$(wrk -t1 -c1 -d"${secs}s" -H "Cookie: $3" -s "$4" "$url")
  elif [ $# -ge 3 ]; then
    out=$(wrk -t1 -c1 -d"${secs}s" -H "Cookie: $3" "$url")
  else
    out=$(wrk -t1 -c1 -d"${secs}s" "$url")
  fi
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: responses other than 2xx" >&2; exit 1; fi
  if grep -q "^not-200: [1-9]" <<<"$out"; then echo "$name: responses other than 200" >&2; exit 1; fi
  rm -f "$work"/cg.*.out.*
  callgrind_control -d "$demo_pid" >/dev/null 2>&1
  local total
  total=$(cat "$work"/cg.*.out.* | awk '/^totals:/ {print $2}' | tail -1)
  per_request=$(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.0f", t / n }')
  printf '%-40s %8d requests   %10d instructions/request\n' "$name" "$n" "$per_request"
}
echo "callgrind, wrk -t1 -c1 -d${secs}s, $bin"
count "portcullis /healthz (no auth)" "$base/healthz"
count "app via portcullis, session cookies" "$base/bench" "$cookies" bench/dpop-proofs.lua
session_ir=$per_request
# Proofs for the DPoP row, made just before it (each is good once, for 120 s; callgrind serves
# a few hundred requests in that time).
node bench/dpop.mjs proofs "$dpop_key" GET "$base/api/bench" 20000 "$work/proofs.0"
export PROOFS="$work/proofs"
count "app API via portcullis, cookies + DPoP" "$base/api/bench" "$cookies" bench/dpop-proofs.lua
dpop_ir=$per_request
unset PROOFS

# One bare ES256 verification, counted the same way.
cargo build --release -q -p portcullis-core --example es256_verify
example=${CARGO_TARGET_DIR:-target}/release/examples/es256_verify
verifies() { # n → total instructions of the example doing n verifications
  valgrind --tool=callgrind --callgrind-out-file="$work/es.$1.out" -q "$example" "$1"
  awk '/^totals:/ {print $2}' "$work/es.$1.out"
}
es256_ir=$(( ($(verifies 200) - $(verifies 0)) / 200 ))
awk -v s="$session_ir" -v d="$dpop_ir" -v e="$es256_ir" 'BEGIN {
  printf "one ES256 verification (aws-lc)           %10d instructions\n", e
  printf "DPoP on top of a session request          %10d instructions = %.2f ES256 verifications (target <= 1.3)\n", d - s, (d - s) / e }'
