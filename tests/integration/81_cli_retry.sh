# Unknown outcomes (issue 11, point 4): every submission the CLI makes carries
# an Idempotency-Key, and one whose outcome is unknown (no worker: nginx
# answers 502) is sent again with the same key until it lands, once.
export KHEISH_DAEMON_URL
q() { $PSQL -Atc "$1"; }
s=$(uid)
kheish sessions create "$s" >/dev/null || fail "sessions create"

kheish --output json sessions submit "$s" "keyed" >"$RESP_DIR/run.json" || fail "submit: exit $?"
run=$(jq -r .run_id "$RESP_DIR/run.json")
q "SELECT idempotency_key FROM runs WHERE run_id = '$run'" | grep -Eqx 'cli-[0-9a-f]{32}' ||
    fail "the CLI's submission carries no generated key: $(q "SELECT idempotency_key FROM runs WHERE run_id = '$run'")"
kheish --output json sessions submit "$s" "keyed by hand" --idempotency-key mine >/dev/null &&
    kheish --output json sessions submit "$s" "keyed by hand" --idempotency-key mine >/dev/null ||
    fail "submit with --idempotency-key"
[ "$(q "SELECT count(*) FROM runs WHERE session_id = '$s' AND idempotency_key = 'mine'")" = 1 ] ||
    fail "the same key twice made two runs"

# No FastCGI process at all (the supervisor held still meanwhile): nginx
# answers 502 until the supervisor brings one back.
supervisor=$(cat "$STATE_ROOT/run/supervisor.pid")
fcgi_down() {
    kill -STOP "$supervisor"
    local master
    master=$(cat "$STATE_ROOT/run/fcgi.pid")
    kill -9 $(pgrep -P "$master") "$master"
    wait_until 5 eval '! pgrep -x kheish-fcgi -P "$master" >/dev/null && ! kill -0 "$master" 2>/dev/null'
}
fcgi_down
kheish --output json sessions submit "$s" "through an outage" >"$RESP_DIR/out.json" 2>"$RESP_DIR/out.err" &
cli=$!
sleep 1
kill -CONT "$supervisor"
wait $cli || fail "the submission through an outage failed: exit $? $(cat "$RESP_DIR/out.err")"
grep -q 'HTTP 502; sending it again with the same Idempotency-Key' "$RESP_DIR/out.err" ||
    fail "no retry note: $(cat "$RESP_DIR/out.err")"
[ "$(q "SELECT count(*) FROM runs WHERE session_id = '$s' AND payload->>'content' = 'through an outage'")" = 1 ] ||
    fail "the retried submission did not land exactly once"
jq -e '.status == "queued"' "$RESP_DIR/out.json" >/dev/null || fail "retried submission: $(cat "$RESP_DIR/out.json")"

# A read is never sent twice: it fails at once with the contract's exit code.
fcgi_down
kheish runs get "$run" >/dev/null 2>"$RESP_DIR/get.err"
rc=$?
kill -CONT "$supervisor"
[ $rc = 3 ] && ! grep -q 'sending it again' "$RESP_DIR/get.err" ||
    fail "a read through a 502 was retried or did not exit 3 (unreachable): exit $rc"
wait_until 10 kheish status >/dev/null 2>&1 || fail "the stack did not come back"
