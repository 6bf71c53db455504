#!/usr/bin/env bash
# The admin user search (GET /api/admin/users?q=…) at N users, with and without its index, on
# SQLite and PostgreSQL, straight in the database (no gateway, no build needed):
#
#   bench/search.sh [N=200000]
#
# Each backend gets the gateway's migrations (crates/store/migrations/*, applied with the
# sqlite3 shell and psql), N users, sessions and API tokens from bench/scale/seed-*.sql, and
# one user Alice. Then, for each search text, the queries the gateway sends for it (first
# page, 25 users; the text inlined here, bound in the gateway), their plans and times:
#   "scan"   the query before the index: lower(col) LIKE over the users in id order (on
#            PostgreSQL with the pg_trgm indexes dropped, in a transaction rolled back)
#   "index"  what the gateway does now: a probe for up to 2 000 matches (SQLite: in the FTS5
#            trigram table of migration 0011; PostgreSQL: the LIKE tests, which its trigram
#            indexes of migration 0010 serve), then, with fewer, the matches collected and
#            sorted; with more, the scan's query (a common text fills its page soon)
# Times (probe and query together, best of 3): SQLite, the shell's `.timer` (CPU user+sys);
# PostgreSQL, EXPLAIN ANALYZE's execution times. Needs sqlite3 (3.34+, for the trigram tokenizer) and PostgreSQL's
# server binaries (scripts/postgres-test-cluster). BACKENDS (default "sqlite postgres").
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200000}
backends=${BACKENDS:-"sqlite postgres"}
work=$(mktemp -d /tmp/portcullis-search.XXXXXX)
chmod 755 "$work" # the PostgreSQL server may run as another user
pg_dir=
cleanup() {
  [ -n "$pg_dir" ] && scripts/postgres-test-cluster stop "$pg_dir" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

cols="id, issuer, subject, user_id, email, name, given_name, family_name, picture, provider, \
username, groups_json, first_login, last_login, admin_disabled, idp_deactivated"
# Search texts: a rare one (the bench's Alice), ones in about 100, 1 000 and 10 000 users (at
# 200 000), one in every user, and two shorter than a trigram.
texts="alice user1234 user199 user19 example al a"
alice="INSERT INTO users (id, issuer, subject, user_id, email, name, username, groups_json,
  first_login, last_login) VALUES ('018f0000-0000-7000-9000-000000000001', 'https://op',
  'alice-sub', 'alice', 'alice@example.com', 'Alice', 'alice', '[]', 1, 1);"

seed() { # backend → the seed SQL with the values filled in
  sed -e "s/:N\b/$n/g; s/:NOW\b/$(date +%s)/g; s|:ISSUER|https://op|g; s|:IDTOKEN|x|g" \
    "bench/scale/seed-$1.sql"
}

like() { # text → the search's LIKE test (the text has no %, _ or \ here)
  local p="'%$1%'"
  echo "(lower(email) LIKE $p ESCAPE '\\' OR lower(name) LIKE $p ESCAPE '\\' \
OR lower(username) LIKE $p ESCAPE '\\' OR lower(subject) LIKE $p ESCAPE '\\')"
}

