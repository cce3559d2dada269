#!/usr/bin/env bash
# Benchmarks of issues 2 and 3, side by side in one run on one machine:
#   reads    GET /v1/runs/{id} through nginx  vs  a FastCGI no-op route doing SELECT 1
#   auth     the same read, authenticated     vs  the same pool with auth off
#   submits  POST /v1/sessions/{id}/runs      vs  pgbench running the same SQL transaction
#            (pgbench with as many clients as the pool has workers: the same
#            database concurrency the API can reach)
# Each pair alternates ROUNDS times; medians and ratios go to stdout as a
# Markdown table (paste into docs/performance.md).
#
#   bench/run.sh   (env: DURATION=10 CONNECTIONS=32 ROUNDS=3 WORKERS=4)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN_DIR:-$PWD/bin}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-4}
T=$(mktemp -d /tmp/kheish-bench.XXXXXX)
chmod 755 "$T"
PORT=$((30000 + RANDOM % 10000)) # also PORT+1, +2 (baselines), +1000 (PostgreSQL)
trap '"$BIN/kheish" down --state-root "$T/state" >/dev/null 2>&1; [ -f "$T/ngx/nginx.pid" ] && kill -QUIT "$(cat "$T/ngx/nginx.pid")"; kill $SELECT1 $NOAUTH 2>/dev/null; wait; rm -rf "$T"' EXIT
SELECT1= NOAUTH=

"$BIN/kheish" up --state-root "$T/state" --port "$PORT" --workers "$WORKERS" >/dev/null
. "$T/state/stack.env"
APP="host=$T/state/pg port=$KHEISH_PG_PORT dbname=kheish user=kheish_app"
PSQL="psql -X -q -h $T/state/pg -p $KHEISH_PG_PORT -U postgres -d kheish"

# The baselines: the SELECT 1 pool, and kheish-fcgi with auth off. One nginx
# (the embedded one's shape) fronts them and the stack's own pool, so every
# read comparison goes through the same nginx process; submits go through
# the stack's nginx.
"$BIN/bench-select1" "$T/select1.sock" "$WORKERS" "$APP" &
SELECT1=$!
mkdir -m 700 "$T/noauth"
KHEISH_DATABASE_URL=$APP "$BIN/kheish-fcgi" --socket "$T/noauth.sock" --workers "$WORKERS" \
    --state-root "$T/noauth" --http-auth-mode none --bind 127.0.0.1:9 --socket-group nogroup \
    2>"$T/noauth.log" &
NOAUTH=$!
mkdir -p "$T/ngx/logs" "$T/ngx/tmp"
BPORT=$((PORT + 1)) NPORT=$((PORT + 2)) APORT=$((PORT + 3))
cat >"$T/ngx/nginx.conf" <<CONF
user nobody nogroup;
worker_processes 2;
pid nginx.pid;
error_log logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:$BPORT;
        location = /select1 { include /etc/nginx/fastcgi_params; fastcgi_pass unix:$T/select1.sock; }
    }
    server {
        listen 127.0.0.1:$NPORT;
        include /etc/nginx/fastcgi_params;
        fastcgi_param REQUEST_ID \$request_id;
        location /v1/ { fastcgi_pass unix:$T/noauth.sock; }
    }
    server {
        listen 127.0.0.1:$APORT;
        include /etc/nginx/fastcgi_params;
        fastcgi_param REQUEST_ID \$request_id;
        location /v1/ { fastcgi_pass unix:$T/state/run/api.sock; }
    }
}
CONF
nginx -p "$T/ngx" -c nginx.conf
sleep 0.5

for i in $(seq 1 100); do echo "INSERT INTO sessions (session_id, agent_id, created_at_ms, updated_at_ms) VALUES ('bench-$i', 'agent-bench-$i', 0, 0);"; done | $PSQL
AUTH="Authorization: Bearer $(cat "$T/state/tokens/admin-token")"
RUN=$(curl -sf -X POST -H "$AUTH" -H 'Content-Type: application/json' -d '{"content":"read me"}' "http://127.0.0.1:$PORT/v1/sessions/bench-1/runs" | jq -r .run_id)

# wrk prints Requests/sec and a latency distribution; keep req/s, p50, p99 (ms).
wrk_run() { # URL [script]  (the admin token goes along: the baseline ignores it)
    local out
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$AUTH" ${2:+-s "$2"} "$1")
    local rps p50 p99
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[^m]s$/) n *= 1000; printf "%.2f", n }'; }

# pgbench: tps and latency percentiles from its per-transaction log.
pgbench_run() {
    rm -f "$T"/pgbench_log.*
    local out
    out=$(cd "$T" && pgbench -n -h "$T/state/pg" -p "$KHEISH_PG_PORT" -U postgres -c "$WORKERS" -j 2 \
        -T "$DURATION" -M prepared -f "$OLDPWD/bench/submit.sql" -l --log-prefix=pgbench_log kheish 2>&1)
    local tps
    tps=$(awk '/^tps/ {print $3; exit}' <<<"$out")
    cat "$T"/pgbench_log.* | awk '{print $3 / 1000}' | sort -n >"$T/lat"
    local n
    n=$(wc -l <"$T/lat")
    echo "$tps $(sed -n "$((n / 2 + 1))p" "$T/lat") $(sed -n "$((n * 99 / 100 + 1))p" "$T/lat")"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
declare -A R
for round in $(seq 1 "$ROUNDS"); do
    R[select1]+="$(wrk_run "http://127.0.0.1:$BPORT/select1")"$'\n'
    R[read]+="$(wrk_run "http://127.0.0.1:$APORT/v1/runs/$RUN")"$'\n'
    R[noauth]+="$(wrk_run "http://127.0.0.1:$NPORT/v1/runs/$RUN")"$'\n'
    R[pgbench]+="$(pgbench_run)"$'\n'
    R[submit]+="$(wrk_run "http://127.0.0.1:$PORT/v1/sessions/bench-1/runs" bench/submit.lua)"$'\n'
done
col() { grep -v '^$' <<<"${R[$1]}" | awk -v c="$2" '{print $c}' | median; }
echo "| case | req/s (median of $ROUNDS) | p50 ms | p99 ms |"
echo "|---|---|---|---|"
for k in select1 read noauth pgbench submit; do echo "| $k | $(col $k 1) | $(col $k 2) | $(col $k 3) |"; done
# Per-round ratios too: the pairs ran back to back, so they share the machine's mood.
paste <(grep -v '^$' <<<"${R[read]}") <(grep -v '^$' <<<"${R[select1]}") \
    <(grep -v '^$' <<<"${R[submit]}") <(grep -v '^$' <<<"${R[pgbench]}") \
    <(grep -v '^$' <<<"${R[noauth]}") |
    awk '{printf "round %d: reads/SELECT 1 %.2f, submits/pgbench %.2f, auth/no auth %.2f\n",
          NR, $1 / $4, $7 / $10, $1 / $13}'
awk -v r="$(col read 1)" -v b="$(col select1 1)" -v s="$(col submit 1)" -v p="$(col pgbench 1)" \
    -v n="$(col noauth 1)" 'BEGIN { printf "\nreads / SELECT 1 route = %.2f (goal >= 0.8)\n" \
    "submits / pgbench = %.2f (goal >= 0.7)\nauthenticated / unauthenticated reads = %.2f (goal >= 0.9)\n",
    r / b, s / p, r / n }'
"$BIN/bench-auth-check"
echo "(connections $CONNECTIONS, $DURATION s each, workers $WORKERS, $(nproc) cores, $(date -u +%F))"
