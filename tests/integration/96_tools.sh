# Runs whose model calls tools (issue 15, points 1, 2, 3 and 7): the mock
# provider scripts the calls, the runner decides each with the permission
# engine under the runtime's mode, runs the allowed ones in the session's
# workspace, sends the results back, and records the turns, the calls and
# their permission audits; every tool call is a request and a response
# record in the signed ledger.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
tool_stack_up tools

# run_in SESSION TEXT: a run, waited for; prints its id (its view in $RESP_DIR/<id>.json).
run_in() {
    local run
    run=$("$K" --output json sessions input "$1" "$2" | jq -r .run_id)
    "$K" --output json runs wait "$run" --timeout-ms 30000 --poll-interval-ms 100 \
        >"$RESP_DIR/$run.json" || fail "runs wait $run: $(cat "$RESP_DIR/$run.json")"
    echo "$run"
}
view() { jq -e "$2" "$RESP_DIR/$1.json" >/dev/null || fail "$3: $(jq -c . "$RESP_DIR/$1.json")"; }

# bypassPermissions: a file written, read back, then the shell, then done.
"$K" runtime set-permission-mode bypass-permissions >/dev/null || fail "set-permission-mode"
s=tools-$(uid)
"$K" sessions create "$s" >/dev/null || fail "sessions create"
run=$(run_in "$s" '[[mock:call=write_file:{"path":"notes/a.txt","content":"hello tools"}]] [[mock@2:call=read_file:{"path":"notes/a.txt"}]] [[mock@3:call=bash:{"command":"cat notes/a.txt; echo key=$KHEISH_AUTH_STORE_MASTER_KEY; id -un; echo more >> notes/a.txt"}]] [[mock@4:text=done]]')
view "$run" '.status == "completed" and .outputs[0].content == "done"' "a run of three tool calls"
view "$run" '[.tool_calls[] | .name] == ["write_file", "read_file", "bash"]
    and all(.tool_calls[]; .decision == "allow" and .is_error == false and .result != null)' \
    "its tool calls"
view "$run" '.tool_calls[1].result.content == "hello tools"' "read_file's result"
view "$run" '(.tool_calls[2].result.stdout | test("hello tools")) and
    (.tool_calls[2].result.stdout | test("key=\n")) and (.tool_calls[2].result.stdout | test("root") | not)' \
    "bash: the file, no master key in its environment, not root"
# The file write_file made (as root) is the workspace owner's: bash, as the
# tool user, appended to it.
[ "$(cat "$STATE_ROOT/workspace/$s/notes/a.txt")" = "hello toolsmore" ] ||
    fail "the file is not in the session's workspace, or bash could not append to it: $(cat "$STATE_ROOT/workspace/$s/notes/a.txt")"
[ "$(q "SELECT string_agg(turn || ':' || stop, ',' ORDER BY turn) FROM run_turns WHERE run_id = '$run'")" = \
    "1:tool_calls,2:tool_calls,3:tool_calls,4:end" ] || fail "run_turns: $(q "SELECT * FROM run_turns WHERE run_id = '$run'")"
# Every call: a permission audit, and a request and a response record in the
# ledger, after the provider's, in order; the ledger verifies.
api GET "/v1/sessions/$s/permission-audits"
expect_status 200
expect_json '[.audits[] | .tool_name] == ["write_file", "read_file", "bash"]
    and all(.audits[]; .decision == "allow" and .effective_mode == "bypassPermissions")'
"$K" --output json runs external-actions "$run" >"$RESP_DIR/ea.json" || fail "runs external-actions"
jq -e '[.[] | select(.kind == "tool") | .phase + ":" + .target] ==
    ["request:tool:write_file", "response:tool:write_file", "request:tool:read_file",
     "response:tool:read_file", "request:tool:bash", "response:tool:bash"]
    and ([.[] | select(.kind == "provider")] | length == 8)
    and all(.[] | select(.kind == "tool"); (.tool_call_id | length > 0)
        and (.request_digest | test("^sha256:")) and (.grant_id | startswith("permission:bypassPermissions:")))
    and all(.[] | select(.kind == "tool" and .phase == "response"); .outcome == "ok" and (.response_digest | test("^sha256:")))' \
    "$RESP_DIR/ea.json" >/dev/null || fail "the tool calls' ledger records: $(jq -c '[.[] | {phase, kind, target, outcome}]' "$RESP_DIR/ea.json")"
"$K" --output json audit verify --state-root "$STATE_ROOT" --run "$run" >"$RESP_DIR/verify.json" ||
    fail "audit verify: $(cat "$RESP_DIR/verify.json")"

