# Runs: submission, idempotency, queue positions, lists, events, cancel.
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
api POST /v1/sessions/$s/runs '{"content":"hello world","source_plugin":"cli","generation":{"model":"m1","max_output_tokens":100,"tool_choice":"auto"}}'
expect_status 202
expect_json ".status == \"queued\" and .kind == \"input\" and .session_id == \"$s\" and .queued_position == 1 and (.run_id | test(\"^run-[0-9]+$\"))"
expect_json '.request.text_preview == "hello world" and .request.source_plugin == "cli" and .request.model == "m1"'
for k in run_id session_id agent_id kind status submitted_at_ms updated_at_ms queued_position request \
    input_attachments pending_approval_ids pending_approvals pending_question_ids pending_questions \
    outputs deliveries; do
    expect_json "has(\"$k\")"
done
first=$(jqr .run_id)
api POST /v1/sessions/$s/runs '{"content":"second"}' -H 'Idempotency-Key: key-1'
expect_status 202
expect_json '.queued_position == 2'
second=$(jqr .run_id)
before=$(row_counts)
api POST /v1/sessions/$s/runs '{"content":"second"}' -H 'Idempotency-Key: key-1'
expect_status 202
expect_json ".run_id == \"$second\""
api POST /v1/sessions/$s/runs '{"content":"second","idempotency_key":"key-1"}'
expect_json ".run_id == \"$second\""
api POST /v1/sessions/$s/runs '{"content":"different"}' -H 'Idempotency-Key: key-1'
expect_problem 409 idempotency_conflict idempotency
api POST /v1/sessions/$s/runs '{"content":"x","idempotency_key":"a"}' -H 'Idempotency-Key: b'
expect_problem 400 invalid_idempotency_key idempotency
[ "$(row_counts)" = "$before" ] || fail "idempotent replays and conflicts wrote rows"
api POST /v1/sessions/nope-$s/runs '{"content":"x"}'
expect_problem 404 session_not_found

api GET /v1/runs/$first
expect_status 200
expect_json ".run_id == \"$first\" and .status == \"queued\""
api GET /v1/runs/run-999999999
expect_problem 404 run_not_found runs

api GET /v1/runs/$second/events
expect_status 200
expect_json '[.[].event.type] == ["accepted", "queued"] and .[1].event.position == 2 and (.[0].timestamp_ms | type) == "number"'
[ "$($PSQL -Atc "SELECT count(*) FROM events WHERE run_id = '$second' AND name = 'run_updated' AND data->'run'->>'status' = 'queued'")" = 1 ] ||
    fail "submission publishes one run_updated"

# Lists and filters.
api GET "/v1/runs?session_id=$s"
expect_json "type == \"array\" and [.[].run_id] == [\"$first\", \"$second\"]"
api GET "/v1/runs?session_id=$s&order=desc&page=true&limit=1"
expect_json ".items[0].run_id == \"$second\" and .pagination.has_more == true and .pagination.order == \"desc\" and .pagination.total_count == 2"
api GET "/v1/runs?session_id=$s&order=desc&cursor=$(jqr .pagination.next_cursor)"
expect_json "[.items[].run_id] == [\"$first\"]"
api GET "/v1/runs?session_id=$s&status=cancelled"
expect_json 'length == 0'
api GET "/v1/runs?status=bogus"
expect_problem 400 bad_request
api GET "/v1/runs?order=sideways"
expect_problem 400 invalid_order pagination
api GET "/v1/runs?limit=-1"
expect_problem 400 invalid_limit pagination

# Cancel: queued -> cancelled, the next run moves up, cancelling again changes nothing.
api POST /v1/runs/$first/cancel ''
expect_status 200
expect_json '.status == "cancelled" and .queued_position == null'
api GET /v1/runs/$second
expect_json '.queued_position == 1'
events=$($PSQL -Atc "SELECT count(*) FROM events")
api POST /v1/runs/$first/cancel '{}'
expect_status 200
expect_json '.status == "cancelled"'
[ "$($PSQL -Atc "SELECT count(*) FROM events")" = "$events" ] || fail "re-cancel published an event"
# A completed run is returned unchanged.
$PSQL -c "UPDATE runs SET status = 'running' WHERE run_id = '$second'; UPDATE runs SET status = 'completed' WHERE run_id = '$second'"
api POST /v1/runs/$second/cancel ''
expect_status 200
expect_json '.status == "completed"'
api POST /v1/runs/run-999999999/cancel ''
expect_problem 404 run_not_found

# The database refuses a transition the contract forbids, whoever tries it.
$PSQL -c "UPDATE runs SET status = 'queued' WHERE run_id = '$second'" 2>/dev/null &&
    fail "completed -> queued was accepted"
true
