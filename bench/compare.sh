#!/usr/bin/env bash
# Portcullis against nginx and mod_auth_openidc, on one machine, in one run, in front of the
# same upstream:
#
#   bench/compare.sh [seconds=10] [connections=32] [rounds=3] [--signins N] [--no-signins]
#                    [--targets upstream,proxy,apache,pc-cookie,pc-token,pc-dpop,pc-fa]
#
# It starts, each with its own configuration and files in a temporary directory:
#   - a static upstream: nginx serving one ~1 KB page with a marker string, whatever the path;
#   - nginx as a plain reverse proxy to it (proxy_pass, keep-alive upstream connections);
#   - the test OpenID Provider (tests/harness/op.mjs, oidc-provider) with two clients;
#   - Apache (mpm_event) with mod_auth_openidc protecting a reverse proxy to the upstream;
#   - `portcullis serve` (configured by environment, SQLite) proxying to the upstream;
#   - nginx in front of the upstream asking Portcullis with auth_request (forward-auth).
# It signs in as alice through the OP's login form to mod_auth_openidc and to Portcullis (with
# a DPoP key, as the browser client does), creates an API token on Portcullis's account API,
# then loads every target with the same generator (wrk -t2 -cCONNECTIONS -dSECONDS, one Lua
# script that checks every answer: a status other than 200 or a body without the marker is an
# error, and any error fails the run) in interleaved rounds. Targets:
#   static upstream (direct) | nginx proxy_pass | mod_auth_openidc (session cookie) |
#   Portcullis: session cookie | API token | DPoP-bound session on an API path (a fresh
#   proof on every request) | forward-auth behind nginx (session cookie)
# Printed per target: requests/s, p50/p99 latency, errors, and the CPU time per request of each
# server involved (user + system from /proc, summed over all processes of that server: nginx
# master and workers, every Apache child, Portcullis; the upstream separately), medians over
# the rounds with min–max; the ratios Portcullis (cookie) / nginx proxy_pass and / mod_auth_openidc;
# the load generator's CPU and what the rest of the machine used meanwhile (other work on a
# shared machine shows up there). Then N complete sign-ins against each gateway (default 200,
# 4 at a time: sign-ins/s, gateway and OP CPU per sign-in, the callback's own latency), and
# each server's resident memory idle (after start-up and sign-in) and under load.
#
# PORTCULLIS_BIN=/path/to/portcullis runs that binary (otherwise this checkout is built with
# `cargo build --release`). KEEP_WORK=1 keeps the temporary directory (configurations, logs).
# Needs: nginx, apache2 + libapache2-mod-auth-openidc (Debian packages), wrk, node (and
# `npm ci --prefix tests/harness` once), curl, python3. Must run as root (Apache switches its
# children to www-data). The generator and the servers share the machine's cores.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
here=$repo/bench/compare

args="$*"
signins=200
signin_concurrency=4
only=
pos=()
while [ $# -gt 0 ]; do
  case $1 in
    --signins) signins=$2; shift 2 ;;
    --no-signins) signins=0; shift ;;
    --targets) only=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -E/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench/compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
secs=${pos[0]:-10}
conns=${pos[1]:-32}
rounds=${pos[2]:-3}
for n in "$secs" "$conns" "$rounds" "$signins"; do
  [[ $n =~ ^[0-9]+$ ]] || { echo "bench/compare.sh: not a number: $n" >&2; exit 2; }
done
if [ "$secs" -lt 2 ] || [ "$conns" -lt 2 ] || [ "$rounds" -lt 1 ]; then
  echo "bench/compare.sh: need seconds >= 2, connections >= 2, rounds >= 1" >&2
  exit 2
fi

die() { echo "bench/compare.sh: $*" >&2; exit 1; }
targets=(upstream proxy apache pc-cookie pc-token pc-dpop pc-fa)
if [ -n "$only" ]; then
  IFS=, read -r -a targets <<<"$only"
  for t in "${targets[@]}"; do
    case $t in
      upstream|proxy|apache|pc-cookie|pc-token|pc-dpop|pc-fa) ;;
      *) echo "bench/compare.sh: unknown target $t (targets: upstream proxy apache pc-cookie pc-token pc-dpop pc-fa)" >&2; exit 2 ;;
    esac
  done
