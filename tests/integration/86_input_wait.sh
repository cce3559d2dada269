# POST /v1/sessions/{id}/input never holds a FastCGI worker (issue 11, point
# 2): the worker commits the run and hands the wait to a relay through nginx's
# internal location. More waits than workers against a hung provider leave
# the probes, status and cancel answering; cancelling ends the waits with the
# SessionView; a client that leaves frees its wait on the relay at once.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
mock_provider_start
trap 'runners_stop; rm -rf "$RESP_DIR"' EXIT
cat >"$RESP_DIR/routes.toml" <<EOF
version = 1
default_route = "mock"

[routes.mock]
driver = "xai"
default_model = "grok-mock"
api_key = "xai-inline-key"
base_url = "$MOCK_URL/v1"
EOF
"$K" up --state-root "$STATE_ROOT" --port "${KHEISH_DAEMON_URL##*:}" \
    --routes-file "$RESP_DIR/routes.toml" >"$RESP_DIR/up" 2>&1 || fail "up with runners: $(tail -5 "$RESP_DIR/up")"

# input SESSION CONTENT OUT [curl args...]: POST /input in the background,
# the body into OUT and the status into OUT.status; sets WAITER (curl's pid).
input() {
    curl -sS -X POST -o "$3" -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'Content-Type: application/json' --data-binary "{\"content\":\"$2\"}" "${@:4}" \
        "$KHEISH_DAEMON_URL/v1/sessions/$1/input" >"$3.status" 2>/dev/null &
    WAITER=$!
}
# The descriptors the relays hold: one more for each wait they serve.
relay_fds() { cat "$STATE_ROOT"/run/relay-*.pid | while read -r p; do ls "/proc/$p/fd"; done | wc -l; }
new_session() {
    local s
    s=$(uid)
    api POST /v1/sessions "{\"session_id\":\"$s\"}"
    echo "$s"
}

