# Tool permissions (issue 15; docs/permissions.md, docs/api.md): the rule
# document as a revisioned runtime setting (ours), the dry-run check and the
# matrix through the API and the CLI, the tool runtime limits, a session's
# permission audits, and who may call what. It leaves the runtime's mode,
# rules and limits as it found them.
export KHEISH_DAEMON_URL
u=$(uid)
sa=$u-a sb=$u-b
api POST /v1/sessions "{\"session_id\":\"$sa\"}"
expect_status 201
api POST /v1/sessions "{\"session_id\":\"$sb\"}"
expect_status 201
revisions() { $PSQL -Atc "SELECT count(*) FROM runtime_revisions"; }
updates() { $PSQL -Atc "SELECT count(*) FROM events WHERE name = 'runtime_updated'"; }

# --- the rules: set, get, revisions, rollback ---
api GET /v1/runtime/permission-rules
expect_status 200
expect_json '(.rules | type) == "array" and (.revision | type) == "number" and (.updated_at_ms | type) == "number" and (keys == ["revision", "rules", "updated_at_ms"])'
old_rules=$(jq -c .rules "$BODY_FILE")
rev=$(jqr .revision)
events=$(updates)
rules='[{"scope":"session","tool_name_pattern":"bash","behavior":"deny","reason":"no shell here","session_id":"'$sa'"},
        {"scope":"project","tool_name_pattern":"mcp__linear__*","behavior":"deny"},
        {"scope":"user","tool_name_pattern":"read_file","behavior":"ask","reason":"reads are reviewed"}]'
api POST /v1/runtime/permission-rules "{\"rules\":$rules,\"expected_revision\":$rev}"
expect_status 200
expect_json ".revision == $((rev + 1)) and (.rules | length) == 3 and .rules[0].session_id == \"$sa\""
api GET /v1/runtime/permission-rules
expect_json ".revision == $((rev + 1)) and .rules == $(jq -c . <<<"$rules")"
[ "$(updates)" = $((events + 1)) ] || fail "a rules change publishes one runtime_updated"
api GET /v1/runtime
expect_json 'has("permission_rules") | not' # the view's fields are the contract's
api GET /v1/runtime/revisions
expect_json ".revisions[0].setting == \"permission_rules\" and (.revisions[0].permission_rules | length) == 3"
api POST /v1/runtime/permission-rules "{\"rules\":[],\"expected_revision\":$rev}"
expect_problem 409 runtime_revision_conflict runtime

# A session rule naming a session decides for it alone.
check() { # BODY: POST /v1/runtime/permissions/check
    api POST /v1/runtime/permissions/check "$1"
    expect_status 200
}
check "{\"tool_name\":\"bash\",\"session_id\":\"$sa\",\"mode_override\":\"bypassPermissions\"}"
expect_json ".decision == \"deny\" and .base_decision == \"deny\" and .scope == \"session\" and .reason == \"no shell here\" and .matched_rule.session_id == \"$sa\""
check "{\"tool_name\":\"bash\",\"session_id\":\"$sb\",\"mode_override\":\"default\"}"
expect_json '.decision == "ask" and .matched_rule.tool_name_pattern == "bash" and (.matched_rule | has("session_id") | not)'
check '{"tool_name":"bash","mode_override":"default"}'
expect_json '.decision == "ask"'
check '{"tool_name":"mcp__linear__create_issue","mode_override":"bypassPermissions"}'
expect_json '.decision == "deny" and .scope == "project" and .matched_rule.tool_name_pattern == "mcp__linear__*"'
check '{"tool_name":"read_file","mode_override":"default"}'
expect_json '.decision == "ask" and .scope == "user" and .reason == "reads are reviewed" and .approval_required == true'

# Rollback restores the rules before, in a new revision.
api POST /v1/runtime/rollback "{\"target_revision\":$rev}"
expect_status 200
api GET /v1/runtime/permission-rules
expect_json ".revision == $((rev + 2)) and .rules == $old_rules"
api GET /v1/runtime/revisions
expect_json ".revisions[0].setting == \"rollback\" and .revisions[0].rollback_of_revision == $rev"