# The other file tools, each through a real run: edit_file and apply_patch
# change the file, glob_search and grep_search find it.
run=$(run_in "$s" '[[mock:call=edit_file:{"path":"notes/a.txt","old_text":"hello","new_text":"howdy"}]] [[mock@2:call=apply_patch:{"hunks":[{"path":"notes/a.txt","old_text":"tools","new_text":"patches"}]}]] [[mock@3:call=glob_search:{"pattern":"**/*.txt"}]] [[mock@4:call=grep_search:{"pattern":"howdy"}]] [[mock@5:text=done]]')
view "$run" '.status == "completed" and [.tool_calls[] | .name] == ["edit_file", "apply_patch", "glob_search", "grep_search"]
    and all(.tool_calls[]; .decision == "allow" and .is_error == false)' "the other file tools"
view "$run" '.tool_calls[0].result.replacements == 1 and .tool_calls[1].result.file_count == 1
    and .tool_calls[2].result.paths == ["notes/a.txt"]
    and [.tool_calls[3].result.matches[] | .path] == ["notes/a.txt"]' "their results"
[ "$(cat "$STATE_ROOT/workspace/$s/notes/a.txt")" = "howdy patchesmore" ] ||
    fail "edit_file and apply_patch: $(cat "$STATE_ROOT/workspace/$s/notes/a.txt")"

# The default mode: a read runs, a path out of the workspace is refused,
# malformed arguments are answered (a call that needs an approval: see
# 97_approvals), and the run goes on to its answer.
"$K" runtime set-permission-mode default >/dev/null || fail "set-permission-mode default"
run=$(run_in "$s" '[[mock:call=read_file:{"path":"../../tokens/admin-token"}]] [[mock:call=read_file:{"path":]] [[mock:call=list_files:{}]]')
view "$run" '.status == "completed" and (.outputs[0].content | startswith("got: "))' "the default mode's run"
view "$run" '[.tool_calls[] | .decision] == ["allow", "allow", "allow"]
    and [.tool_calls[] | .is_error] == [true, true, false]' "the default mode's decisions"
view "$run" '(.tool_calls[0].result.error | test("workspace|outside|escape"))
    and (.tool_calls[1].result.error | test("arguments are not valid"))
    and (.tool_calls[1] | has("input") | not)' "the refusals"
"$K" --output json runs external-actions "$run" >"$RESP_DIR/ea2.json" || fail "runs external-actions"
# (Both run in the same turn: both requests, then both responses.)
jq -e '[.[] | select(.kind == "tool") | .phase + ":" + .target + ":" + (.outcome // "")] ==
    ["request:tool:read_file:", "request:tool:list_files:", "response:tool:read_file:error",
     "response:tool:list_files:ok"]' "$RESP_DIR/ea2.json" >/dev/null ||
    fail "only the calls that ran are in the ledger: $(jq -c '[.[] | {phase, target, outcome}]' "$RESP_DIR/ea2.json")"

# More tool runs at once than the runners have slots: every one completes,
# and no runner dies (a turn's report does not free its run's slot).
api GET /v1/status
restarts=$(jqr .supervisor.restart_count)
for i in $(seq 40); do "$K" sessions create "$s-many-$i" >/dev/null || fail "sessions create"; done
body=$(jq -cn '{content: "[[mock:call=list_files:{}]] [[mock@2:call=list_files:{}]] [[mock@3:text=ok]]"}')
seq 40 | xargs -P 40 -I{} curl -s -o /dev/null -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d "$body" "$KHEISH_DAEMON_URL/v1/sessions/$s-many-{}/runs"
all_ended() { [ "$(q "SELECT count(*) FROM runs WHERE session_id LIKE '$s-many-%'
                      AND status IN ('completed', 'failed', 'interrupted', 'cancelled')")" = 40 ]; }
wait_until 60 all_ended || fail "40 tool runs did not all end"
[ "$(q "SELECT count(*) FROM runs WHERE session_id LIKE '$s-many-%' AND status = 'completed'
        AND jsonb_array_length(outputs) = 1")" = 40 ] || fail "40 tool runs: not all completed"
api GET /v1/status
expect_json ".supervisor.restart_count == $restarts"

# plan mode denies the shell at once; dontAsk denies what would be asked.
"$K" runtime set-permission-mode plan >/dev/null || fail "set-permission-mode plan"
run=$(run_in "$s" '[[mock:call=bash:{"command":"touch planned"}]] [[mock@2:text=ok]]')
view "$run" '.status == "completed" and .tool_calls[0].decision == "deny"
    and (.tool_calls[0].result.error | startswith("permission denied"))' "plan mode and bash"
"$K" runtime set-permission-mode dont-ask >/dev/null || fail "set-permission-mode dont-ask"
run=$(run_in "$s" '[[mock:call=write_file:{"path":"c.txt","content":"x"}]] [[mock@2:text=ok]]')
view "$run" '.tool_calls[0].decision == "deny"' "dontAsk and write_file"
[ -e "$STATE_ROOT/workspace/$s/planned" ] || [ -e "$STATE_ROOT/workspace/$s/c.txt" ] &&
    fail "a denied call was made"
true
