# SSE streams through nginx and kheish-sse-relay (contract §2): paths,
# filters, cursor rules, auth and CORS outcomes, heartbeats.
stream_fixture
# More event names: runtime_updated (global, no session) and interrupted.
api GET /v1/runtime
mode=$([ "$(jqr .permission_mode)" = plan ] && echo dontAsk || echo plan)
api POST /v1/runtime/permission-mode "{\"mode\":\"$mode\",\"expected_revision\":$(jqr .config.revision)}"
expect_status 200
$PSQL -c "UPDATE runs SET status = 'running' WHERE run_id = '$run'" >/dev/null
api POST /v1/sessions/$s1/interrupt '{}'
expect_json '.interrupted == true'
newest=$($PSQL -Atc "SELECT max(id) FROM events")

# stream OUT SECONDS PATH [curl args]: what a client receives in that time.
stream() {
    local out=$1 secs=$2 path=$3
    shift 3
    curl -sN --max-time "$secs" -D "$out.h" -H "Authorization: Bearer ${TOKEN-$ADMIN_TOKEN}" \
        "$@" "$KHEISH_DAEMON_URL$path" >"$out" 2>/dev/null
    true
}
ids() { awk '/^id: / {print $2}' "$1"; }
events() { awk '/^event: / && $2 != "heartbeat" {print $2}' "$1" | sort -u | tr '\n' ' '; }
# Every data line of a stream but heartbeats, as one JSON array.
datas() { sed -n 's/^data: //p' "$1" | jq -s 'map(select(.type != "heartbeat"))'; }
increasing() { ids "$1" | awk 'NR > 1 && $1 <= last {bad = 1} {last = $1} END {exit bad}'; }
F=$RESP_DIR/stream

# cursor=0 replays everything retained, in id order, with id: and event: lines.
stream "$F" 1 "/v1/events/stream?cursor=0"
grep -q '^HTTP/1.1 200' "$F.h" || fail "global stream: $(head -1 "$F.h")"
grep -qi '^content-type: text/event-stream' "$F.h" || fail "content type: $(grep -i content-type "$F.h")"
[ "$(ids "$F" | head -1)" = 1 ] || fail "cursor=0 does not start at the first event: $(ids "$F" | head -3)"
[ "$(ids "$F" | tail -1)" = "$newest" ] || fail "replay ends at $(ids "$F" | tail -1), not $newest"
increasing "$F" || fail "ids are not increasing"
awk '/^id: /{getline e; if (e !~ /^event: /) bad = 1} END {exit bad}' "$F" || fail "an id: line without event:"
datas "$F" | jq -e 'all(.[]; (.type | type) == "string")' >/dev/null || fail "data without a type"
[ "$(events "$F")" = "interrupted run_updated runtime_updated session_state_changed " ] ||
    fail "global stream events: $(events "$F")"

# The first frame (up to the first blank line) holds id: and event:, as
# upstream's clients and probes read it: on all three streams, from cursor=0
# and from Last-Event-ID. retry: rides in it, never in a frame of its own.
first_frame() { tr -d '\r' <"$1" | awk '/^$/ {exit} {print}'; }
for path in /v1/events/stream /v1/sessions/$s1/stream /v1/runs/$run/stream; do
    for how in "?cursor=0" "-H Last-Event-ID:1"; do
        case $how in \?*) stream "$F" 1 "$path$how" ;; *) stream "$F" 1 "$path" $how ;; esac
        frame=$(first_frame "$F")
        grep -q '^id: [0-9]' <<<"$frame" && grep -q '^event: ' <<<"$frame" ||
            fail "$path ($how): first frame without id: and event: [$frame]"
        grep -q '^retry: 1000$' <<<"$frame" || fail "$path ($how): no retry: in the first frame [$frame]"
    done
done
# HEAD: the stream's head and nothing after it.
curl -s --max-time 2 -I -H "Authorization: Bearer $ADMIN_TOKEN" "$KHEISH_DAEMON_URL/v1/events/stream" >"$F" || true
[ "$(grep -c '^HTTP/' "$F")" = 1 ] && grep -qi '^content-type: text/event-stream' "$F" ||
    fail "HEAD of a stream: $(cat "$F")"

# Filters: a session's stream, a run's, and the global stream's query filters.
stream "$F" 1 "/v1/sessions/$s1/stream?cursor=0"
datas "$F" | jq -e --arg s "$s1" 'length > 0 and all(.[]; (.session_id // .run.session_id) == $s)' >/dev/null ||
    fail "session stream holds other sessions' events"