# Bad documents: 400 naming the rule and field, nothing changed.
n=$(revisions) counts=$(row_counts)
bad_rules() { # RULES DETAIL
    api POST /v1/runtime/permission-rules "{\"rules\":$1}"
    expect_problem 400 invalid_permission_rules runtime
    expect_json ".detail == \"$2\""
}
bad_rules '{}' 'rules: must be an array of rules'
bad_rules '[{"scope":"user","tool_name_pattern":"bash","behavior":"maybe"}]' \
    'rules[0].behavior: must be one of allow, deny, ask'
bad_rules '[{"scope":"user","tool_name_pattern":"bash","behavior":"ask"},{"scope":"team","tool_name_pattern":"x","behavior":"ask"}]' \
    'rules[1].scope: must be one of user, project, session'
bad_rules '[{"scope":"user","tool_name_pattern":"bash(git *)","behavior":"ask"}]' \
    'rules[0].tool_name_pattern: holds a character outside [A-Za-z0-9_.:-] (patterns match tool names, never tool input)'
bad_rules '[{"scope":"user","tool_name_pattern":"bash","behavior":"ask","session_id":"s"}]' \
    'rules[0].session_id: only a rule of the session scope names a session'
bad_rules '[{"scope":"user","tool_name_pattern":"bash","behavior":"ask","when":1}]' \
    "rules[0]: unknown field 'when' (the fields: scope, tool_name_pattern, behavior, reason, session_id)"
bad_rules "$(jq -nc '[range(257) | {scope: "user", tool_name_pattern: "bash", behavior: "ask"}]')" \
    'rules: more than 256 rules'
api POST /v1/runtime/permission-rules '{"expected_revision":1}'
expect_problem 400 bad_request
api POST /v1/runtime/permission-rules '{"rules":[],"extra":1}'
expect_problem 400 bad_request
[ "$(revisions)" = "$n" ] && [ "$(row_counts)" = "$counts" ] || fail "a refused rule document changed something"

# --- check: every mode x a tool of each class, with the exact fields ---
# tool: the decisions under default, acceptEdits, bypassPermissions, plan, dontAsk.
modes=(default acceptEdits bypassPermissions plan dontAsk)
cli_modes=(default accept-edits bypass-permissions plan dont-ask)
matrix=(
    "bash ask ask allow deny deny"
    "write_file ask allow allow deny deny"
    "mcp__github__get_me ask ask allow deny deny"
    "read_mcp_resource ask ask allow ask deny"
    "read_file allow allow allow allow allow"
    "ask_user_question allow allow allow allow allow"
    "exit_plan_mode ask ask allow ask deny"
    "emit_output allow allow allow deny allow"
)
fields='["approval_required", "audit_preview", "base_decision", "decision", "effective_mode", "hook_policy", "hooks_evaluated", "matched_rule", "matched_rule_origin", "mode_applied", "scope", "tool_call_id", "tool_name"]'
preview='["approval_request_id", "base_decision", "decision", "effective_mode", "justification", "matched_rule_origin", "matched_rule_pattern", "reason", "scope", "tool_call_id", "tool_name"]'
for row in "${matrix[@]}"; do
    read -r -a parts <<<"$row"
    tool=${parts[0]} want=("${parts[@]:1}")
    for i in 0 1 2 3 4; do
        check "{\"tool_name\":\"$tool\",\"tool_call_id\":\"call-$i\",\"mode_override\":\"${modes[$i]}\",\"input\":{\"command\":\"ls\"}}"
        expect_json ".decision == \"${want[$i]}\" and .effective_mode == \"${modes[$i]}\" and .tool_name == \"$tool\" and .tool_call_id == \"call-$i\""
        expect_json "(keys - [\"mode_effect\", \"reason\"]) == $fields and .hooks_evaluated == false and .hook_policy == \"not_executed_in_dry_run\""
        expect_json ".approval_required == (.decision == \"ask\") and .mode_applied == has(\"mode_effect\") and (.matched_rule | keys) == [\"behavior\", \"reason\", \"scope\", \"tool_name_pattern\"]"
        expect_json "(.audit_preview | keys - [\"mode_effect\"]) == $preview and .audit_preview.decision == .decision and .audit_preview.approval_request_id == null"
        expect_exit 0 kheish --output json runtime permissions check "$tool" --mode "${cli_modes[$i]}" --tool-call-id "cli-$i" --input-json '{"path":"x"}'
        jq -e ".decision == \"${want[$i]}\" and .tool_call_id == \"cli-$i\" and .effective_mode == \"${modes[$i]}\"" "$RESP_DIR/cli.out" >/dev/null ||
            fail "CLI check $tool --mode ${cli_modes[$i]}: $(cat "$RESP_DIR/cli.out")"
    done
