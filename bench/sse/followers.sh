#!/usr/bin/env bash
# Issue 11's acceptance benchmark: FOLLOWERS SSE followers (10,000) on
# /v1/events/stream through the embedded nginx of a `kheish up` stack, while
# /healthz and GET /v1/status keep answering.
#
# Each round sends REQUESTS GETs to each endpoint at RATE per second, the
# two endpoints at once, each request on a new connection (Connection:
# close, as a `kheish` call opens one), and takes p50, p99 and max of curl's
# time_total. ROUNDS rounds with 0 followers, then ROUNDS rounds while
# bench-sse-load holds FOLLOWERS streams from 127.0.0.1..127.0.0.SOURCES
# (nginx allows 256 streams per address, and counts the probes apart).
# A round lasts REQUESTS / RATE seconds, past the relays' 10 s heartbeat, so
# every round sees the heartbeat of every stream go through nginx.
# The report, Markdown on stdout, gives the median and worst round of each
# measure, side by side.
#
#   bench/sse/followers.sh   (env: FOLLOWERS=10000 ROUNDS=5 REQUESTS=300 RATE=25
#                                  SOURCES=100)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN_DIR:-$PWD/bin}
FOLLOWERS=${FOLLOWERS:-10000}
ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-300}
RATE=${RATE:-25}
SOURCES=${SOURCES:-100}
READY_TIMEOUT=120 # seconds to open every stream
GOAL_P99_MS=50
export KHEISH_NGINX_TEMPLATE_DIR=${KHEISH_NGINX_TEMPLATE_DIR:-$PWD/nginx}

# Descriptors: the load client holds one per stream; `kheish up` gives the
# stack its own (nginx two per stream, over two workers; each relay one per
# stream it serves). Raise the hard limit where we may, then the soft one.
# shellcheck source=bench/sse/nofile.sh
. bench/sse/nofile.sh
raise_nofile $((FOLLOWERS + 100)) followers.sh

T=$(mktemp -d /tmp/kheish-bench-followers.XXXXXX)
chmod 755 "$T"
# nginx, PostgreSQL +1000 (a unix socket): below the ephemeral range
# (32768-), which the load client's connections use.
PORT=$((30000 + RANDOM % 700))
LOAD_PID=
cleanup() {
    [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true
    "$BIN/kheish" down --state-root "$T/state" >/dev/null 2>&1 || true
    wait
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

timeout 120 "$BIN/kheish" up --state-root "$T/state" --port "$PORT" >/dev/null 2>"$T/up.log" ||
    { cat "$T/up.log" >&2; exit 1; }
TOKEN_FILE=$T/state/tokens/admin-token
NGINX_WORKERS=$(pgrep -d ' ' -P "$(cat "$T/state/nginx/nginx.pid")")
RELAYS=$(cat "$T"/state/run/relay-*.pid | paste -sd ' ')

# CPU ticks (utime + stime) of the processes given, summed.
ticks() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] && t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$t"
}
# Machine-wide busy and total ticks (all cores), from /proc/stat, and the %
# busy between two of them: others share the machine.
machine_ticks() { awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat; }
busy_pct() { awk -v m0="$1" -v m1="$2" 'BEGIN {split(m0, a, " "); split(m1, b, " ");
    printf "%.0f", (b[1] - a[1]) * 100 / (b[2] - a[2])}'; }