[ "$(events "$F")" = "interrupted run_updated session_state_changed " ] || fail "session stream events: $(events "$F")"
stream "$F" 1 "/v1/runs/$run/stream?cursor=0"
datas "$F" | jq -e --arg r "$run" 'length > 0 and all(.[]; .type == "run_updated" and .run.run_id == $r)' >/dev/null ||
    fail "run stream: $(datas "$F" | jq -c 'map(.type)')"
stream "$F" 1 "/v1/events/stream?session_id=$s2&cursor=0"
datas "$F" | jq -e --arg s "$s2" 'length > 0 and all(.[]; (.session_id // .run.session_id) == $s)' >/dev/null ||
    fail "session_id filter"
stream "$F" 1 "/v1/events/stream?session_id=$s1&cursor=0"
[ "$(events "$F")" = "interrupted run_updated session_state_changed " ] || fail "session_id filter events: $(events "$F")"
stream "$F" 1 "/v1/events/stream?run_id=$run&session_id=$s2&cursor=0"
[ -z "$(ids "$F")" ] || fail "run of s1 and session s2 should match nothing"

# Cursor rules: Last-Event-ID, the larger of both, invalid, empty, too new.
stream "$F" 1 "/v1/events/stream" -H "Last-Event-ID: $((newest - 2))"
[ "$(ids "$F" | tr '\n' ' ')" = "$((newest - 1)) $newest " ] || fail "Last-Event-ID resume: $(ids "$F" | tr '\n' ' ')"
c=$((newest - 1))
stream "$F" 1 "/v1/events/stream?cursor=%3${c:0:1}${c:1}" -H "Last-Event-ID: 1" # percent-encoded
[ "$(ids "$F" | tr '\n' ' ')" = "$newest " ] || fail "the larger cursor should win: $(ids "$F" | tr '\n' ' ')"
stream "$F" 1 "/v1/events/stream?cursor=2" -H "Last-Event-ID: $((newest - 1))"
[ "$(ids "$F" | tr '\n' ' ')" = "$newest " ] || fail "the larger cursor (header) should win"
for bad in "?cursor=abc" "?cursor=-1" "?cursor=1.5" "?cursor=99999999999999999999999" "?cursor=" \
    "?cursor=1&cursor=2" "?cursor=%ZZ" "?cursor=$(printf '1%.0s' $(seq 40))"; do
    TOKEN=$ADMIN_TOKEN api GET "/v1/events/stream$bad"
    expect_problem 400 invalid_event_cursor events
done
api GET /v1/events/stream '' -H 'Last-Event-ID: x1'
expect_problem 400 invalid_event_cursor events
# Query parameters a stream does not read are refused, as on the API's routes.
for bad in "/v1/events/stream?foo=1" "/v1/events/stream?session_id=$s1&bogus" \
    "/v1/sessions/$s1/stream?run_id=$run" "/v1/runs/$run/stream?session_id=$s1"; do
    api GET "$bad"
    expect_problem 400 bad_request
done
# A NUL in the head (nginx refuses it itself, so straight to a relay): a
# 400 problem like the others, not a connection closed without an answer.
printf 'GET /v1/events/stream HTTP/1.1\r\nHost: kheish\r\nAuthorization: Bearer %s\r\nLast-Event-ID: 1\x002\r\n\r\n' \
    "$ADMIN_TOKEN" | relay_raw 1 >"$RESP_DIR/nul"
head -1 "$RESP_DIR/nul" | grep -q '^HTTP/1.1 400 ' && grep -qi '^Content-Type: application/problem+json' "$RESP_DIR/nul" &&
    tail -1 "$RESP_DIR/nul" | jq -e '.status == 400 and .code == "bad_request"' >/dev/null ||
    fail "a NUL in Last-Event-ID: $(head -c 300 "$RESP_DIR/nul")"

# No cursor (or an empty Last-Event-ID, or one past the tail): live only.
stream "$F.live" 3 "/v1/events/stream" -H "Last-Event-ID:" &
stream "$F.new" 3 "/v1/events/stream?cursor=999999999" &
sleep 1
api POST /v1/sessions/$s2/runs '{"content":"live"}'
wait
live=$($PSQL -Atc "SELECT max(id) FROM events")
[ "$(ids "$F.live" | tr '\n' ' ')" = "$live " ] || fail "live-only stream got: $(ids "$F.live" | tr '\n' ' ')"
[ "$(ids "$F.new" | tr '\n' ' ')" = "$live " ] || fail "a cursor past the tail is clamped: $(ids "$F.new" | tr '\n' ' ')"

