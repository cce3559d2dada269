# GET /v1/status: the contract's blocks, the write probes and the health rule;
# runner liveness (the stack has no runner: queued runs are an error, and
# `runs wait` says why they do not move).
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
expect_json '.approvals == true and ([.openapi, .flows, .playbooks, .sidechains, .mailboxes, .spawn_policies, .agent_supervisor_audit] | all(. == false)) and ([to_entries[] | select(.value | type == "boolean")] | length == 18)'

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

# Runner liveness (issue 13, point 4). The stack has no runner: queued runs
# (this test's, and those earlier tests left) are an error that says so, and
# the queue's lag says why.
expect_json '.runners.live_count == 0 and .runners.live == [] and .runners.maintenance_lock_holder == null
    and .runners.live_window_ms == 15000'
expect_json ".runs.queued as \$n | [.health.warnings[] | select(.code == \"no_live_runner\")] | length == 1
    and .[0].severity == \"error\" and .[0].related_id == \"$old\" and (.[0].action | test(\"kheish up --routes-file\"))
    and .[0].message == (if \$n == 1 then \"1 run is queued and no runner is alive to claim it\"
                         else \"\\(\$n) runs are queued and no runner is alive to claim them\" end)"
expect_json 'any(.health.warnings[]; .code == "queued_run_lag" and (.message | endswith("; no runner is alive")))'
kheish status >"$RESP_DIR/status.txt" || fail "kheish status: exit $?"
grep -qE '^runners live +0$' "$RESP_DIR/status.txt" &&
    grep -qE '^error +no_live_runner +[0-9]+ runs? (is|are) queued and no runner is alive to claim (it|them) +start a runner' "$RESP_DIR/status.txt" &&
    grep -qx 'live runners: none' "$RESP_DIR/status.txt" || fail "kheish status: $(cat "$RESP_DIR/status.txt")"
# `runs wait` says so on stderr, once (the state does not change), and
# stdout stays empty until the run ends.
kheish runs wait "$old" --timeout-ms 2500 --poll-interval-ms 100 >"$RESP_DIR/wait.out" 2>"$RESP_DIR/wait.err"
[ $? = 7 ] || fail "runs wait of a run no runner claims: exit $?"
[ ! -s "$RESP_DIR/wait.out" ] || fail "runs wait wrote to stdout: $(cat "$RESP_DIR/wait.out")"
grep -q "^kheish: run $old is queued (position 1 in its session, for [0-9]* s); no runner is claiming runs (start one: kheish up --routes-file FILE" "$RESP_DIR/wait.err" &&
    [ "$(grep -c 'is queued' "$RESP_DIR/wait.err")" = 1 ] && [ "$(wc -l <"$RESP_DIR/wait.err")" = 2 ] &&
    grep -q "^kheish: run $old is still queued after [0-9]* ms" "$RESP_DIR/wait.err" ||
    fail "runs wait stderr: $(cat "$RESP_DIR/wait.err")"
# So does `sessions input --wait` (no --timeout-ms: ended from outside).
timeout 2.5 "$BIN_DIR/kheish" --output json sessions input "$s" "nobody runs me" --wait --poll-interval-ms 100 \
    >"$RESP_DIR/input.out" 2>"$RESP_DIR/input.err"
[ $? = 124 ] || fail "sessions input --wait without a runner ended by itself"
[ ! -s "$RESP_DIR/input.out" ] || fail "sessions input --wait wrote to stdout: $(cat "$RESP_DIR/input.out")"
grep -qE '^kheish: run run-[0-9]+ is queued \(position 2 in its session, for [0-9]+ s\); no runner is claiming runs' "$RESP_DIR/input.err" &&
    [ "$(wc -l <"$RESP_DIR/input.err")" = 1 ] || fail "sessions input --wait stderr: $(cat "$RESP_DIR/input.err")"
# A runner whose heartbeat is recent is live and listed; then the queued
# run is no error (only its lag, which says what the runners hold).
$PSQL -c "INSERT INTO runners VALUES ('kheish-runner@test:1', 'test', 1, 4, kheish_now_ms() - 5000, kheish_now_ms())"
api GET /v1/status
expect_json '.runners.live_count == 1 and .runners.live[0].runner_id == "kheish-runner@test:1"
    and .runners.live[0].host == "test" and .runners.live[0].pid == 1 and .runners.live[0].runs_held == 0
    and .runners.live[0].concurrency == 4 and .runners.live[0].last_heartbeat_at_ms > .runners.live[0].started_at_ms'
expect_json 'all(.health.warnings[]; .code != "no_live_runner")'
expect_json 'any(.health.warnings[]; .code == "queued_run_lag" and (.message | endswith("; 1 live runners hold 0 runs of their 4 slots")))'
kheish status | grep -qE '^kheish-runner@test:1 +test +1 +' || fail "kheish status lists no runner"
# ... until its heartbeat is older than the live window.
$PSQL -c "UPDATE runners SET last_heartbeat_at_ms = kheish_now_ms() - 16000"
api GET /v1/status
expect_json '.runners.live_count == 0 and any(.health.warnings[]; .code == "no_live_runner")'
$PSQL -c "DELETE FROM runners WHERE runner_id = 'kheish-runner@test:1'"
# Leave no warning behind for other tests (but the runs earlier tests left
# queued, which no runner takes).
$PSQL -c "DELETE FROM run_events WHERE session_id = '$s'; DELETE FROM runs WHERE session_id = '$s'"
api GET /v1/status
expect_json '.health.ok == (.runs.queued == 0)
    and ([.health.warnings[] | select(.severity != "info") | .code] - ["no_live_runner"]) == []'
