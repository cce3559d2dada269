# /v1/sessions: create-or-reuse, list with both shapes, get, events, interrupt, end.
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\",\"persona_id\":\"p1\",\"thread_id\":\"th\"}"
expect_status 201
expect_json ".session_id == \"$s\" and .agent_id == \"agent-$s\" and .status == \"idle\" and .thread_id == \"th\""
expect_json '.snapshot.active_run_id == null and .snapshot.queued_run_ids == [] and .pending_approvals == 0'
for k in route_policy goal capability_scope effective_capability_scope credential_scope \
    effective_credential_scope persona operator tool_overrides input_contract output_contract \
    reply_targets outputs; do
    expect_json "has(\"$k\")"
done
[ "$($PSQL -Atc "SELECT count(*) FROM events WHERE name = 'session_state_changed' AND session_id = '$s'")" = 1 ] ||
    fail "creating a session publishes session_state_changed"

# Reuse keeps the session; a different persona is a conflict.
api POST /v1/sessions "{\"session_id\":\"$s\"}"
expect_status 201
expect_json ".session_id == \"$s\" and .persona.persona_id == \"p1\""
api POST /v1/sessions "{\"session_id\":\"$s\",\"persona_id\":\"other\"}"
expect_problem 409 session_conflict sessions

# Generated ids.
api POST /v1/sessions ''
expect_status 201
expect_json '.session_id | test("^session-[0-9a-f]{16}$")'

api GET /v1/sessions/$s
expect_status 200
expect_json ".session_id == \"$s\" and (.snapshot | type) == \"object\""
api GET /v1/sessions/nope-$s
expect_problem 404 session_not_found sessions

# Lists: bare array by default, envelope with page=true, cursor walk covers all.
for i in 1 2 3; do api POST /v1/sessions "{\"session_id\":\"$s-l$i\",\"persona_id\":\"pl-$s\"}"; done
api GET "/v1/sessions?persona_id=pl-$s"
expect_status 200
expect_json "type == \"array\" and length == 3 and .[0].session_id == \"$s-l1\""
api GET "/v1/sessions?persona_id=pl-$s&page=true&limit=2"
expect_json '.pagination.limit == 2 and .pagination.total_count == 3 and .pagination.has_more == true and .pagination.order == "asc" and (.items | length) == 2'
cursor=$(jqr .pagination.next_cursor)
api GET "/v1/sessions?persona_id=pl-$s&cursor=$cursor&limit=2"
expect_json ".items == [.items[0]] and .items[0].session_id == \"$s-l3\" and .pagination.has_more == false and .pagination.next_cursor == null"
api GET "/v1/sessions?limit=0"
expect_problem 400 invalid_limit pagination
api GET "/v1/sessions?cursor=not-a-cursor"
expect_problem 400 invalid_cursor pagination
# A time with a sign (strtoll takes "-0...0") is not a cursor we hand out.
api GET "/v1/sessions?cursor=$(printf -- '-0000000000000000000:%s' "$s-l3" | base64 -w0 | tr '+/' '-_' | tr -d =)"
expect_problem 400 invalid_cursor pagination
api GET "/v1/sessions?limit=1000"
expect_status 200
expect_json 'length <= 100'

# Events of a session: its run events, oldest first.
api POST /v1/sessions/$s/runs '{"content":"one"}'
run=$(jqr .run_id)
api GET /v1/sessions/$s/events
expect_status 200
expect_json ".session.session_id == \"$s\" and .daemon_outputs == [] and ([.run_events[].event.type] == [\"accepted\", \"queued\"]) and .run_events[0].run_id == \"$run\""

# Interrupt: nothing active yet, then an active run is interrupted.
api POST /v1/sessions/$s/interrupt ''
expect_status 200
expect_json '.interrupted == false and (.snapshot | type) == "object"'
$PSQL -c "UPDATE runs SET status = 'running' WHERE run_id = '$run'"
api POST /v1/sessions/$s/interrupt '{}'
expect_status 200
expect_json ".interrupted == true and .snapshot.active_run_id == null"
api GET /v1/runs/$run
expect_json '.status == "interrupted" and (.finished_at_ms | type) == "number"'
[ "$($PSQL -Atc "SELECT string_agg(name, ',' ORDER BY id) FROM events WHERE session_id = '$s' AND id > (SELECT max(id) FROM events WHERE run_id = '$run' AND data->'run'->>'status' = 'queued')")" = "run_updated,session_state_changed,interrupted" ] ||
    fail "interrupt publishes run_updated, session_state_changed, interrupted"

# End: queued runs are cancelled, the session refuses new runs, ending twice is a no-op.
api POST /v1/sessions/$s/runs '{"content":"queued"}'
queued=$(jqr .run_id)
api POST /v1/sessions/$s/end '{"reason":"done"}'
expect_status 200
expect_json '.ended_at_ms != null and .end_reason == "done" and .snapshot.ended == true'
api GET /v1/runs/$queued
expect_json '.status == "cancelled"'
api POST /v1/sessions/$s/runs '{"content":"late"}'
expect_problem 409 session_ended sessions
api POST /v1/sessions/$s/end '{"reason":"again"}'
expect_status 200
expect_json '.end_reason == "done"'
api POST /v1/sessions/nope-$s/end ''
expect_problem 404 session_not_found
