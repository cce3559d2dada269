# Near its descriptor limit the relay refuses newcomers with a 503 problem
# instead of failing the streams it serves. A second relay with a small
# limit, reached directly on its socket (nginx routes to the stack's own two).
sock=$RESP_DIR/relay.sock
(
    ulimit -n 48
    exec "$BIN_DIR/kheish-sse-relay" --listen "$sock" --state-root "$STATE_ROOT" \
        --bind 127.0.0.1:1 --http-admin-token-file "$STATE_ROOT/tokens/admin-token" \
        --database-url "host=$STATE_ROOT/pg port=$KHEISH_PG_PORT dbname=kheish user=kheish_app"
) 2>"$RESP_DIR/relay.log" &
relay=$!
wait_until 5 test -S "$sock" || fail "second relay did not start"

# 48 descriptors, 32 kept in reserve, a few for the relay itself: some of
# 30 streams get in, the rest are told 503 at once.
for i in $(seq 1 30); do
    curl -sN --max-time 8 -o "$RESP_DIR/s$i" -w '%{http_code}\n' --unix-socket "$sock" \
        -H "Authorization: Bearer $ADMIN_TOKEN" "http://relay/v1/events/stream" \
        >"$RESP_DIR/code$i" &
    sleep 0.02
done
sleep 1
api POST /v1/sessions "{\"session_id\":\"$(uid)\"}"
wait $(jobs -p | grep -v "^$relay$") 2>/dev/null
ok=$(cat "$RESP_DIR"/code* | grep -c '^200$')
busy=$(cat "$RESP_DIR"/code* | grep -c '^503$')
echo "fd budget: $ok streams served, $busy refused"
[ "$ok" -ge 1 ] && [ "$busy" -ge 1 ] && [ $((ok + busy)) = 30 ] || fail "expected 200s then 503s: $ok + $busy of 30"
grep -l service_unavailable "$RESP_DIR"/s* >/dev/null || fail "the 503 is not a problem document"
# Every stream that got in saw the event produced while the others were refused.
for i in $(seq 1 30); do
    [ "$(cat "$RESP_DIR/code$i")" = 200 ] || continue
    grep -q '^event: session_state_changed' "$RESP_DIR/s$i" || fail "stream $i missed the event"
done
kill "$relay"
wait "$relay" 2>/dev/null
true
