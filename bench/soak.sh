#!/usr/bin/env bash
# Soak: several minutes of mixed load on one `portcullis serve`, with its memory watched.
#
#   bench/soak.sh [minutes=5]
#
# Starts PostgreSQL (a throw-away cluster, scripts/postgres-test-cluster, TLS on; SOAK_BACKEND=
# sqlite uses a SQLite file instead), the test OpenID Provider (tests/harness/op.mjs, with
# back-channel logout registered for the gateway), a static nginx upstream and `portcullis
# serve` with the shortest session TTL (PORTCULLIS_SESSION_TTL=60: a session JWT is re-issued
# once it is past half of it, so refreshes happen every 30 s of activity) and DPoP on (the
# default). Then, for the whole run, at the same time:
#
#   - wrk -t1 -c8: a proxied page with Alice's session, which the wrk script keeps valid by
#     taking every re-issued session cookie (bench/soak/session.lua); every answer must be 200;
#   - bench/soak/driver.mjs: scripted browsers doing full sign-ins, browsing with refreshes,
#     the session API with DPoP proofs, sign-outs, and sign-outs at the IdP that reach
#     Portcullis as back-channel logouts, each followed by checks that the old cookies are
#     refused with the right status (see the driver for the lanes);
#   - the gateway's RSS (VmRSS) sampled every 5 s.
#
# At the end it prints the count of each operation, the expected refusals (each checked for
# its status), the unexpected errors, and RSS first/min/max/last, the means of the first and
# last quarter after a one-minute warm-up, and the least-squares slope. It fails (exit 1) on
# any unexpected error, any wrk answer other than 200, an error or panic in the gateway's log,
# or memory growth (last-quarter mean > first-quarter mean × 1.2).
#
# PORTCULLIS_BIN (default /work/target-rel/release/portcullis if present, else
# target/release/portcullis). Needs: wrk, nginx, node (npm ci --prefix tests/harness), curl,
# python3, PostgreSQL's server binaries (Debian postgresql) unless SOAK_BACKEND=sqlite.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-5}
secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
backend=${SOAK_BACKEND:-postgres}
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  PORTCULLIS_BIN=/work/target-rel/release/portcullis
  [ -x "$PORTCULLIS_BIN" ] || PORTCULLIS_BIN=target/release/portcullis
fi
bin=$PORTCULLIS_BIN
for c in wrk node curl python3; do
  command -v "$c" >/dev/null || { echo "bench/soak.sh: $c is required" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/soak.sh: no binary at $bin (set PORTCULLIS_BIN)" >&2; exit 1; }
[ -d tests/harness/node_modules ] || npm ci --prefix tests/harness >/dev/null

work=$(mktemp -d /tmp/portcullis-soak.XXXXXX)
chmod 755 "$work"
pids=()
serve_pid=
pg_dir=
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "$pg_dir" ] || scripts/postgres-test-cluster stop "$pg_dir" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  [ -n "${SOAK_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

case $backend in
postgres)
  pg_dir="$work/pg"
  db_url="$(scripts/postgres-test-cluster start "$pg_dir")?sslmode=require"
  ;;
sqlite) db_url="sqlite://$work/soak.db" ;;
*) echo "bench/soak.sh: SOAK_BACKEND must be postgres or sqlite" >&2; exit 1 ;;
esac

up_port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1; pid $work/nginx/nginx.pid; error_log $work/nginx/error.log; daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
  server { listen 127.0.0.1:$up_port; location / { return 200 "ok\n"; } }
}
EOF
nginx=$(command -v nginx || echo /usr/sbin/nginx)
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)

