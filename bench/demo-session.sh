# Sourced by the bench scripts: start `portcullis demo` ($bin, under $launcher if set, e.g.
# valgrind) on $port with its database in $work, wait for it, and sign in as alice through the
# dev IdP with curl, like a browser would. Sets demo_pid, app (the sample app's direct URL),
# base (the gateway) and session (the session cookie's value).
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
