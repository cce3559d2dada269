# Retention (sql/migrations/004, sql/functions/events.sql): event ids are dense, kheish_prune_events deletes the
# oldest events, and a stream whose cursor is older than what is retained
# starts with a stream_gap frame (reason replay_window) giving the exact
# number skipped and the id to resume after, for its own scope only.
q() { $PSQL -Atc "$1"; }
# frames OUT PATH: two seconds of a stream, one JSON line per frame
# {id, event, data}, heartbeats left out.
frames() {
    curl -sN --max-time 2 -H "Authorization: Bearer $ADMIN_TOKEN" "$KHEISH_DAEMON_URL$2" |
        awk '/^id: / {id = $2} /^event: / {ev = $2} /^data: / {d = substr($0, 7)}
             /^$/ && ev != "" && ev != "heartbeat" {printf "{\"id\":%s,\"event\":\"%s\",\"data\":%s}\n",
                 (id == "" ? "null" : "\"" id "\""), ev, d} /^$/ {id = ""; ev = ""}' >"$1"
}
first() { head -1 "$1"; }

# Dense ids: an append that rolls back takes no id.
before=$(q "SELECT last_id FROM event_ids")
q "BEGIN; SELECT kheish_append_events('[{\"name\":\"x\",\"data\":{}}]', '[]'); ROLLBACK;" >/dev/null
api POST /v1/sessions "{\"session_id\":\"$(uid)\"}"
[ "$(q "SELECT max(id) FROM events")" -gt "$before" ] || fail "no event for the new session"
[ "$(q "SELECT count(*) = max(id) - $before FROM events WHERE id > $before")" = t ] ||
    fail "ids after a rolled-back append are not dense: $(q "SELECT id FROM events WHERE id > $before")"

# Sessions: $old's events will be pruned, $kept's come after the prune.
old=$(uid) kept=$(uid)
api POST /v1/sessions "{\"session_id\":\"$old\"}"
api POST /v1/sessions/$old/runs '{"content":"soon gone"}'
oldrun=$(jqr .run_id)
api POST /v1/runs/$oldrun/cancel
old_first=$(q "SELECT min(id) FROM events WHERE session_id = '$old'")
old_last=$(q "SELECT max(id) FROM events WHERE session_id = '$old'")
old_count=$(q "SELECT count(*) FROM events WHERE session_id = '$old'")
oldrun_count=$(q "SELECT count(*) FROM events WHERE run_id = '$oldrun'")
[ "$old_count" -ge 3 ] || fail "expected several events of $old, got $old_count"
sleep 0.01
cut_ms=$(q "SELECT kheish_now_ms()")
sleep 0.01
api POST /v1/sessions "{\"session_id\":\"$kept\"}"

# The application role may prune (through the function only).
total=$(q "SELECT count(*) FROM events")
pruned=$(psql -X -q -h "$STATE_ROOT/pg" -p "$KHEISH_PG_PORT" -U kheish_app -d kheish -Atc \
    "SELECT kheish_prune_events($cut_ms)")
through=$(q "SELECT pruned_through FROM event_retention")
[ "$through" = "$old_last" ] || fail "pruned through $through, not $old's last event $old_last"
[ "$pruned" = "$through" ] && [ "$(q "SELECT count(*) FROM events")" = $((total - pruned)) ] ||
    fail "pruned $pruned of $total events, through $through"
[ "$(q "SELECT min(id) FROM events")" = $((through + 1)) ] || fail "what is retained is not a suffix"
psql -X -q -h "$STATE_ROOT/pg" -p "$KHEISH_PG_PORT" -U kheish_app -d kheish \
    -c "DELETE FROM events WHERE id = $((through + 1))" 2>/dev/null &&
    fail "the application role may delete events"

# Global stream, cursor 0: the gap first, exact, with the resume id; then
# the oldest retained event.
F=$RESP_DIR/f
frames "$F" "/v1/events/stream?cursor=0"
first "$F" | jq -e --arg t "$through" '.event == "stream_gap" and .id == $t and .data.type == "stream_gap"
    and .data.reason == "replay_window" and .data.scope == "global" and .data.skipped == ($t | tonumber)
    and .data.resume_after_id == $t and .data.skipped_is_estimate == false' >/dev/null ||
    fail "cursor 0: $(first "$F")"
[ "$(sed -n 2p "$F" | jq -r .id)" = $((through + 1)) ] || fail "after the gap: $(sed -n 2p "$F")"
# A cursor inside the pruned range, through Last-Event-ID: skipped counts
# from there.
c=$((through - 2))
curl -sN --max-time 2 -H "Authorization: Bearer $ADMIN_TOKEN" -H "Last-Event-ID: $c" \
    "$KHEISH_DAEMON_URL/v1/events/stream" | grep -m1 '^data: {"type":"stream_gap"' >"$F.h"
jq -e '.skipped == 2 and .resume_after_id == "'"$through"'"' <(sed 's/^data: //' "$F.h") >/dev/null ||
    fail "Last-Event-ID $c: $(cat "$F.h")"
# A cursor at the prune mark: nothing is missing, no gap.
frames "$F" "/v1/events/stream?cursor=$through"
grep -q stream_gap "$F" && fail "a gap at cursor $through: $(first "$F")"
[ "$(first "$F" | jq -r .id)" = $((through + 1)) ] || fail "cursor $through: $(first "$F")"

# Session and run streams: only their own losses. All of $old's events came
# after cursor 0 (exact); from inside its range the count is an upper bound.
frames "$F" "/v1/sessions/$old/stream?cursor=0"
first "$F" | jq -e --arg t "$through" --argjson n "$old_count" '.event == "stream_gap" and .id == $t
    and .data.scope == "session" and .data.skipped == $n and .data.skipped_is_estimate == false' >/dev/null ||
    fail "session $old, cursor 0: $(first "$F")"
frames "$F" "/v1/sessions/$old/stream?cursor=$old_first"
first "$F" | jq -e '.event == "stream_gap" and .data.skipped_is_estimate == true' >/dev/null ||
    fail "session $old, cursor $old_first: $(first "$F")"
frames "$F" "/v1/runs/$oldrun/stream?cursor=0"
first "$F" | jq -e --argjson n "$oldrun_count" '.data.scope == "run" and .data.skipped == $n' >/dev/null ||
    fail "run $oldrun, cursor 0: $(first "$F")"
frames "$F" "/v1/events/stream?cursor=0&session_id=$kept"
grep -q stream_gap "$F" && fail "session $kept lost nothing, yet: $(first "$F")"
[ "$(first "$F" | jq -r .data.session_id)" = "$kept" ] || fail "session $kept, cursor 0: $(first "$F")"

# /v1/status: the window and what was pruned, without counting rows.
api GET /v1/status
newest=$(q "SELECT max(id) FROM events")
expect_json ".events | .oldest_event_id == \"$((through + 1))\" and .newest_event_id == \"$newest\"
    and .retained_event_count == $((newest - through)) and .evicted_event_count >= $pruned
    and .pruned_through_event_id == \"$through\" and .evicted_session_scope_count >= 1
    and .evicted_run_scope_count >= 1"
# Relays count the gap frames they sent (reported every 5 s).
gaps_reported() {
    api GET /v1/status
    jq -e '.events.replay_gap_count >= 5' "$BODY_FILE" >/dev/null
}
wait_until 8 gaps_reported || fail "status does not count the gaps: $(jq -c .events "$BODY_FILE")"
true