gw_port=$(free_port)
base="http://127.0.0.1:$gw_port"
secret=soak-bench-client-secret-0123456789abcdef
OP_CONFIG=$(cat <<EOF
{"port":0,"exit_on_stdin_close":false,"clients":[{"client_id":"portcullis","client_secret":"$secret",
 "redirect_uris":["$base/api/callback"],"post_logout_redirect_uris":["$base/.portcullis/signed-out"],
 "token_endpoint_auth_method":"client_secret_post",
 "backchannel_logout_uri":"$base/api/backchannel-logout","backchannel_logout_session_required":true}]}
EOF
)
OP_CONFIG=$OP_CONFIG node tests/harness/op.mjs >"$work/op.out" 2>"$work/op.err" </dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q issuer "$work/op.out" 2>/dev/null && break; sleep 0.1; done
issuer=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["issuer"])' "$work/op.out")
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$up_port/" && break; sleep 0.1; done

env -i PATH="$PATH" RUST_LOG=warn \
  OIDC_DISCOVERY_URL="$issuer/.well-known/openid-configuration" \
  OIDC_CLIENT_ID=portcullis OIDC_CLIENT_SECRET="$secret" \
  OIDC_REDIRECT_URL="$base/api/callback" OIDC_ALLOW_INSECURE_HTTP=true \
  JWT_SIGNING_SECRET=soak-bench-jwt-secret-0123456789abcdefghijkl \
  PORTCULLIS_LISTEN="127.0.0.1:$gw_port" PORTCULLIS_UPSTREAM="http://127.0.0.1:$up_port" \
  PORTCULLIS_DATABASE_URL="$db_url" PORTCULLIS_SESSION_TTL=60 \
  PORTCULLIS_LOGIN_STARTS_PER_MINUTE=100000 \
  "$bin" serve >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 600); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] && break
  kill -0 "$serve_pid" 2>/dev/null || { echo "portcullis serve exited:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done

node bench/soak/signin.mjs "$base" alice alice-pass "$work/cookie"

echo "bench/soak.sh: ${minutes} min on $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), $backend, $bin"
# RSS every 5 s while the load runs (and a last sample after it).
(
  t0=$(date +%s)
  while kill -0 "$serve_pid" 2>/dev/null; do
    # VmRSS, and its parts: anonymous (the heap), file-backed (the binary, mapped files) and
    # shared memory (SQLite's -shm index), all in kB.
    echo "$(($(date +%s) - t0)) $(awk '/^(VmRSS|RssAnon|RssFile|RssShmem):/ {printf "%s ", $2}' "/proc/$serve_pid/status")"
    sleep 5
  done
) >"$work/rss" &
sampler=$!
pids+=("$sampler")
cpu0=$(awk '{print $14 + $15}' "/proc/$serve_pid/stat")
SOAK_COOKIE=$(cat "$work/cookie") wrk -t1 -c8 -d"${secs}s" --timeout 10s -s bench/soak/session.lua "$base/bench" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
node bench/soak/driver.mjs "$base" "$issuer" "$secs" "$work/driver.json" 2>"$work/driver.err" &
driver_pid=$!
wait "$wrk_pid" || true
wait "$driver_pid" || { echo "the driver failed:" >&2; cat "$work/driver.err" >&2; }
cpu1=$(awk '{print $14 + $15}' "/proc/$serve_pid/stat")
sleep 5
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true

clk=$(getconf CLK_TCK)
python3 - "$work" "$secs" "$((cpu1 - cpu0))" "$clk" "$backend" <<'EOF'
import json, os, re, sys
work, secs, ticks, clk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
backend = sys.argv[5]
bad = []
wrk = open(f"{work}/wrk.out").read()
n = int(re.search(r"(\d+) requests in", wrk).group(1))
not200 = int(re.search(r"not-200: (\d+)", wrk).group(1))
wrk_refresh = int(re.search(r"refreshes: (\d+)", wrk).group(1))
sock = re.search(r"Socket errors:.*", wrk)
rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk).group(1)
print(f"wrk (proxied page, one session kept fresh): {n} requests ({rps}/s), answers other than 200: {not200}, "
      f"session cookie re-issued {wrk_refresh} times" + (f", {sock.group(0)}" if sock else ""))
if not200 or sock:
    bad.append(f"wrk: {not200} answers other than 200 ({re.search(r'bad-statuses: (.*)', wrk).group(1).strip()}) {sock.group(0) if sock else ''}")
