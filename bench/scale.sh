#!/usr/bin/env bash
# How the cost of a request grows with the number of users and sessions in the store, on
# SQLite and on PostgreSQL.
#
#   bench/scale.sh [sizes="1000 100000 1000000"] [seconds=10]
#
# For each backend (a SQLite file; PostgreSQL from a throw-away cluster, scripts/postgres-test-
# cluster, TLS on) and each size N: a fresh database is migrated by `portcullis serve` itself,
# which is then stopped; N users, N sessions (one in ten ended by a logout and not yet expired,
# so the revocation list every replica keeps in memory holds N/10 ids) and N API tokens are
# inserted with SQL matching the real schema (bench/scale/seed-*.sql, each session with an
# 880-character ID token as a real sign-in keeps); then `portcullis serve` starts again, in
# front of a static nginx upstream, signed in through the real test OpenID Provider
# (tests/harness/op.mjs). Alice signs in for real and mints an API token, then, each time with
# the same load:
#
#   page, session cookie     wrk -t2 -c32: a proxied request with Alice's session cookie
#   page, API token          wrk -t2 -c32: the same with Alice's API token (tokens are cached
#                            for 60 s, so this is the cached case: one lookup per minute)
#   sign-in (full)           4 browsers (bench/scale/flows.mjs) doing complete sign-ins:
#                            /api/login → the OP's login form → the callback (the OP and
#                            the browsers run in node on the same cores)
#   logout                   POST /api/logout of each of those sessions, 4 at a time
#   admin users, first page  wrk -t1 -c4: GET /api/admin/users?limit=25
#   admin users, search      curl, one at a time (at least 3): GET /api/admin/users?q=alice&
#                            limit=25 (a substring search over email, name, username, subject)
#
# Each row prints requests (or sign-ins, logouts) per second and the CPU time the gateway
# process spent per request (user + system, from /proc/PID/stat). Every response is checked:
# the wrk rows count every answer other than 200 (bench/scale/check.lua); the sign-in and
# logout steps check every step; any failure marks the row and makes the script exit 1.
# Also printed per size: seed time, time from start to ready, database size, the load average
# (the machine may be shared) and the gateway's RSS after the rows. DPoP is off
# (PORTCULLIS_DPOP=false) so that the admin rows need no proofs.
#
# PORTCULLIS_BIN (default /work/target-rel/release/portcullis if present, else
# target/release/portcullis), BACKENDS (default "sqlite postgres"), CONNS (default 32).
# Needs: wrk, nginx, node (npm ci --prefix tests/harness), sqlite3, PostgreSQL's server
# binaries (Debian postgresql), curl, python3. Load generator, OP, nginx, PostgreSQL and the
# gateway all share the machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-"1000 100000 1000000"}
secs=${2:-10}
conns=${CONNS:-32}
backends=${BACKENDS:-"sqlite postgres"}
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  PORTCULLIS_BIN=/work/target-rel/release/portcullis
  [ -x "$PORTCULLIS_BIN" ] || PORTCULLIS_BIN=target/release/portcullis
fi
bin=$PORTCULLIS_BIN
for c in wrk nginx node sqlite3 curl python3; do
  command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] ||
    { echo "bench/scale.sh: $c is required" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "bench/scale.sh: no binary at $bin (set PORTCULLIS_BIN)" >&2; exit 1; }
[ -d tests/harness/node_modules ] || npm ci --prefix tests/harness >/dev/null

work=$(mktemp -d /tmp/portcullis-scale.XXXXXX)
chmod 755 "$work"
pids=()
serve_pid=
pg_dir=
cleanup() {
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "$pg_dir" ] || scripts/postgres-test-cluster stop "$pg_dir" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
clk=$(getconf CLK_TCK)
failed=0

# The upstream: nginx answering 200 "ok" to everything.
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

# The OpenID Provider, with a client registered for the gateway.
gw_port=$(free_port)
base="http://127.0.0.1:$gw_port"
secret=scale-bench-client-secret-0123456789abcdef
OP_CONFIG=$(cat <<EOF
{"port":0,"exit_on_stdin_close":false,"clients":[{"client_id":"portcullis","client_secret":"$secret",
 "redirect_uris":["$base/api/callback"],"post_logout_redirect_uris":["$base/.portcullis/signed-out"],
 "token_endpoint_auth_method":"client_secret_post"}]}
EOF
)
OP_CONFIG=$OP_CONFIG node tests/harness/op.mjs >"$work/op.out" 2>"$work/op.err" </dev/null &
pids+=($!)
for _ in $(seq 100); do grep -q issuer "$work/op.out" 2>/dev/null && break; sleep 0.1; done
issuer=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["issuer"])' "$work/op.out")
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$up_port/" && break; sleep 0.1; done