fi
for c in nginx apache2 wrk node curl python3 ps; do
  command -v "$c" >/dev/null || die "$c not found (Debian: apt-get install nginx apache2 libapache2-mod-auth-openidc wrk nodejs curl python3)"
done
modules=/usr/lib/apache2/modules
[ -f $modules/mod_auth_openidc.so ] || die "mod_auth_openidc not found: apt-get install libapache2-mod-auth-openidc"
[ -d tests/harness/node_modules/oidc-provider ] || die "the test OpenID Provider is not installed: npm ci --prefix tests/harness"
[ "$(id -u)" = 0 ] || die "run as root (Apache switches its children to www-data)"

bin=${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-target}/release/portcullis}
[ -n "${PORTCULLIS_BIN:-}" ] || cargo build --release -q -p portcullis
[ -x "$bin" ] || die "no Portcullis binary at $bin"

# ---- processes, clean-up -----------------------------------------------------------------------
work=$(mktemp -d /tmp/portcullis-compare.XXXXXX)
chmod 755 "$work"   # Apache's children (www-data) open files under it
started=()          # PIDs this script started, stopped in reverse order on exit
load_pid=           # the running wrk, if any
cleanup() {
  local status=$? i
  trap - EXIT ERR
  [ -z "$load_pid" ] || kill "$load_pid" 2>/dev/null || true
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do kill "${started[i]}" 2>/dev/null || true; done
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do wait "${started[i]}" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    echo "bench/compare.sh: FAILED (exit $status). Last lines of the servers' logs:" >&2
    for f in "$work"/*/stderr "$work"/apache/error.log "$work"/op.err "$work"/wrk.out; do
      [ -s "$f" ] && { echo "--- ${f#"$work"/}" >&2; tail -n 15 "$f" >&2; }
    done
  fi
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'echo "bench/compare.sh: line $LINENO: $BASH_COMMAND failed" >&2' ERR
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# wait_for NAME PID URL EXPECTED-STATUS: poll until URL answers that status (up to 30 s).
wait_for() {
  local name=$1 pid=$2 url=$3 want=$4 got
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during start-up"
    got=$(curl -s -o /dev/null -w '%{http_code}' "$url" || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.1
  done
  die "$name: $url answered $got, not $want, after 30 s"
}

# expect NAME STATUS MARKER? URL [curl args...]: one request, checked.
expect() {
  local name=$1 want=$2 marker=$3 url=$4 out status
  shift 4
  out=$(curl -s -w '\n%{http_code}' "$@" "$url")
  status=${out##*$'\n'}
  [ "$status" = "$want" ] || die "$name: $url answered $status, expected $want: ${out:0:300}"
  case $marker in
    yes) [[ $out == *"$MARKER"* ]] || die "$name: $url answered $status without the upstream's page: ${out:0:300}" ;;
    no) [[ $out != *"$MARKER"* ]] || die "$name: $url reached the upstream" ;;
  esac
}

# ---- configuration -----------------------------------------------------------------------------
p_up=$(free_port); p_proxy=$(free_port); p_apache=$(free_port)
p_pc=$(free_port); p_fa=$(free_port); p_op=$(free_port); p_status=$(free_port)
MARKER="portcullis-bench-$(random_hex 8)"
export BENCH_MARKER=$MARKER
pc_secret="pc-$(random_hex 24)"
ap_secret="ap-$(random_hex 24)"
issuer="http://127.0.0.1:$p_op"
pc_base="http://127.0.0.1:$p_pc"

# template SRC DEST KEY=VALUE...: copy a configuration, replacing @KEY@.
template() {
  local src=$1 dest=$2 expr=() kv
  shift 2
  for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${expr[@]}" "$src" >"$dest"
  if grep -q '@[A-Z]*@' "$dest"; then die "unfilled placeholder in $dest"; fi
}

# start_nginx NAME CONF PORT KEY=VALUE...: an nginx instance with its own prefix directory.
start_nginx() {
  local name=$1 conf=$2 port=$3 dir=$work/$1
  shift 3
  mkdir -p "$dir/tmp" "$dir/www"
  template "$here/$conf" "$dir/nginx.conf" DIR="$here" PORT="$port" "$@"
  nginx -p "$dir/" -c "$dir/nginx.conf" -e stderr -t -q 2>"$dir/stderr" || die "nginx $name: configuration refused: $(cat "$dir/stderr")"
  nginx -p "$dir/" -c "$dir/nginx.conf" -e stderr 2>"$dir/stderr" &
  started+=($!)
  root[$name]=$!
}
declare -A root   # server name -> PID of its main process

echo "== Starting (work directory $work)"
# The upstream's page: about 1 KB, with the marker.
mkdir -p "$work/upstream/www"
{
  printf '<!doctype html><title>bench</title><p>%s</p>\n' "$MARKER"
  head -c 960 /dev/zero | tr '\0' 'x'
  printf '\n'
} >"$work/upstream/www/body.html"
start_nginx upstream upstream.conf "$p_up" STATUS="$p_status"
wait_for "static upstream" "${root[upstream]}" "http://127.0.0.1:$p_up/bench" 200
expect "static upstream" 200 yes "http://127.0.0.1:$p_up/bench"

start_nginx nginx-proxy proxy.conf "$p_proxy" UPSTREAM="$p_up"
wait_for "nginx proxy_pass" "${root[nginx-proxy]}" "http://127.0.0.1:$p_proxy/bench" 200
expect "nginx proxy_pass" 200 yes "http://127.0.0.1:$p_proxy/bench"

# The OpenID Provider, one client per gateway.
OP_CONFIG=$(python3 - "$p_op" "$pc_secret" "$ap_secret" "$p_pc" "$p_apache" <<'PY'
import json, sys
port, pc_secret, ap_secret, p_pc, p_ap = sys.argv[1:]
print(json.dumps({
    "port": int(port),
    "exit_on_stdin_close": False,
    "clients": [
        {"client_id": "portcullis", "client_secret": pc_secret,
         "redirect_uris": [f"http://127.0.0.1:{p_pc}/api/callback"],
         "post_logout_redirect_uris": [f"http://127.0.0.1:{p_pc}/.portcullis/signed-out"],
         "token_endpoint_auth_method": "client_secret_post",
         "id_token_signed_response_alg": "RS256"},
        {"client_id": "apache", "client_secret": ap_secret,
         "redirect_uris": [f"http://127.0.0.1:{p_ap}/oidc/callback"],
         "token_endpoint_auth_method": "client_secret_basic",
         "id_token_signed_response_alg": "RS256"},
    ],
}))
PY
)
OP_CONFIG=$OP_CONFIG node tests/harness/op.mjs >"$work/op.out" 2>"$work/op.err" </dev/null &
started+=($!)
root[op]=$!
wait_for "the OpenID Provider" "${root[op]}" "$issuer/.well-known/openid-configuration" 200

# Apache + mod_auth_openidc.
mkdir -p "$work/apache/run"
chmod 755 "$work/apache"
ap_threads=$((conns + 8 > 25 ? conns + 8 : 25))
template "$here/apache.conf" "$work/apache/apache.conf" WORK="$work/apache" PORT="$p_apache" \
  THREADS="$ap_threads" WORKERS="$((ap_threads * 4))" \
  UPSTREAM="$p_up" ISSUER="$issuer" SECRET="$ap_secret" PASSPHRASE="$(random_hex 24)"
apache2 -t -f "$work/apache/apache.conf" 2>"$work/apache/stderr" || die "apache2: configuration refused: $(cat "$work/apache/stderr")"
apache2 -f "$work/apache/apache.conf" -DFOREGROUND 2>"$work/apache/stderr" &
started+=($!)
root[apache]=$!
wait_for "Apache (mod_auth_openidc)" "${root[apache]}" "http://127.0.0.1:$p_apache/bench" 302

# Portcullis, configured by environment.
mkdir -p "$work/portcullis"
(
  unset PORTCULLIS_BIN
  export OIDC_DISCOVERY_URL="$issuer/.well-known/openid-configuration"
  export OIDC_CLIENT_ID=portcullis OIDC_CLIENT_SECRET="$pc_secret" OIDC_ALLOW_INSECURE_HTTP=true
  export JWT_SIGNING_SECRET
  JWT_SIGNING_SECRET=$(random_hex 32)
  export PORTCULLIS_LISTEN="127.0.0.1:$p_pc" PORTCULLIS_PUBLIC_URL="$pc_base"
  export PORTCULLIS_UPSTREAM="http://127.0.0.1:$p_up"
  export PORTCULLIS_DATABASE_URL="sqlite://$work/portcullis/portcullis.db"
  export PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES=127.0.0.1
  # Every sign-in of the sign-in benchmark comes from 127.0.0.1.
  export PORTCULLIS_LOGIN_STARTS_PER_MINUTE=100000
  exec "$bin" serve
) >"$work/portcullis/stdout" 2>"$work/portcullis/stderr" &
started+=($!)
root[portcullis]=$!
wait_for "Portcullis" "${root[portcullis]}" "$pc_base/readyz" 200

start_nginx nginx-fa forward-auth.conf "$p_fa" UPSTREAM="$p_up" PORTCULLIS="$p_pc"
wait_for "nginx forward-auth" "${root[nginx-fa]}" "http://127.0.0.1:$p_fa/bench" 302

# ---- sign in -------------------------------------------------------------------------------------
echo "== Signing in as alice"
node "$here/signin.mjs" portcullis "$pc_base" alice alice-pass "$work/dpop-key.json" "$work/pc.json"
node "$here/signin.mjs" apache "http://127.0.0.1:$p_apache" alice alice-pass "$work/ap.json"
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
pc_cookie=$(json_field "$work/pc.json" cookie)
pc_token=$(json_field "$work/pc.json" token)
ap_cookie=$(json_field "$work/ap.json" cookie)

# Every target answers the upstream's page with its credential, and refuses without it.
expect "Portcullis, session cookie" 200 yes "$pc_base/bench" -H "Cookie: $pc_cookie"
expect "Portcullis, no session" 302 no "$pc_base/bench"
expect "Portcullis, API token" 200 yes "$pc_base/bench" -H "Authorization: Bearer $pc_token"
bad_token=${pc_token%?}
if [ "${pc_token: -1}" = A ]; then bad_token+=B; else bad_token+=A; fi
expect "Portcullis, wrong API token" 401 no "$pc_base/bench" -H "Authorization: Bearer $bad_token" -H 'Accept: application/json'
expect "Portcullis, API path without a DPoP proof" 401 no "$pc_base/api/bench" -H "Cookie: $pc_cookie"
node bench/dpop.mjs proofs "$work/dpop-key.json" GET "$pc_base/api/bench" 1 "$work/one-proof"
expect "Portcullis, API path with a DPoP proof" 200 yes "$pc_base/api/bench" -H "Cookie: $pc_cookie" -H "DPoP: $(cat "$work/one-proof")"
expect "forward-auth, session cookie" 200 yes "http://127.0.0.1:$p_fa/bench" -H "Cookie: $pc_cookie"
expect "forward-auth, no session" 302 no "http://127.0.0.1:$p_fa/bench"
expect "mod_auth_openidc, session cookie" 200 yes "http://127.0.0.1:$p_apache/bench" -H "Cookie: $ap_cookie"
expect "mod_auth_openidc, no session" 302 no "http://127.0.0.1:$p_apache/bench"

# ---- measuring -------------------------------------------------------------------------------
clk=$(getconf CLK_TCK)
servers=(upstream nginx-proxy apache portcullis nginx-fa)

group_pids() { # PID -> it and all its descendants
  ps -e -o pid= -o ppid= | awk -v r="$1" '
    { parent[$1] = $2 }
    END {
      inside[r] = 1
      do { more = 0; for (p in parent) if (!(p in inside) && (parent[p] in inside)) { inside[p] = 1; more = 1 } } while (more)
      for (p in inside) print p
    }'
}
# CPU ticks (user + system) of a server's processes, including children they have reaped
# (an Apache child that exits is counted in its parent's cutime/cstime).
group_ticks() {
  local pid total=0 t
  for pid in $(group_pids "$1"); do
    t=$(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + t))
  done
  echo "$total"
}
group_rss_kb() {
  local pid total=0 r
  for pid in $(group_pids "$1"); do
    r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
    total=$((total + ${r:-0}))
  done
  echo "$total"
}
# This shell's reaped children (wrk and the script's own helpers) and the whole machine.
self_ticks() { awk '{ print $16 + $17 }' "/proc/$$/stat"; }
# The machine: user + nice + system (what processes are charged), and irq + softirq (the
# kernel's interrupt work, loopback packet processing included, charged to no process).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 }' /proc/stat; }
irq_ticks() { awk '/^cpu / { print $7 + $8 }' /proc/stat; }
# Connections the static upstream has accepted so far (nginx stub_status).
upstream_accepts() { curl -sf "http://127.0.0.1:$p_status/status" | awk 'NR == 3 { print $1 }'; }

results=$work/results.tsv
rss=$work/rss.tsv
for s in "${servers[@]}"; do printf 'idle\t%s\t%s\n' "$s" "$(group_rss_kb "${root[$s]}")" >>"$rss"; done

# Target table: name, URL, which servers it involves; credentials below.
declare -A label url involves
label[upstream]="static upstream (nginx, direct)";     url[upstream]="http://127.0.0.1:$p_up/bench";       involves[upstream]="upstream"
label[proxy]="nginx proxy_pass (no auth)";             url[proxy]="http://127.0.0.1:$p_proxy/bench";       involves[proxy]="nginx-proxy upstream"
label[apache]="mod_auth_openidc, session cookie";      url[apache]="http://127.0.0.1:$p_apache/bench";     involves[apache]="apache upstream"
label[pc-cookie]="Portcullis, session cookie";         url[pc-cookie]="$pc_base/bench";                    involves[pc-cookie]="portcullis upstream"
label[pc-token]="Portcullis, API token";               url[pc-token]="$pc_base/bench";                     involves[pc-token]="portcullis upstream"
label[pc-dpop]="Portcullis, DPoP-bound session (API)"; url[pc-dpop]="$pc_base/api/bench";                  involves[pc-dpop]="portcullis upstream"
label[pc-fa]="Portcullis forward-auth behind nginx";   url[pc-fa]="http://127.0.0.1:$p_fa/bench";          involves[pc-fa]="nginx-fa portcullis upstream"

run_target() { # round target
  local round=$1 t=$2 hdr=() out pid s
  case $t in
    apache) hdr=(-H "Cookie: $ap_cookie") ;;
    pc-cookie|pc-dpop|pc-fa) hdr=(-H "Cookie: $pc_cookie") ;;
    pc-token) hdr=(-H "Authorization: Bearer $pc_token") ;;
  esac
  if [ "$t" = pc-dpop ]; then
    # Fresh proofs for this row (each good once, for 120 s), enough for every request at up
    # to PROOFS_PER_SEC (default 20000) requests/s per wrk thread.
    local n=$((${PROOFS_PER_SEC:-20000} * secs))
    node bench/dpop.mjs proofs "$work/dpop-key.json" GET "${url[$t]}" "$n" "$work/proofs.0" &
    local gen=$!
    node bench/dpop.mjs proofs "$work/dpop-key.json" GET "${url[$t]}" "$n" "$work/proofs.1"
    wait "$gen"
    export PROOFS=$work/proofs
  else
    export PROOFS=
  fi
  declare -A before
  for s in "${servers[@]}"; do before[$s]=$(group_ticks "${root[$s]}"); done
  local self0 mach0 irq0 conn0
  self0=$(self_ticks); mach0=$(machine_ticks); irq0=$(irq_ticks); conn0=$(upstream_accepts)
  wrk -t2 -c"$conns" -d"${secs}s" -s "$here/check.lua" "${hdr[@]}" "${url[$t]}" >"$work/wrk.out" 2>&1 &
  pid=$!
  load_pid=$pid
  sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"
  for s in ${involves[$t]}; do printf 'load\t%s\t%s\n' "$s" "$(group_rss_kb "${root[$s]}")" >>"$rss"; done
  wait "$pid" || die "wrk failed: $(cat "$work/wrk.out")"
  load_pid=
  local line
  line=$(grep '^result ' "$work/wrk.out") || die "${label[$t]}: no result from wrk: $(cat "$work/wrk.out")"
  local row="$round"$'\t'"$t"$'\t'"${line#result }"
  for s in "${servers[@]}"; do row+=$'\t'"$s=$(($(group_ticks "${root[$s]}") - before[$s]))"; done
  row+=$'\t'"generator=$(($(self_ticks) - self0))"$'\t'"machine=$(($(machine_ticks) - mach0))"$'\t'"irq=$(($(irq_ticks) - irq0))"$'\t'"upconns=$(($(upstream_accepts) - conn0))"
  printf '%s\n' "$row" >>"$results"
  local v
  for v in not200 nomarker sockerr; do
    [[ $line =~ $v=([0-9]+) ]] || die "unparsable wrk result: $line"
    [ "${BASH_REMATCH[1]}" = 0 ] || die "${label[$t]}, round $round: ${BASH_REMATCH[1]} answers counted as $v (not a 200 with the upstream's page, or a socket error): the run is invalid. $line; $(grep '^socket errors' "$work/wrk.out")"
  done
  printf '  round %s  %-40s %s\n' "$round" "${label[$t]}" "$(awk '{ split($1, a, "="); split($2, b, "="); printf "%.0f req/s", a[2] / b[2] * 1e6 }' <<<"${line#result }")"
}

echo "== Load: wrk -t2 -c$conns -d${secs}s, $rounds interleaved rounds, $(nproc) cores shared by wrk and every server"
for ((r = 1; r <= rounds; r++)); do
  # Each round starts one target later, so no target always runs first or last.
  for ((i = 0; i < ${#targets[@]}; i++)); do
    run_target "$r" "${targets[$(((i + r - 1) % ${#targets[@]}))]}"
  done
done
unset PROOFS
for s in "${servers[@]}"; do printf 'after\t%s\t%s\n' "$s" "$(group_rss_kb "${root[$s]}")" >>"$rss"; done

# ---- sign-ins --------------------------------------------------------------------------------
signin_row() { # kind base servers...
  local kind=$1 base=$2 s
  shift 2
  declare -A before
  for s in "$@" op; do before[$s]=$(group_ticks "${root[$s]}"); done
  node "$here/signin.mjs" many "$kind" "$base" alice alice-pass "$signins" "$signin_concurrency" "$work/signin.json"
  local row
  row="$kind"$'\t'"$(cat "$work/signin.json")"
  for s in "$@" op; do row+=$'\t'"$s=$(($(group_ticks "${root[$s]}") - before[$s]))"; done
  printf '%s\n' "$row" >>"$work/signins.tsv"
}
if [ "$signins" -gt 0 ]; then
  echo "== Sign-ins: $signins complete sign-ins per gateway, $signin_concurrency at a time"
  signin_row portcullis "$pc_base" portcullis
  signin_row apache "http://127.0.0.1:$p_apache" apache
fi

# ---- report ----------------------------------------------------------------------------------
echo
echo "== Results: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo))"
echo "   bench/compare.sh${args:+ $args}"
echo "   $("$bin" --version 2>/dev/null || echo portcullis), $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(apache2 -v | awk -F': ' '/version/ { print $2 }'), mod_auth_openidc $(dpkg-query -W -f '${Version}' libapache2-mod-auth-openidc 2>/dev/null || echo '?'), $({ wrk -v 2>&1 || true; } | awk '/^wrk/ { print $1, $2; exit }'), node $(node --version)"
python3 "$here/report.py" "$results" "$rss" "$work/signins.tsv" "$clk" "$signin_concurrency"
