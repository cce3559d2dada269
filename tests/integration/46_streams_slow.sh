# A client that stops reading is cut at its queue cap (live_lag) instead of
# growing the relay; the relay's memory stays bounded and a reader of the same
# stream gets every event.
host=${KHEISH_DAEMON_URL#http://}
events=300 # of 64 KiB each: far more than nginx's and the kernel's buffers hold
lagged_logged() { cat "$STATE_ROOT"/logs/relay-*.log | grep -q '"event":"stream_lagged"'; }

# The stuck client sends its request through nginx and never reads; the
# relay that serves it is the one whose memory must stay bounded.
exec 7<>"/dev/tcp/${host%:*}/${host#*:}"
printf 'GET /v1/events/stream HTTP/1.1\r\nHost: kheish\r\nAuthorization: Bearer %s\r\n\r\n' \
    "$ADMIN_TOKEN" >&7
wait_until 5 relay_serving >/dev/null || fail "no relay serves the stuck client"
relay=$(cat "$STATE_ROOT/run/relay-$(relay_serving).pid")
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$relay/status"; }
curl -sN --max-time 40 -H "Authorization: Bearer $ADMIN_TOKEN" \
    "$KHEISH_DAEMON_URL/v1/events/stream" >"$RESP_DIR/reader" &
reader=$!
sleep 1
$PSQL -c "SELECT kheish_append_events(jsonb_build_array(jsonb_build_object('name', 'bulk',
            'data', jsonb_build_object('type', 'bulk', 'seq', g, 'pad', repeat('x', 65536)))),
          '[]'::jsonb) FROM generate_series(1, $events) g" >/dev/null

peak=0
got() { grep -c '^event: bulk$' "$RESP_DIR/reader"; }
for _ in $(seq 1 150); do
    r=$(rss_kb)
    [ "$r" -gt "$peak" ] && peak=$r
    [ "$(got)" -ge $events ] && lagged_logged && break
    sleep 0.2
done
[ "$(got)" = $events ] || fail "the reader got $(got) of $events events"
lagged_logged || fail "the stuck client was not cut"
# Bound: two clients' queues (1 MiB each) and a 256 KiB page, far under 64 MiB
# (not under ASan, whose quarantine keeps freed memory resident).
[ -n "${KHEISH_TEST_SANITIZED-}" ] || [ "$peak" -lt 65536 ] || fail "relay RSS peaked at $peak kB"
echo "relay RSS peak ${peak} kB"

# The stuck client's stream ends (the relay closed it) before all events.
timeout 10 cat <&7 >"$RESP_DIR/stuck"
exec 7<&-
stuck=$(grep -c '^event: bulk$' "$RESP_DIR/stuck")
[ "$stuck" -lt $events ] || fail "the stuck client got every event: it was never cut"
kill "$reader" 2>/dev/null
wait

# /v1/status counts the cut (relays report every 5 s) and warns.
lagged() {
    api GET /v1/status
    jq -e '.events.stream_lagged_event_count >= 1 and
        any(.health.warnings[]; .code == "event_stream_lagged")' "$BODY_FILE" >/dev/null
}
wait_until 8 lagged || fail "status does not show the lagged client: $(jq -c .events "$BODY_FILE")"
true