done
check '{"tool_name":"bash"}'
expect_json '.tool_call_id == "dry-run"'
# Without mode_override the runtime's mode decides.
api POST /v1/runtime/permission-mode '{"mode":"plan"}'
expect_status 200
check '{"tool_name":"emit_output"}'
expect_json '.effective_mode == "plan" and .decision == "deny" and .mode_effect == "plan_mode_denied_non_whitelisted_tool"'
api POST /v1/runtime/rollback '{}'
expect_status 200

api POST /v1/runtime/permissions/check '{"tool_name":"bash","session_id":"no-such-session"}'
expect_problem 404 session_not_found sessions
api POST /v1/runtime/permissions/check '{"tool_name":"bash tool"}'
expect_problem 400 bad_request
api POST /v1/runtime/permissions/check '{"tool_name":"bash","mode_override":"yolo"}'
expect_problem 400 bad_request
api POST /v1/runtime/permissions/check '{"tool_name":"bash","mode":"plan"}'
expect_problem 400 bad_request
api POST /v1/runtime/permissions/check '{}'
expect_problem 400 bad_request
expect_exit 5 kheish runtime permissions check bash --session-id no-such-session
expect_exit 2 kheish runtime permissions check bash --mode yolo
expect_exit 2 kheish runtime permissions check

# --- the matrix: the built-in tools under every mode ---
api POST /v1/runtime/permissions/matrix '{}'
expect_status 200
expect_json '(has("session_id") | not) and [.modes[].mode] == ["default", "acceptEdits", "bypassPermissions", "plan", "dontAsk"]'
expect_json '[.modes[].tools | map(.tool_name)] | all(. == ["apply_patch", "ask_user_question", "bash", "edit_file", "emit_output", "glob_search", "grep_search", "list_files", "read_file", "write_file"])'
expect_json '.modes[0].tools[2].tool_call_id == "dry-run-Default-bash" and .modes[0].tools[2].decision == "ask" and .modes[3].tools[4].decision == "deny"'
api POST /v1/runtime/permissions/matrix "{\"session_id\":\"$sa\"}"
expect_status 200
expect_json ".session_id == \"$sa\" and (.modes | length) == 5"
api POST /v1/runtime/permissions/matrix '{"session_id":"no-such-session"}'
expect_problem 404 session_not_found sessions
expect_exit 0 kheish --output json runtime permissions matrix --session-id "$sa"
jq -e ".session_id == \"$sa\" and (.modes[1].tools | length) == 10" "$RESP_DIR/cli.out" >/dev/null || fail "CLI matrix"
expect_exit 5 kheish runtime permissions matrix --session-id no-such-session

