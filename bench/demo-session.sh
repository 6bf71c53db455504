# Sourced by the bench scripts: start `portcullis demo` ($bin, under $launcher if set, e.g.
# valgrind) on $port with its database in $work, wait for it, and sign in as alice through the
# dev IdP with curl and bench/dpop.mjs, like a browser with the client would: the sign-in is
# started with a DPoP proof from a key in $work/dpop-key.json, so the session is bound to it.
# Sets demo_pid, app (the sample app's direct URL), base (the gateway), session and fp (the
# session and fingerprint cookies' values), cookies (a Cookie header value) and dpop_key.
# shellcheck shell=bash
${launcher:-} "$bin" demo --port "$port" --database "$work/demo.db" >"$work/out" 2>"$work/err" &
demo_pid=$!
for _ in $(seq 1200); do
  grep -q "Sample app:" "$work/out" 2>/dev/null && break
  kill -0 "$demo_pid" 2>/dev/null || { echo "the demo exited:" >&2; cat "$work/err" >&2; exit 1; }
  sleep 0.1
done
app=$(awk '/Sample app:/ {print $3}' "$work/out")
base="http://localhost:$port"

jar="$work/jar"
dpop_key="$work/dpop-key.json"
node bench/dpop.mjs key "$dpop_key"
login=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" "$base/")
authorize=$(curl -s -c "$jar" -b "$jar" -X POST -H 'Accept: application/json' \
  -H "DPoP: $(node bench/dpop.mjs proof "$dpop_key" POST "$login")" "$login" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["authorization_url"])')
form=$(curl -s -c "$jar" -b "$jar" "$authorize")
action=$(printf '%s' "$form" | grep -o 'action="[^"]*"' | head -1 | cut -d'"' -f2)
request_id=$(printf '%s' "$form" | grep -o 'name="request_id" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
idp=$(printf '%s' "$authorize" | grep -o '^http://[^/]*')
callback=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$jar" -b "$jar" \
  --data-urlencode "request_id=$request_id" --data-urlencode username=alice --data-urlencode password=alice \
  "$idp$action")
curl -s -o /dev/null -c "$jar" -b "$jar" "$callback"
session=$(awk '$6 == "__Host-session" {print $7}' "$jar")
fp=$(awk '$6 == "__Host-fp" {print $7}' "$jar")
[ -n "$session" ] && [ -n "$fp" ] || { echo "sign-in failed" >&2; cat "$work/err" >&2; exit 1; }
cookies="__Host-session=$session; __Host-fp=$fp"