try:
    d = json.load(open(f"{work}/driver.json"))
except Exception as e:
    d = {"counts": {"unexpected_errors": 1}, "errors": [f"no driver result: {e}"]}
c = d["counts"]
print("driver (scripted browsers):")
for k in ["sign_ins", "pages", "session_api", "refreshes", "logouts", "backchannel_logouts"]:
    print(f"  {k.replace('_', ' '):32s} {c.get(k, 0)}")
print("  expected refusals, each with the right status:")
for k, v in c.items():
    if k.startswith("refused_"):
        print(f"    {k.replace('_', ' '):40s} {v}")
if "backchannel_refusal_max_ms" in d:
    print(f"  slowest back-channel logout, IdP sign-out to refusal: {d['backchannel_refusal_max_ms']} ms")
print(f"  unexpected errors                {c.get('unexpected_errors', 0)}")
for e in d.get("errors", []):
    print(f"    {e}")
if c.get("unexpected_errors", 0):
    bad.append(f"driver: {c['unexpected_errors']} unexpected errors")
total_requests = n + sum(c.get(k, 0) for k in ["pages", "session_api"])
print(f"gateway CPU during the run: {ticks / clk:.1f} s")

log = open(f"{work}/serve.log").read().splitlines()
serious = [l for l in log if re.search(r"\bERROR\b|panicked", l)]
warns = [l for l in log if re.search(r"\bWARN\b", l)]
print(f"gateway log: {len(serious)} error/panic lines, {len(warns)} warnings")
for l in (serious + warns)[:5]:
    print(f"  {l[:200]}")
if serious:
    bad.append(f"{len(serious)} error lines in the gateway log")

rows = [list(map(int, l.split())) for l in open(f"{work}/rss").read().splitlines() if len(l.split()) == 5]
s = [(r[0], r[1]) for r in rows]
mb = lambda kb: kb / 1024
vals = [v for _, v in s]
print(f"RSS ({len(s)} samples every 5 s): first {mb(vals[0]):.1f} MB, min {mb(min(vals)):.1f}, "
      f"max {mb(max(vals)):.1f}, last {mb(vals[-1]):.1f}")
print("  of which, first → last: " + ", ".join(
    f"{name} {mb(rows[0][i]):.1f} → {mb(rows[-1][i]):.1f} MB"
    for i, name in ((2, "anonymous"), (3, "file-backed"), (4, "shared"))))
if backend == "sqlite":
    sizes = [(n, os.path.getsize(f"{work}/{n}")) for n in ("soak.db", "soak.db-wal", "soak.db-shm")
             if os.path.exists(f"{work}/{n}")]
    print("  SQLite files at the end: " + ", ".join(f"{n} {b / 1048576:.1f} MB" for n, b in sizes))
warm = 60 if secs >= 180 else secs // 4
after = [(t, v) for t, v in s if t >= warm]
if len(after) >= 8:
    q = len(after) // 4
    first = sum(v for _, v in after[:q]) / q
    last = sum(v for _, v in after[-q:]) / q
    ts = [t for t, _ in after]
    vs = [v for _, v in after]
    mt, mv = sum(ts) / len(ts), sum(vs) / len(vs)
    slope = sum((t - mt) * (v - mv) for t, v in after) / sum((t - mt) ** 2 for t in ts)
    print(f"after a {warm} s warm-up: first-quarter mean {mb(first):.1f} MB, last-quarter mean {mb(last):.1f} MB "
          f"(x{last / first:.3f}), slope {mb(slope) * 60:+.2f} MB/min")
    if last > first * 1.2:
        bad.append(f"memory grew: last-quarter mean {mb(last):.1f} MB > 1.2 x first-quarter mean {mb(first):.1f} MB")
else:
    print("too few samples after the warm-up to judge memory")
    bad.append("run too short to judge memory")
if bad:
    print("FAILED:")
    for b in bad:
        print(f"  {b}")
    sys.exit(1)
print("OK: no unexpected errors, flat memory")
EOF