# --- the rules through the CLI ---
api GET /v1/runtime/permission-rules
rev=$(jqr .revision)
expect_exit 0 kheish --output json runtime permissions rules set --json '[{"scope":"user","tool_name_pattern":"emit_output","behavior":"deny"}]' --expected-revision "$rev"
jq -e ".revision == $((rev + 1)) and .rules[0].tool_name_pattern == \"emit_output\"" "$RESP_DIR/cli.out" >/dev/null || fail "rules set --json: $(cat "$RESP_DIR/cli.out")"
echo '[{"scope":"project","tool_name_pattern":"*","behavior":"ask"}]' >"$RESP_DIR/rules.json"
expect_exit 0 kheish runtime permissions rules set --file "$RESP_DIR/rules.json"
expect_exit 0 kheish --output json runtime permissions rules get
jq -e ".revision == $((rev + 2)) and .rules[0].tool_name_pattern == \"*\"" "$RESP_DIR/cli.out" >/dev/null || fail "rules set --file"
expect_exit 0 kheish runtime permissions rules set --stdin <<<"$old_rules"
expect_exit 6 kheish runtime permissions rules set --json '[]' --expected-revision "$rev"
expect_exit 2 kheish runtime permissions rules set --json '[{"scope":"user"}]'
grep -q 'rules\[0\].behavior: required' "$RESP_DIR/cli.err" || fail "the CLI shows the field: $(cat "$RESP_DIR/cli.err")"
expect_exit 2 kheish runtime permissions rules set --json '['
expect_exit 2 kheish runtime permissions rules set
expect_exit 2 kheish runtime permissions rules set --json '[]' --stdin
api GET /v1/runtime/permission-rules
expect_json ".rules == $old_rules"

# --- tool limits ---
api GET /v1/runtime/tool-limits
expect_status 200
expect_json 'keys == (["max_calls_per_turn", "max_cumulative_output_bytes", "max_cumulative_result_envelope_bytes", "max_input_bytes", "max_output_bytes", "max_parallel_tools", "max_result_envelope_bytes", "max_sandbox", "max_timeout_ms"])'
old_limits=$(jq -c . "$BODY_FILE")
new_limits=$(jq -c '.max_parallel_tools = 3 | .max_timeout_ms = 90000 | .max_sandbox = "read_only"' <<<"$old_limits")
n=$(revisions)
api POST /v1/runtime/tool-limits "{\"limits\":$new_limits,\"expected_revision\":$(($(revisions)))}"
expect_status 200
expect_json ".tool_runtime_limits == $new_limits and .config.revision == $((n + 1))"
api GET /v1/runtime/tool-limits
expect_json ". == $new_limits"
api GET /v1/runtime/revisions
expect_json '.revisions[0].setting == "tool_runtime_limits"'
n=$(revisions)
bad_limits() { # BODY DETAIL-PATTERN
    api POST /v1/runtime/tool-limits "$1"
    expect_problem 400 invalid_tool_runtime_limits runtime
    expect_json ".detail | test(\"$2\")"
}
bad_limits "{\"limits\":$(jq -c '.max_parallel_tools = 0' <<<"$old_limits")}" "^limits: field 'max_parallel_tools' must be between 1 and"
bad_limits "{\"limits\":$(jq -c '.max_input_bytes = -5' <<<"$old_limits")}" "max_input_bytes"
bad_limits "{\"limits\":$(jq -c '.max_timeout_ms = 999999999999' <<<"$old_limits")}" "max_timeout_ms"
bad_limits "{\"limits\":$(jq -c '.max_calls_per_turn = 1.5' <<<"$old_limits")}" "max_calls_per_turn"
bad_limits "{\"limits\":$(jq -c 'del(.max_output_bytes)' <<<"$old_limits")}" "'max_output_bytes' is required"
bad_limits "{\"limits\":$(jq -c '.max_sandbox = "root"' <<<"$old_limits")}" "max_sandbox"
bad_limits "{\"limits\":$(jq -c '.max_turns = 5' <<<"$old_limits")}" "unknown field 'max_turns'"
bad_limits '{"limits":[]}' "^limits: required"
bad_limits '{"expected_revision":3}' "^limits: required"
api POST /v1/runtime/tool-limits "{\"limits\":$old_limits,\"expected_revision\":1}"
[ "$n" = 1 ] || expect_problem 409 runtime_revision_conflict runtime
[ "$(revisions)" = "$n" ] || fail "a refused tool-limits change appended a revision"
expect_exit 0 kheish --output json runtime tool-limits set --json "$old_limits"
jq -e ".tool_runtime_limits == $old_limits" "$RESP_DIR/cli.out" >/dev/null || fail "tool-limits set"
expect_exit 0 kheish runtime tool-limits get
jq -e ". == $old_limits" "$RESP_DIR/cli.out" >/dev/null || fail "tool-limits get"
expect_exit 2 kheish runtime tool-limits set --json '{"max_parallel_tools":0}'
grep -q invalid_tool_runtime_limits "$RESP_DIR/cli.err" || fail "tool-limits set error: $(cat "$RESP_DIR/cli.err")"

