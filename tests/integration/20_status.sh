# GET /v1/status: the contract's blocks, the write probes and the health rule.
api GET /v1/status
expect_status 200
expect_json '.ready == true and .status == "ready" and (.snapshot_at_ms | type) == "number" and (.process_id | type) == "number"'
expect_json '.capabilities.api_revision == 3 and .capabilities.cursor_pagination == true'
expect_json '(.sessions.total | type) == "number"'
expect_json '.runtime.permission_mode != null and .runtime.config.revision >= 1'
for k in total queued running waiting_for_approval waiting_for_user_question completed failed \
    interrupted cancelled pending_approval_count pending_question_count max_session_queue_depth \
    queued_run_lag_threshold_ms stale_non_terminal_run_threshold_ms stale_non_terminal_run_count \
    stale_non_terminal_run_ids; do
    expect_json ".runs | has(\"$k\")"
done
expect_json '.runs.queued_run_lag_threshold_ms == 1800000 and .runs.stale_non_terminal_run_threshold_ms == 1800000'
expect_json '.storage.ok == true and .storage.write_error_count == 0'
expect_json '[.storage.probes[].name] == ["database", "state_root", "workspace_root"]'
expect_json 'all(.storage.probes[]; .state == "ok" and .writable == true and .code == "write_probe_ok")'
expect_json '(.health.warnings | type) == "array" and (.health.ok == ([.health.warnings[] | select(.severity != "info")] | length == 0))'
ls -a "$STATE_ROOT" | grep -q kheish-status-write-check && fail "write probe left a file behind"

api GET /v1/capabilities
expect_status 200
expect_json '.control_plane_version == "0.1.0" and .api_revision == 3 and .route_capability_matrix_version == 2 and .sse_replay == true'
# Only what this build serves is claimed; every flag upstream defines is there.
expect_json '([.approvals, .openapi, .flows, .playbooks, .sidechains, .mailboxes, .spawn_policies, .agent_supervisor_audit] | all(. == false)) and ([to_entries[] | select(.value | type == "boolean")] | length == 18)'

# Warnings: a queued run older than the lag threshold, an idle live run, a failed run.
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
api POST /v1/sessions/$s/runs '{"content":"old"}'
old=$(jqr .run_id)
api POST /v1/sessions/$s/runs '{"content":"failing"}'
failing=$(jqr .run_id)
$PSQL -c "UPDATE runs SET submitted_at_ms = submitted_at_ms - 7200000, updated_at_ms = updated_at_ms - 7200000 WHERE run_id = '$old'"
$PSQL -c "UPDATE runs SET status = 'failed', error = 'test' WHERE run_id = '$failing'"
api GET /v1/status
expect_json ".runs.oldest_queued_run_id == \"$old\" and .runs.oldest_queued_run_age_ms > 1800000"
expect_json ".runs.stale_non_terminal_run_count >= 1 and (.runs.stale_non_terminal_run_ids | index(\"$old\") != null)"
expect_json '.runs.failed >= 1 and .health.ok == false'
expect_json "any(.health.warnings[]; .code == \"queued_run_lag\" and .severity == \"warning\" and .related_id == \"$old\")"
expect_json 'any(.health.warnings[]; .code == "stale_non_terminal_runs")'
expect_json 'any(.health.warnings[]; .code == "failed_runs")'
# Leave no warning behind for other tests.
$PSQL -c "DELETE FROM run_events WHERE session_id = '$s'; DELETE FROM runs WHERE session_id = '$s'"
api GET /v1/status
expect_json '.health.ok == true'