# An ID token of realistic size (RS256, the OP's claims) kept with every seeded session.
idtoken=$(python3 -c 'import secrets; print(secrets.token_urlsafe(660)[:880])')

serve_start() { # database URL → starts serve, waits for /readyz; sets serve_pid, ready_s
  local t0
  t0=$(date +%s.%N)
  env -i PATH="$PATH" RUST_LOG=warn \
    OIDC_DISCOVERY_URL="$issuer/.well-known/openid-configuration" \
    OIDC_CLIENT_ID=portcullis OIDC_CLIENT_SECRET="$secret" \
    OIDC_REDIRECT_URL="$base/api/callback" OIDC_SCOPES=openid,email,profile,groups \
    OIDC_ALLOW_INSECURE_HTTP=true JWT_SIGNING_SECRET=scale-bench-jwt-secret-0123456789abcdefghij \
    PORTCULLIS_LISTEN="127.0.0.1:$gw_port" PORTCULLIS_UPSTREAM="http://127.0.0.1:$up_port" \
    PORTCULLIS_DATABASE_URL="$1" PORTCULLIS_DPOP=false \
    PORTCULLIS_ROLES='{"platformAdmin":["admins"],"developer":["devs"]}' \
    PORTCULLIS_LOGIN_STARTS_PER_MINUTE=100000 \
    "$bin" serve >>"$work/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 3000); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "portcullis serve exited:" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  ready_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
}
serve_stop() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  serve_pid=
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$serve_pid/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$serve_pid/status"; }

row() { # label count seconds ticks status
  local per=$(( $2 > 0 ? 1 : 0 ))
  [ "$per" = 1 ] || { printf '  %-28s no requests completed  FAILED\n' "$1"; failed=1; return; }
  awk -v l="$1" -v n="$2" -v s="$3" -v t="$4" -v c="$clk" -v st="$5" 'BEGIN {
    printf "  %-28s %10.1f /s   CPU %8.1f us each   (%d in %.1f s)%s\n", l, n / s, t / c * 1e6 / n, n, s, st }'
}

wrk_row() { # label threads connections url [header...]
  local label=$1 t=$2 c=$3 url=$4 out before after n s bad
  shift 4
  local hdr=()
  for h in "$@"; do hdr+=(-H "$h"); done
  before=$(cpu_ticks)
  out=$(wrk -t"$t" -c"$c" -d"${secs}s" --timeout 30s "${hdr[@]}" -s bench/scale/check.lua "$url")
  after=$(cpu_ticks)
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  # "N requests in 10.00s," (or 999.9ms, 1.00m)
  s=$(awk '/requests in/ { v = $4; sub(/,$/, "", v)
    if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else if (v ~ /m$/) { sub(/m$/, "", v); v *= 60 } else sub(/s$/, "", v)
    print v }' <<<"$out")
  bad=$(awk '/^not-200:/ {print $2}' <<<"$out")
  local errs
  errs=$(awk '/Socket errors/ {print}' <<<"$out")
  if [ "${bad:-1}" != 0 ] || [ -n "$errs" ]; then
    row "$label" "$n" "$s" "$((after - before))" "   FAILED: ${bad:-?} answers other than 200 ${errs}"
    failed=1
  else
    row "$label" "$n" "$s" "$((after - before))" ""
  fi
}

curl_row() { # label url [header...]: one request at a time for the row's seconds (at least 3),
  # for requests too slow for wrk's fixed duration to count
  local label=$1 url=$2 before after t0 n=0 code bad=0 s
  shift 2
  local hdr=()
  for h in "$@"; do hdr+=(-H "$h"); done
  before=$(cpu_ticks)
  t0=$(date +%s.%N)
  while [ "$n" -lt 3 ] || awk -v a="$t0" -v b="$(date +%s.%N)" -v d="$secs" 'BEGIN { exit !(b - a < d) }'; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "${hdr[@]}" "$url")
    [ "$code" = 200 ] || bad=$((bad + 1))
    n=$((n + 1))
  done
  s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  after=$(cpu_ticks)
  if [ "$bad" != 0 ]; then
    row "$label" "$n" "$s" "$((after - before))" "   FAILED: $bad answers other than 200"
    failed=1
  else
    row "$label" "$n" "$s" "$((after - before))" ""
  fi
}