# --- a session's permission audits ---
api GET "/v1/sessions/$sa/permission-audits"
expect_status 200
expect_json ". == {\"session_id\": \"$sa\", \"audits\": []}"
api GET /v1/sessions/no-such-session/permission-audits
expect_problem 404 session_not_found sessions
api GET "/v1/sessions/$sa/permission-audits?limit=0"
expect_problem 400 invalid_limit
# What the runner will append: the engine's record with its session and run.
check '{"tool_name":"bash","tool_call_id":"call-a1","mode_override":"dontAsk"}'
rec=$(jq -c ".audit_preview + {session_id: \"$sa\", run_id: null}" "$BODY_FILE")
check '{"tool_name":"write_file","tool_call_id":"call-a2","mode_override":"default"}'
rec2=$(jq -c ".audit_preview + {session_id: \"$sa\", run_id: \"run-1\", approval_request_id: \"approval-1\"}" "$BODY_FILE")
$PSQL -Atc "SELECT kheish_permission_audit_append('$rec'::jsonb), kheish_permission_audit_append('$rec2'::jsonb)" >/dev/null ||
    fail "kheish_permission_audit_append"
api GET "/v1/sessions/$sa/permission-audits"
expect_status 200
expect_json ".session_id == \"$sa\" and (.audits | length) == 2"
expect_json ".audits[0] == ($rec | del(.session_id, .run_id)) and .audits[0].mode_effect == \"dont_ask_denied_approval\""
expect_json '.audits[1].approval_request_id == "approval-1" and .audits[1].decision == "ask" and (.audits[1] | has("mode_effect") | not)'
api GET "/v1/sessions/$sa/permission-audits?limit=1"
expect_json '(.audits | length) == 1 and .audits[0].tool_call_id == "call-a2"'
api GET "/v1/sessions/$sb/permission-audits"
expect_json '.audits == []'
$PSQL -c "UPDATE permission_audits SET decision = 'allow'" >/dev/null 2>&1 && fail "permission_audits accepted an UPDATE"
$PSQL -c "DELETE FROM permission_audits" >/dev/null 2>&1 && fail "permission_audits accepted a DELETE"
$PSQL -c "SELECT kheish_permission_audit_append('{\"session_id\":\"x\"}')" >/dev/null 2>&1 && fail "an audit without its fields was appended"

# --- who may call what ---
ro() { TOKEN=$READONLY_TOKEN api "$@"; }
ro GET /v1/runtime/permission-rules
expect_status 200
ro GET /v1/runtime/tool-limits
expect_status 200
ro GET "/v1/sessions/$sa/permission-audits"
expect_status 200
ro POST /v1/runtime/permission-rules '{"rules":[]}'
expect_problem 403 insufficient_access auth
ro POST /v1/runtime/tool-limits "{\"limits\":$old_limits}"
expect_problem 403 insufficient_access auth
ro POST /v1/runtime/permissions/check '{"tool_name":"bash"}'
expect_problem 403 insufficient_access auth
ro POST /v1/runtime/permissions/matrix '{}'
expect_problem 403 insufficient_access auth
TOKEN= api GET /v1/runtime/permission-rules
expect_problem 401 missing_token auth
TOKEN= api POST /v1/runtime/permissions/check '{"tool_name":"bash"}'
expect_problem 401 missing_token auth
expect_exit 0 kheish --token "$READONLY_TOKEN" runtime permissions rules get
expect_exit 0 kheish --token "$READONLY_TOKEN" runtime tool-limits get
expect_exit 4 kheish --token "$READONLY_TOKEN" runtime permissions check bash
expect_exit 4 kheish --token "$READONLY_TOKEN" runtime permissions matrix
expect_exit 4 kheish --token "$READONLY_TOKEN" runtime permissions rules set --json '[]'
expect_exit 4 kheish --token "$READONLY_TOKEN" runtime tool-limits set --json "$old_limits"
expect_exit 4 kheish --token wrong-token runtime permissions rules get