# probe FOLLOWERS ROUND ENDPOINT: REQUESTS paced GETs; appends one line of
# "followers round endpoint p50 p99 max non200" (ms) to $T/results.
probe() {
    local f=$1 round=$2 ep=$3
    local cfg=$T/probe${ep//\//-}.cfg out=$T/probe${ep//\//-}.out
    : >"$cfg"
    for _ in $(seq "$REQUESTS"); do
        printf 'url = "http://127.0.0.1:%d%s"\noutput = "/dev/null"\n' "$PORT" "$ep" >>"$cfg"
    done
    curl -s --rate "$RATE/s" --max-time 10 -H 'Connection: close' \
        -H "Authorization: Bearer $(cat "$TOKEN_FILE")" -w '%{http_code} %{time_total}\n' \
        -K "$cfg" >"$out" || true
    sort -k2 -g "$out" | awk -v f="$f" -v r="$round" -v ep="$ep" -v n="$REQUESTS" '
        {t[NR] = $2 * 1000; if ($1 != 200) bad++}
        END {i50 = int(n * 0.50 + 0.999); i99 = int(n * 0.99 + 0.999)
             printf "%d %d %s %.2f %.2f %.2f %d\n", f, r, ep, t[i50], t[i99], t[NR], bad + (n - NR)}' \
        >>"$T/results"
}

# ROUNDS rounds with F followers held: both endpoints at once. Then the
# time kheish-fcgi itself took for those GET /v1/status (its log's
# duration_ms), p50 and p99, to $T/handler-F: what is left of curl's time is
# nginx and the network stack; and the CPU (% of one core) of the nginx
# workers, the relays and the load client over the rounds, to $T/cpu-F.
rounds() { # F
    local round m0 p1 log=$T/state/logs/fcgi.log from c0 t0=$EPOCHREALTIME
    from=$(($(wc -l <"$log") + 1))
    c0="$(ticks $NGINX_WORKERS) $(ticks $RELAYS) $(ticks $LOAD_PID)"
    for round in $(seq "$ROUNDS"); do
        m0=$(machine_ticks)
        probe "$1" "$round" /healthz &
        p1=$!
        probe "$1" "$round" /v1/status
        wait "$p1"
        echo "$1 $round $(busy_pct "$m0" "$(machine_ticks)")" >>"$T/busy"
    done
    tail -n +"$from" "$log" | jq -r 'select(.path == "/v1/status") | .duration_ms' | sort -g |
        awk '{t[NR] = $1} END {printf "%.2f, %.2f", t[int(NR * 0.5 + 0.999)], t[int(NR * 0.99 + 0.999)]}' \
            >"$T/handler-$1"
    awk -v a="$c0" -v b="$(ticks $NGINX_WORKERS) $(ticks $RELAYS) $(ticks $LOAD_PID)" \
        -v s="$(awk -v t0="$t0" -v t1="$EPOCHREALTIME" 'BEGIN {print t1 - t0}')" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {split(a, x, " "); split(b, y, " ")
                printf "%.1f / %.1f / %.1f", (y[1] - x[1]) / hz / s * 100, (y[2] - x[2]) / hz / s * 100,
                       (y[3] - x[3]) / hz / s * 100}' >"$T/cpu-$1"
}

: >"$T/results"
rounds 0

"$BIN/bench-sse-load" --streams "$FOLLOWERS" --sources "$SOURCES" \
    --token-file "$TOKEN_FILE" --ready-file "$T/load.ready" \
    "http://127.0.0.1:$PORT/v1/events/stream" >"$T/load.json" 2>"$T/load.log" &
LOAD_PID=$!
for _ in $(seq $((READY_TIMEOUT * 20))); do
    [ -s "$T/load.ready" ] && break
    kill -0 "$LOAD_PID" 2>/dev/null || break
    sleep 0.05
done
read -r CONNECTED FAILED <"$T/load.ready" || { cat "$T/load.log" >&2; exit 1; }
CONNS=$(for p in $NGINX_WORKERS; do ls "/proc/$p/fd" | wc -l; done | paste -sd /)
rounds "$FOLLOWERS"
NGINX_RSS=$(for p in $NGINX_WORKERS; do awk '/^VmRSS/ {print $2}' "/proc/$p/status"; done |
    awk '{s += $1} END {printf "%.1f", s / 1024}')
kill -TERM "$LOAD_PID"
wait "$LOAD_PID" || true
LOAD_PID=

# ---- the report -----------------------------------------------------------
# The values of column C (4 p50, 5 p99, 6 max, 7 non-200) over the rounds of
# F followers on ENDPOINT.
values() { awk -v f="$1" -v ep="$2" -v c="$3" '$1 == f && $3 == ep {print $c}' "$T/results"; }
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
worst() { sort -g | tail -n 1; }
total() { awk '{s += $1} END {print s + 0}'; }

echo "### $FOLLOWERS SSE followers through the embedded nginx: /healthz and GET /v1/status"
echo
echo "$ROUNDS rounds per case; each round $REQUESTS requests per endpoint at $RATE/s, both at once," \
    "one connection per request. Latency in ms (curl's time_total); the median round and the worst."
echo
echo "| followers | endpoint | p50 (median, worst) | p99 (median, worst) | max (median, worst) | non-200 | kheish-fcgi's own p50, p99 | CPU %: nginx / relays / load client | machine busy % |"
echo "|---|---|---|---|---|---|---|---|---|"
for f in 0 "$FOLLOWERS"; do
    busy=$(awk -v f="$f" '$1 == f {print $3}' "$T/busy" | median)
    for ep in /healthz /v1/status; do
        printf '| %s | `%s` | %s, %s | %s, %s | %s, %s | %s | %s | %s | %s |\n' "$f" "$ep" \
            "$(values "$f" "$ep" 4 | median)" "$(values "$f" "$ep" 4 | worst)" \
            "$(values "$f" "$ep" 5 | median)" "$(values "$f" "$ep" 5 | worst)" \
            "$(values "$f" "$ep" 6 | median)" "$(values "$f" "$ep" 6 | worst)" \
            "$(values "$f" "$ep" 7 | total)" "$([ "$ep" = /v1/status ] && cat "$T/handler-$f")" \
            "$(cat "$T/cpu-$f")" "$busy"
    done
done
echo
jq -r '"Followers: \(.connected) open, \(.failed) failed, \(.closed) closed while held (opened in \(.connect_s) s, held \(.held_s) s); heartbeats per stream \(.heartbeats_per_stream_min) to \(.heartbeats_per_stream_max); errors \(.errors | with_entries(select(.value > 0)))."' \
    "$T/load.json"
echo "Descriptors of the nginx workers with the followers held: $CONNS; their RSS $NGINX_RSS MiB."
worst99=$(for ep in /healthz /v1/status; do values "$FOLLOWERS" "$ep" 5; done | worst)
bad=$(for ep in /healthz /v1/status; do values "$FOLLOWERS" "$ep" 7; done | total)
awk -v p="$worst99" -v g="$GOAL_P99_MS" -v b="$bad" -v c="$CONNECTED" -v n="$FOLLOWERS" 'BEGIN {
    ok = p < g && b == 0 && c == n
    printf "Goal: p99 under %d ms with %d followers, in every round: worst round %.2f ms, %d non-200, %d of %d followers open (%s).\n",
        g, n, p, b, c, n, (ok ? "met" : "missed") }'
echo
echo "($(nproc) cores, $(date -u +%F); descriptor limit $NOFILE (kheish up: $(grep -o 'limit is [0-9]*' "$T/up.log" || echo "$NOFILE or more"));" \
    "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- nginx cli sse-relay 2>/dev/null || echo ' with uncommitted changes'))"
[ "$FAILED" = 0 ] || echo "followers.sh: $FAILED followers failed to open (see above)" >&2