flows_row() { # label → runs node flows.mjs "$@" (after the label), parses "<what> N seconds S failures F"
  local label=$1 out before after n s f
  shift
  before=$(cpu_ticks)
  if ! out=$(node bench/scale/flows.mjs "$@" 2>"$work/flows.err"); then
    cat "$work/flows.err" >&2
  fi
  after=$(cpu_ticks)
  n=$(awk '{print $2}' <<<"$out")
  s=$(awk '{print $4}' <<<"$out")
  f=$(awk '{print $6}' <<<"$out")
  if [ -z "$n" ] || [ "${f:-1}" != 0 ]; then
    row "$label" "${n:-0}" "${s:-1}" "$((after - before))" "   FAILED: ${f:-?} failures"
    failed=1
  else
    row "$label" "$n" "$s" "$((after - before))" ""
  fi
}

seed() { # backend N → the seed SQL with the values filled in
  sed -e "s/:N\b/$2/g; s/:NOW\b/$(date +%s)/g; s|:ISSUER|$issuer|g; s|:IDTOKEN|$idtoken|g" \
    "bench/scale/seed-$1.sql"
}

echo "bench/scale.sh on $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC'), $bin"
echo "sizes: $sizes; wrk -t2 -c$conns -d${secs}s for the proxied rows; each size: N users, N sessions (N/10 revoked), N API tokens"
for backend in $backends; do
  if [ "$backend" = postgres ]; then
    pg_dir="$work/pg"
    pg_url=$(scripts/postgres-test-cluster start "$pg_dir")
  fi
  for n in $sizes; do
    echo
    case $backend in
    sqlite)
      db="$work/scale-$n.db"
      url="sqlite://$db"
      dbsize() { du -cb "$db"* | awk 'END { printf "%.0f MB", $1 / 1e6 }'; }
      run_seed() { seed sqlite "$n" | sqlite3 "$db" >/dev/null; }
      drop() { rm -f "$db"*; }
      ;;
    postgres)
      dbname="scale_$n"
      psql -q "$pg_url" -c "CREATE DATABASE $dbname" >/dev/null
      url="${pg_url%/postgres}/$dbname?sslmode=require"
      psql_url="${pg_url%/postgres}/$dbname"
      dbsize() { psql -At "$psql_url" -c "SELECT pg_database_size(current_database())" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }
      run_seed() { seed postgres "$n" | psql -q -v ON_ERROR_STOP=1 "$psql_url" >/dev/null; }
      drop() { psql -q "$pg_url" -c "DROP DATABASE $dbname" >/dev/null; }
      ;;
    esac
    serve_start "$url" # migrates
    serve_stop
    t0=$(date +%s.%N)
    run_seed
    seed_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
    serve_start "$url"
    echo "$backend, $n users / $n sessions / $n API tokens: seeded in ${seed_s} s, ready ${ready_s} s after start, database $(dbsize), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    mkdir -p "$work/alice"
    node bench/scale/flows.mjs setup "$base" alice alice-pass "$work/alice" ||
      { echo "sign-in of alice failed" >&2; tail -20 "$work/serve.log" >&2; exit 1; }
    cookie=$(cat "$work/alice/cookie")
    token=$(cat "$work/alice/token")
    wrk_row "page, session cookie" 2 "$conns" "$base/bench" "Cookie: $cookie"
    wrk_row "page, API token" 2 "$conns" "$base/bench" "Authorization: Bearer $token"
    flows_row "sign-in (full, 4 browsers)" signins "$base" alice alice-pass "$secs" 4 "$work/sessions"
    flows_row "logout (4 at a time)" logouts "$base" "$work/sessions" 4
    wrk_row "admin users, first page" 1 4 "$base/api/admin/users?limit=25" "Cookie: $cookie" "Accept: application/json"
    curl_row "admin users, search" "$base/api/admin/users?q=alice&limit=25" "Cookie: $cookie" "Accept: application/json"
    echo "  gateway RSS after the rows: $(rss_mb) MB; database now $(dbsize)"
    serve_stop
    drop
  done
  if [ "$backend" = postgres ]; then
    scripts/postgres-test-cluster stop "$pg_dir" >/dev/null
    pg_dir=
  fi
done
if [ "$failed" != 0 ]; then
  echo "bench/scale.sh: some answers were not the expected ones: the rows marked FAILED are invalid" >&2
  exit 1
fi