# Auth and CORS, as on every /v1 route.
TOKEN= api GET /v1/events/stream
expect_problem 401 missing_token auth
[ "$(header WWW-Authenticate)" = 'Bearer realm="kheish-daemon"' ] || fail "no challenge"
TOKEN=wrong api GET /v1/runs/$run/stream '' --interface 127.0.45.1
expect_problem 401 invalid_token auth
TOKEN=$READONLY_TOKEN stream "$F" 1 "/v1/sessions/$s1/stream?cursor=0"
[ -n "$(ids "$F")" ] || fail "the read-only token may read streams"
api GET /v1/events/stream '' -H 'Origin: http://evil.example'
expect_problem 403 origin_not_allowed cors
stream "$F" 1 "/v1/events/stream" -H 'Origin: http://localhost:3000'
grep -qi '^access-control-allow-origin: http://localhost:3000' "$F.h" || fail "no CORS headers on the stream"
api OPTIONS /v1/events/stream '' -H 'Origin: http://localhost:3000' -H 'Access-Control-Request-Method: GET'
expect_status 204
api POST /v1/events/stream '{}'
expect_problem 405 method_not_allowed api

# The events block of /v1/status: the table's window and the relay's report.
count=$($PSQL -Atc "SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM events")
api GET /v1/status
expect_json ".events | .retained_event_count == ${count%% *} and .oldest_event_id == \"$(echo $count | cut -d' ' -f2)\"
    and .newest_event_id == \"${count##* }\" and .tail_event_id_cursor == \"${count##* }\"
    and (.relays | length) >= 1 and (.subscriber_count | type) == \"number\""

# Both relays behind nginx's upstream serve the same streams: four clients
# land on both, and each gets the same event.
for i in 1 2 3 4; do
    stream "$F.multi$i" 6 /v1/events/stream &
done
on_both() { [ "$(relay_streams 1)" -ge 1 ] && [ "$(relay_streams 2)" -ge 1 ] &&
    [ $(($(relay_streams 1) + $(relay_streams 2))) -ge 4 ]; }
wait_until 4 on_both || fail "the streams are not spread over both relays: $(relay_streams 1) + $(relay_streams 2)"
sm=$(uid)
api POST /v1/sessions "{\"session_id\":\"$sm\"}"
wait
for i in 1 2 3 4; do
    grep -q "$sm" "$F.multi$i" || fail "stream $i missed the event"
done

# Heartbeats: typed, without an id, every 10 s (RELAY_HEARTBEAT_MS), whatever
# the stream: each line is stamped with its arrival time. Meanwhile 8 streams
# opened together: each beats on its own schedule, so their first heartbeats
# are spread over the period, not one burst per relay.
stamped() { # FILE SECONDS PATH
    curl -sN --max-time "$2" -H "Authorization: Bearer $ADMIN_TOKEN" "$KHEISH_DAEMON_URL$3" |
        while IFS= read -r line; do echo "$(date +%s%3N) $line"; done >"$1"
}
for i in $(seq 8); do stamped "$F.beat$i" 12 /v1/events/stream & done
stamped "$F" 22 "/v1/runs/$run/stream"
wait
firsts=$(for i in $(seq 8); do awk '$3 == "heartbeat" {print $1; exit}' "$F.beat$i"; done | sort -n)
[ "$(echo "$firsts" | grep -c .)" = 8 ] || fail "not every stream had a heartbeat in 12 s: $firsts"
bursts=$(echo "$firsts" | awk 'NR == 1 || $1 - t > 50 {n++} {t = $1} END {print n}')
[ "$bursts" -ge 4 ] || fail "8 streams opened together beat in $bursts bursts: $(echo $firsts)"
grep -q ' event: heartbeat$' "$F" || fail "no heartbeat in 22 s"
grep -q ' data: {"type":"heartbeat"}$' "$F" || fail "heartbeat data"
grep -q ' id: ' "$F" && fail "a heartbeat carried an id"
beats=$(awk '$2 == "event:" && $3 == "heartbeat" {print $1}' "$F")
[ "$(echo "$beats" | wc -l)" -ge 2 ] || fail "expected 2 or 3 heartbeats in 22 s, got: $beats"
gaps=$(echo "$beats" | awk 'NR > 1 {print $1 - t} {t = $1}' | tr '\n' ' ')
for gap in $gaps; do
    [ "$gap" -ge 9700 ] && [ "$gap" -le 10300 ] || fail "heartbeats ${gaps}ms apart, not 10 s"
done
true