echo "bench/search.sh: $n seeded users + Alice, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M UTC')"
for backend in $backends; do
  echo
  case $backend in
  sqlite)
    db="$work/search.db"
    echo "SQLite $(sqlite3 --version | cut -d' ' -f1) (the sqlite3 shell; the gateway bundles its own)"
    t0=$(date +%s.%N)
    for f in crates/store/migrations/sqlite/*.sql; do sqlite3 "$db" <"$f"; done
    { seed sqlite; echo "$alice"; } | sqlite3 "$db" >/dev/null
    echo "seeded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s; database $(du -cb "$db"* | awk 'END { printf "%.0f MB", $1 / 1e6 }')"
    for t in $texts; do
      scan="SELECT $cols FROM users WHERE TRUE AND $(like "$t") ORDER BY id LIMIT 25"
      # As the gateway does: 3+ characters probe the index for up to 2 000 candidates; fewer
      # found, the candidates are read from it; else (a common text) the scan's query is used.
      probe="SELECT 0"
      index="$scan"
      candidates="-"
      if [ ${#t} -ge 3 ]; then
        probe="SELECT count(*) FROM (SELECT rowid FROM users_search WHERE users_search MATCH '\"$t\"' LIMIT 2000)"
        candidates=$(sqlite3 "$db" "$probe")
        [ "$candidates" -lt 2000 ] &&
          index="WITH found AS MATERIALIZED (SELECT $cols FROM users WHERE TRUE AND id IN \
(SELECT user_id FROM users_search_keys WHERE k IN (SELECT rowid FROM users_search \
WHERE users_search MATCH '\"$t\"')) AND $(like "$t")) SELECT * FROM found ORDER BY id LIMIT 25"
      fi
      for kind in scan index; do
        sql=${!kind}
        pre="SELECT 0"
        [ $kind = index ] && pre=$probe
        rows=$(sqlite3 "$db" "SELECT count(*) FROM ($sql)")
        # Best of 3 of the probe's and the query's CPU time together.
        best=$(for r in 1 2 3; do printf '.timer on\n%s;\n%s;\n' "$pre" "$sql" | sqlite3 "$db" |
          awk -v r=$r '/^Run Time/ { print r, $6 + $8 }'; done |
          awk '{ t[$1] += $2 } END { for (r in t) if (b == "" || t[r] < b) b = t[r]; printf "%.3f", b }')
        plan=$(sqlite3 "$db" "EXPLAIN QUERY PLAN $sql" | sed -n '2,$p' | sed -E 's/^[|` -]+//' | paste -sd';' | cut -c1-200)
        [ $kind = index ] && plan="index candidates (probe, at most 2000): $candidates; $plan"
        printf '  q=%-10s %-6s %3s rows  %7s s CPU  plan: %s\n' "$t" "$kind" "$rows" "$best" "$plan"
      done
    done
    ;;
  postgres)
    pg_dir="$work/pg"
    pg_url=$(scripts/postgres-test-cluster start "$pg_dir")
    psql -q "$pg_url" -c "CREATE DATABASE search" >/dev/null
    url="${pg_url%/postgres}/search"
    echo "PostgreSQL $(psql -At "$url" -c 'SHOW server_version' | cut -d' ' -f1)"
    t0=$(date +%s.%N)
    for f in crates/store/migrations/postgres/*.sql; do psql -q -v ON_ERROR_STOP=1 "$url" -f "$f" >/dev/null; done
    { seed postgres; echo "$alice"; echo "ANALYZE users;"; } | psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null
    echo "seeded in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s; database $(psql -At "$url" -c "SELECT pg_database_size(current_database())" | awk '{ printf "%.0f MB", $1 / 1e6 }'), trigram indexes $(psql -At "$url" -c "SELECT pg_size_pretty(sum(pg_relation_size(indexname::regclass))) FROM pg_indexes WHERE indexname LIKE 'users\_%\_trgm'")"
    drop="DROP INDEX users_email_trgm, users_name_trgm, users_username_trgm, users_subject_trgm;"
    for t in $texts; do
      scan="SELECT $cols FROM users WHERE TRUE AND $(like "$t") ORDER BY id LIMIT 25"
      # As the gateway does: 3+ characters probe for up to 2 000 matches (through the indexes
      # for a rare text); fewer found, they are collected first, then sorted; else the scan's
      # query, which PostgreSQL answers in id order.
      probe="SELECT 0"
      index="$scan"
      candidates="-"
      if [ ${#t} -ge 3 ]; then
        probe="SELECT count(*) FROM (SELECT 1 FROM users WHERE $(like "$t") LIMIT 2000) t"
        candidates=$(psql -At "$url" -c "$probe")
        [ "$candidates" -lt 2000 ] &&
          index="WITH found AS MATERIALIZED (SELECT $cols FROM users WHERE TRUE AND $(like "$t")) \
SELECT * FROM found ORDER BY id LIMIT 25"
      fi
      rows=$(psql -At "$url" -c "SELECT count(*) FROM ($index) r")
      for kind in scan index; do
        sql=${!kind}
        pre=""
        [ $kind = scan ] && pre=$drop
        out=$(for r in 1 2 3; do
          printf 'BEGIN;\n%s\n' "$pre"
          [ $kind = index ] && printf 'EXPLAIN (ANALYZE, COSTS OFF) %s;\n' "$probe"
          printf 'EXPLAIN (ANALYZE, COSTS OFF) %s;\nROLLBACK;\n' "$sql"
        done | psql -q -At "$url")
        # Per run: the probe's and the query's execution times together; then the best run.
        best=$(grep 'Execution Time' <<<"$out" |
          awk -v per=$([ $kind = index ] && echo 2 || echo 1) '{ t += $3; if (NR % per == 0) {
            if (b == "" || t < b) b = t; t = 0 } } END { printf "%.3f", b / 1000 }')
        plan=$(grep -E 'Scan|Sort\b|BitmapOr|Limit' <<<"$out" | grep -v 'Sort Method' | tail -n +1 |
          sed -E 's/ +\(actual.*//; s/^ *(->)? *//' | awk '!seen[$0]++' | paste -sd';' | cut -c1-200)
        [ $kind = index ] && plan="matches (probe, at most 2000): $candidates; $plan"
        printf '  q=%-10s %-6s %3s rows  %7s s      plan: %s\n' "$t" "$kind" "$rows" "$best" "$plan"
      done
    done
    ;;
  esac
done
