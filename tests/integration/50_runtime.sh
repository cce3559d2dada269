# Runtime settings: revisions, expected_revision, rollback, runtime_updated events.
api GET /v1/runtime
expect_status 200
for k in workspace_root state_root default_route routes route_diagnostics permission_mode system_prompt \
    hooks debug_level debug_capture mcp skills run_memory_policy tool_runtime_limits subagent_policy \
    scheduler_policy config; do
    expect_json "has(\"$k\")"
done
expect_json '.config.persisted == true and .config.history_limit == 100'
rev=$(jqr .config.revision)
mode=$(jqr .permission_mode)
events=$($PSQL -Atc "SELECT count(*) FROM events WHERE name = 'runtime_updated'")

api POST /v1/runtime/permission-mode "{\"mode\":\"dontAsk\",\"expected_revision\":$rev}"
expect_status 200
expect_json ".permission_mode == \"dontAsk\" and .config.revision == $((rev + 1))"
api POST /v1/runtime/permission-mode "{\"mode\":\"plan\",\"expected_revision\":$rev}"
expect_problem 409 runtime_revision_conflict runtime
api POST /v1/runtime/permission-mode '{"mode":"yolo"}'
expect_problem 400 bad_request
api POST /v1/runtime/permission-mode '{"mode":"plan","expected_revision":"1"}'
expect_problem 400 bad_request
api POST /v1/runtime/permission-mode '{}'
expect_problem 400 bad_request
api POST /v1/runtime/debug-level '{"level":"redacted"}'
expect_status 200
expect_json ".debug_level == \"redacted\" and .config.revision == $((rev + 2))"
api POST /v1/runtime/debug-level '{"level":"verbose"}'
expect_problem 400 bad_request

api GET /v1/runtime/revisions
expect_status 200
expect_json ".revisions[0].revision == $((rev + 2)) and .revisions[0].setting == \"debug_level\" and .revisions[1].permission_mode == \"dontAsk\""
expect_json '[.revisions[].revision] == ([.revisions[].revision] | sort | reverse)'

# Rollback to the revision before the two changes: a new revision with the old settings.
api POST /v1/runtime/rollback "{\"target_revision\":$rev,\"expected_revision\":$((rev + 2))}"
expect_status 200
expect_json ".permission_mode == \"$mode\" and .debug_level == \"off\" and .config.revision == $((rev + 3))"
api GET /v1/runtime/revisions
expect_json ".revisions[0].setting == \"rollback\" and .revisions[0].rollback_of_revision == $rev"
api POST /v1/runtime/rollback '{"target_revision":999999}'
expect_problem 404 runtime_revision_not_found runtime
api POST /v1/runtime/rollback '{"expected_revision":1}'
[ "$rev" = 1 ] || expect_problem 409 runtime_revision_conflict

[ "$($PSQL -Atc "SELECT count(*) FROM events WHERE name = 'runtime_updated'")" = $((events + 3)) ] ||
    fail "each runtime change publishes one runtime_updated"
[ "$($PSQL -Atc "SELECT data->'runtime'->>'permission_mode' FROM events WHERE name = 'runtime_updated' ORDER BY id DESC LIMIT 1")" = "$mode" ] ||
    fail "runtime_updated carries the new runtime view"