# A run that completes: the answer is what GET /v1/sessions/{id} says after
# it, with the headers of any other API answer.
s=$(new_session)
api POST "/v1/sessions/$s/input" '{"content":"[[mock:text=done inline]]"}' -H 'Origin: http://localhost:5173'
expect_status 200
expect_json ".session_id == \"$s\" and .snapshot.status == \"idle\" and .outputs[-1].content == \"done inline\""
[ "$(header Content-Type)" = application/json ] || fail "Content-Type: $(header Content-Type)"
[ "$(header Access-Control-Allow-Origin)" = http://localhost:5173 ] || fail "no CORS headers: $(cat "$HEADER_FILE")"
[ "$(header Cache-Control)" = no-store ] || fail "Cache-Control: $(header Cache-Control)"
[ -n "$(header X-Request-Id)" ] || fail "no X-Request-Id"
[ -z "$(header X-Accel-Redirect)" ] || fail "the redirect reached the client"
[ "$(grep -ciE '^(content-type|cache-control|x-request-id):' "$HEADER_FILE")" = 3 ] ||
    fail "headers repeated: $(cat "$HEADER_FILE")"
cp "$BODY_FILE" "$RESP_DIR/input.json"
api GET "/v1/sessions/$s"
cmp -s "$BODY_FILE" "$RESP_DIR/input.json" || fail "the answer differs from GET: $(cat "$RESP_DIR/input.json")"
# The wait location is nginx's own: a client cannot ask for it.
api GET "/_kheish/input-wait/$s/x?wait_ms=0"
expect_problem 404 not_found
# Nor smuggle it through a stream location: nginx routes by the normalised
# path and passes the raw one on, and the relay takes a wait path only whole.
api GET "/_kheish/input-wait/$s/../../../v1/events/stream?wait_ms=0" '' --path-as-is --max-time 5
expect_problem 400 bad_request
expect_json '.detail == "invalid session or run id"'

# More waits than workers, each on a hung provider.
n=$((KHEISH_WORKERS + 2)) sessions=() waiters=()
for i in $(seq 1 $n); do
    sessions+=("$(new_session)")
    input "${sessions[-1]}" "[[mock:hang]] wait $i" "$RESP_DIR/wait-$i"
    waiters+=("$WAITER")
done
ids=$(printf "'%s'," "${sessions[@]}")
admitted() { [ "$(q "SELECT count(*) FROM runs WHERE session_id IN (${ids%,})")" = "$n" ]; }
wait_until 10 admitted || fail "not every /input was admitted"
for path in /healthz /readyz /v1/status; do
    api GET "$path" '' --max-time 5
    expect_status 200
done
for run in $(q "SELECT run_id FROM runs WHERE session_id IN (${ids%,})"); do
    api POST "/v1/runs/$run/cancel" '' --max-time 5
    expect_status 200
done
wait "${waiters[@]}"
for i in $(seq 1 $n); do
    [ "$(cat "$RESP_DIR/wait-$i.status")" = 200 ] || fail "wait $i: $(cat "$RESP_DIR/wait-$i.status") $(cat "$RESP_DIR/wait-$i")"
    jq -e --arg s "${sessions[i - 1]}" '.session_id == $s and .snapshot.status == "idle"
        and .snapshot.active_run_id == null and .snapshot.queued_run_ids == []' "$RESP_DIR/wait-$i" >/dev/null ||
        fail "wait $i did not end with the SessionView: $(cat "$RESP_DIR/wait-$i")"
done

# A client that leaves: its wait is gone from the relay at once, not when
# the run ends.
s=$(new_session)
fds=$(relay_fds)
input "$s" "[[mock:hang]] left alone" "$RESP_DIR/left"
more_fds() { [ "$(relay_fds)" -gt "$fds" ]; }
wait_until 10 more_fds || fail "no relay holds the wait"
kill "$WAITER"
same_fds() { [ "$(relay_fds)" -le "$fds" ]; }
wait_until 2 same_fds || fail "the relay kept the wait of a client that left: $(relay_fds) descriptors, $fds before"
[ "$(q "SELECT status FROM runs WHERE session_id = '$s'")" != cancelled ] || fail "the run was cancelled"
"$K" runs cancel "$(q "SELECT run_id FROM runs WHERE session_id = '$s'")" >/dev/null || fail "cancel"

# The relay itself: a wait needs the token its POST needed, and a wait whose
# time is up answers the SessionView as it stands.
relay=http://relay$(printf /_kheish/input-wait/%s/%s "$s" "$(q "SELECT run_id FROM runs WHERE session_id = '$s'")")
curl --unix-socket "$STATE_ROOT/run/relay-1.sock" -s -o "$RESP_DIR/direct" -w '%{http_code}' --max-time 5 "$relay?wait_ms=0" >"$RESP_DIR/direct.status"
[ "$(cat "$RESP_DIR/direct.status")" = 401 ] || fail "a wait without a token: $(cat "$RESP_DIR/direct.status")"
curl --unix-socket "$STATE_ROOT/run/relay-1.sock" -s -o "$RESP_DIR/direct" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $READONLY_TOKEN" \
    "$relay?wait_ms=0" >"$RESP_DIR/direct.status"
[ "$(cat "$RESP_DIR/direct.status")" = 403 ] || fail "a wait with a read-only token: $(cat "$RESP_DIR/direct.status")"
s2=$(new_session)
api POST "/v1/sessions/$s2/runs" '{"content":"[[mock:hang]] still running"}'
relay=http://relay/_kheish/input-wait/$s2/$(jqr .run_id)
curl --unix-socket "$STATE_ROOT/run/relay-1.sock" -s -o "$RESP_DIR/direct" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" \
    "$relay?wait_ms=300" >"$RESP_DIR/direct.status"
[ "$(cat "$RESP_DIR/direct.status")" = 200 ] || fail "a wait whose time is up: $(cat "$RESP_DIR/direct.status")"
jq -e --arg s "$s2" '.session_id == $s and .snapshot.status != "idle"' "$RESP_DIR/direct" >/dev/null ||
    fail "a wait whose time is up: $(cat "$RESP_DIR/direct")"
curl --unix-socket "$STATE_ROOT/run/relay-1.sock" -s -o "$RESP_DIR/direct" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer $ADMIN_TOKEN" \
    "$relay?wait_ms=-1" >"$RESP_DIR/direct.status"
[ "$(cat "$RESP_DIR/direct.status")" = 400 ] || fail "wait_ms=-1: $(cat "$RESP_DIR/direct.status")"
"$K" runs cancel "$(jqr .run_id)" >/dev/null || fail "cancel"
