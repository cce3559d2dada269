# SSE streams under a real, independent client: the WHATWG `eventsource`
# package from npm (tests/eventsource/), through nginx, receives every event
# of a 10,000-event burst exactly once and in order although (A) the relay
# serving it is killed in the middle, and (B) PostgreSQL is restarted in the
# middle. The client reconnects by itself, with Last-Event-ID.
ES=tests/eventsource
TOTAL=10000

# The client's package, installed once (npm ci) while the lock file is newer
# than what node_modules holds.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed for the eventsource client"
    return 0
fi
if ! [ "$ES/node_modules/.package-lock.json" -nt "$ES/package-lock.json" ] ||
    ! [ -f "$ES/node_modules/eventsource/package.json" ]; then
    npm ci --prefix "$ES" --no-audit --no-fund --loglevel=error >"$RESP_DIR/npm.log" 2>&1 ||
        { fail "npm ci --prefix $ES failed: $(tail -5 "$RESP_DIR/npm.log")"; return 0; }
fi

PORT=${KHEISH_DAEMON_URL##*:}
up() { kheish up --state-root "$STATE_ROOT" --port "$PORT" >"$RESP_DIR/up.log" 2>&1; }
# The highest committed seq of burst $1.
committed() {
    $PSQL -Atc "SELECT coalesce(max((data->>'seq')::int), 0) FROM events
                WHERE name = 'burst' AND data->>'burst' = '$1'" 2>/dev/null
}
reached() { [ "$(committed "$1")" -ge "$2" ] 2>/dev/null; }
ms() { echo $(($(date +%s%N) / 1000000)); }

# start_client TAG: the client on the global stream, live (no cursor), in the
# background; returns once its stream is open.
start_client() {
    local tag=$1
    : >"$RESP_DIR/$tag.err"
    node "$ES/client.mjs" "$KHEISH_DAEMON_URL/v1/events/stream" \
        --token-file "$STATE_ROOT/tokens/admin-token" --burst "$tag" --expect $TOTAL \
        --ready-file "$RESP_DIR/$tag.ready" --timeout 35 \
        >"$RESP_DIR/$tag.json" 2>"$RESP_DIR/$tag.err" &
    CLIENT=$!
    wait_until 10 test -e "$RESP_DIR/$tag.ready" || fail "$tag: the client did not connect: $(cat "$RESP_DIR/$tag.err")"
}

# check_summary TAG: the client got burst TAG exactly once, in order, complete.
check_summary() {
    local tag=$1 s=$RESP_DIR/$1.json
    wait "$CLIENT" || fail "$tag: the client did not see burst_end: $(jq -c '{count, last_seq, reconnects,
        errors, failed, timed_out, requests: .requests[-5:]}' "$s" 2>/dev/null || cat "$s" "$RESP_DIR/$tag.err")"
    jq -e --argjson n $TOTAL '.count == $n and .unique == $n and .duplicates == 0 and .out_of_order == 0
        and .missing == 0 and .first_seq == 1 and .last_seq == $n and .ids_increasing
        and .gaps == [] and .failed == null and .final_seen != null' "$s" >/dev/null ||
        fail "$tag: not exactly once in order: $(jq -c '{count, unique, first_seq, last_seq, duplicates,
            duplicate_sample, out_of_order, out_of_order_sample, missing, missing_ranges, ids_increasing,
            gaps, failed, reconnects, errors, requests: .requests[-5:]}' "$s")"
    # And the database holds each seq exactly once (the producer's own rule).
    [ "$($PSQL -Atc "SELECT count(*) || ' ' || count(DISTINCT data->>'seq') FROM events
                      WHERE name = 'burst' AND data->>'burst' = '$tag'")" = "$TOTAL $TOTAL" ] ||
        fail "$tag: the events table does not hold each seq once"
}

# Case A: kill -9 the relay that serves the client in the middle of the
# burst. nginx sends the client's reconnect to the other relay, and the
# supervisor starts the dead one again.
tagA=$(uid)A
start_client "$tagA"
serving=$(relay_serving) || fail "A: no relay serves the client"
bash "$ES/burst.sh" "$tagA" $TOTAL 20 0.003 40 2>"$RESP_DIR/burstA.err" &
BURST=$!
wait_until 15 reached "$tagA" 3000 || fail "A: the burst did not reach seq 3000"
relay_pid=$(cat "$STATE_ROOT/run/relay-$serving.pid")
kill -9 "$relay_pid"
at_kill=$(committed "$tagA")
other=$((3 - serving))
reconnected() { [ "$(relay_streams $other)" -gt 0 ]; }
wait_until 5 reconnected || fail "A: the client did not reconnect to relay $other"
wait "$BURST" || fail "A: the burst did not complete: $(cat "$RESP_DIR/burstA.err")"
check_summary "$tagA"
[ "$at_kill" -lt $TOTAL ] || fail "A: the burst was over before the kill"
# It reconnected by itself, resending the id of the last event it had.
jq -e '.reconnects >= 1 and (.requests | length >= 2 and all(.status == 200)
       and all(.[1:][]; .last_event_id != null and (.last_event_id | test("^[0-9]+$"))))' \
    "$RESP_DIR/$tagA.json" >/dev/null ||
    fail "A: no reconnect with Last-Event-ID: $(jq -c '{reconnects, errors, requests}' "$RESP_DIR/$tagA.json")"
restarted() { [ "$(cat "$STATE_ROOT/run/relay-$serving.pid" 2>/dev/null)" != "$relay_pid" ] && [ -S "$STATE_ROOT/run/relay-$serving.sock" ]; }
wait_until 5 restarted || fail "A: relay $serving was not restarted"
echo "A: relay $serving killed at seq $at_kill; client: $(jq -c '{count, reconnects, errors, requests, elapsed_ms}' "$RESP_DIR/$tagA.json")"

# Case B: stop and start PostgreSQL in the middle of the burst.
tagB=$(uid)B
start_client "$tagB"
bash "$ES/burst.sh" "$tagB" $TOTAL 20 0.003 40 2>"$RESP_DIR/burstB.err" &
BURST=$!
wait_until 15 reached "$tagB" 3000 || fail "B: the burst did not reach seq 3000"
t_stop=$(ms)
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$STATE_ROOT/pg/data" -m fast -w stop >/dev/null ||
    fail "B: could not stop PostgreSQL"
# Down for longer than the relay's 1 s poll: it sees the outage.
sleep 1
up || fail "B: kheish up did not restart PostgreSQL: $(tail -5 "$RESP_DIR/up.log")"
t_up=$(ms)
wait "$BURST" || fail "B: the burst did not complete: $(cat "$RESP_DIR/burstB.err")"
check_summary "$tagB"
grep -q ' 0 resumes' "$RESP_DIR/burstB.err" && fail "B: the burst was over before PostgreSQL stopped"
echo "B: database down for $((t_up - t_stop)) ms; client: $(jq -c '{count, reconnects, opens, elapsed_ms}' "$RESP_DIR/$tagB.json"); $(cat "$RESP_DIR/burstB.err")"
