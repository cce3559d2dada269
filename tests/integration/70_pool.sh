# The worker pool: a killed worker is replaced within 1 s without failing other
# requests; SIGHUP replaces every worker; SIGTERM drains (readyz 503) and lets
# in-flight requests finish.
master=$(cat "$STATE_ROOT/run/fcgi.pid")
workers() { pgrep -P "$master" | sort; }
n=$(workers | wc -l)
[ "$n" -ge 2 ] || fail "expected a pool of workers, found $n"

load() { # OUT-FILE SECONDS: GET /v1/status in a loop, one status code per line
    local end=$((SECONDS + $2))
    while [ $SECONDS -lt $end ]; do
        curl -s -o /dev/null -w '%{http_code}\n' -H "Authorization: Bearer $ADMIN_TOKEN" "$KHEISH_DAEMON_URL/v1/status"
    done >"$1"
}
for i in 1 2 3; do load "$RESP_DIR/load$i" 4 & done
sleep 1
victim=$(workers | head -1)
old=$(workers)
kill -9 "$victim"
t0=$(date +%s%N)
replaced() { [ "$(workers | wc -l)" -eq "$n" ] && ! workers | grep -qx "$victim"; }
wait_until 5 replaced || fail "worker $victim was not replaced"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -le 1000 ] || fail "replacement took $ms ms"
wait
total=$(cat "$RESP_DIR"/load* | wc -l)
bad=$(grep -vc '^200$' "$RESP_DIR"/load* | awk -F: '{s += $2} END {print s}')
echo "kill -9: replaced in $ms ms; $bad of $total requests failed"
# (Enough requests that some were in flight around the kill, even on a loaded machine.)
[ "$total" -gt 15 ] || fail "load generator made only $total requests"
# At most the one request the killed worker was serving may fail.
[ "$bad" -le 1 ] || fail "$bad requests failed around the worker kill"

# SIGHUP: a whole new generation, no failed request.
old=$(workers)
load "$RESP_DIR/hup" 3 &
sleep 0.5
kill -HUP "$master"
fresh() { [ "$(workers | wc -l)" -eq "$n" ] && [ -z "$(comm -12 <(echo "$old") <(workers))" ]; }
wait_until 5 fresh || fail "SIGHUP did not replace the workers"
wait
grep -qv '^200$' "$RESP_DIR/hup" && fail "a request failed during SIGHUP"

# SIGTERM on a second pool on its own socket: drain, then finish in-flight work.
sock=$RESP_DIR/drain.sock
KHEISH_DATABASE_URL="host=$STATE_ROOT/pg port=$KHEISH_PG_PORT dbname=kheish user=kheish_app" \
    "$BIN_DIR/kheish-fcgi" --socket "$sock" --workers 2 --state-root "$STATE_ROOT" --drain-ms 1500 \
    --bind 127.0.0.1:9 --http-auth-mode none \
    2>"$RESP_DIR/drain.log" &
pool=$!
fcgi() { env -i REQUEST_METHOD=GET REQUEST_URI="$1" cgi-fcgi -bind -connect "$sock"; }
wait_until 5 test -S "$sock" || fail "second pool did not start"
fcgi /readyz | grep -q '^Status: 200' || fail "second pool not ready"
$PSQL -c "BEGIN; LOCK TABLE runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2.5); COMMIT;" >/dev/null &
locker=$!
sleep 0.5
fcgi /v1/runs/run-1 >"$RESP_DIR/inflight" 2>&1 &
inflight=$!
sleep 0.3
kill -TERM "$pool"
sleep 0.3
fcgi /readyz >"$RESP_DIR/readyz"
grep -q '^Status: 503' "$RESP_DIR/readyz" || fail "readyz while draining: $(head -1 "$RESP_DIR/readyz")"
grep -q 'daemon_draining' "$RESP_DIR/readyz" || fail "readyz while draining is not daemon_draining"
wait "$inflight"
grep -qE '^Status: (200|404)' "$RESP_DIR/inflight" || fail "in-flight request did not complete: $(head -3 "$RESP_DIR/inflight")"
wait "$locker"
wait_until 10 eval '! kill -0 $pool 2>/dev/null' || fail "drained pool did not exit"
[ -e "$sock" ] && fail "drained pool left its socket"
true
