# The CLI's approval verbs (upstream's `kheish approvals ...`, alias
# `approval`, and `sessions approve|deny`) against runs that wait for an
# approval, set up as 97_approvals.sh does: the pending approvals as
# PendingApprovalViews, one request shown, resolutions one at a time or all
# at once (one batch a run), --wait, idempotency keys, usage and transport
# errors as the contract's exit codes. Needs no waiting run of another file:
# the -all verbs resolve every waiting run of the stack.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
tool_stack_up cli-approvals
"$K" runtime set-permission-mode default >/dev/null || fail "set-permission-mode default"
# out JQ: the last CLI command's stdout satisfies the jq boolean expression.
out() { jq -e "$1" "$RESP_DIR/cli.out" >/dev/null 2>&1 || fail "jq '$1' is false on: $(head -c 600 "$RESP_DIR/cli.out")"; }
write_call() { printf '[[mock:call=write_file:{"path":"%s","content":"%s"}]]' "$1" "$2"; }
workspace() { cat "$STATE_ROOT/workspace/$1/$2" 2>/dev/null; }

# 1. Listing and showing: a waiting write's request as a PendingApprovalView.
s1=cliappr-$(uid)
run1=$(approval_submit "$s1" "$(write_call a.txt 'from the model') [[mock@2:text=written]]")
approval_waits "$run1"
req1=$(approvals_pending "$run1")
expect_exit 0 "$K" --output json approvals list
out "[.[] | select(.session_id == \"$s1\")] | length == 1"
out "[.[] | select(.session_id == \"$s1\")][0] | (keys == [\"agent_id\", \"request\", \"run_id\", \"session_id\"])
    and .run_id == \"$run1\" and (.agent_id | type == \"string\") and .request.id == \"$req1\"
    and (.request | keys) == [\"id\", \"input\", \"reason\", \"scope\", \"tool_call_id\", \"tool_name\"]
    and .request.tool_name == \"write_file\" and .request.input == {\"path\": \"a.txt\", \"content\": \"from the model\"}"
expect_exit 0 "$K" --output json approval list --session-id "$s1"
out "length == 1 and .[0].request.id == \"$req1\""
expect_exit 0 "$K" approvals list --session-id "$s1"
grep -q "^REQUEST" "$RESP_DIR/cli.out" && grep -q "$req1.*write_file" "$RESP_DIR/cli.out" ||
    fail "the pretty list: $(cat "$RESP_DIR/cli.out")"
expect_exit 0 "$K" --output json approvals show "$req1"
out ".request.id == \"$req1\" and .run_id == \"$run1\" and .session_id == \"$s1\""
expect_exit 5 "$K" approvals show approval-0-0-0
grep -q "unknown approval request approval-0-0-0" "$RESP_DIR/cli.err" || fail "show unknown: $(cat "$RESP_DIR/cli.err")"
expect_exit 5 "$K" approvals show "$req1" --session-id "other-$s1"

# Bad updated inputs are usage errors, sent nowhere.
expect_exit 2 "$K" approvals allow "$s1" "$req1" --updated-input-json '{"path":'
expect_exit 2 "$K" approvals allow "$s1" "$req1" --updated-input-json '["a.txt"]'
expect_exit 2 "$K" approvals allow "$s1" "$req1" --updated-input-json '{"n":1e-400}'
echo '{}' >"$RESP_DIR/input.json"
expect_exit 2 "$K" approvals allow "$s1" "$req1" --updated-input-json '{}' --updated-input-file "$RESP_DIR/input.json"
[ "$(approvals_pending "$run1")" = "$req1" ] || fail "a refused command resolved something: $(approvals_pending "$run1")"

# Allowed with the operator's input, waited for: the run completes, the
# write is the operator's.
echo '{"path":"a.txt","content":"from the operator"}' >"$RESP_DIR/input.json"
expect_exit 0 "$K" --output json approvals allow "$s1" "$req1" --updated-input-file "$RESP_DIR/input.json" \
    --justification checked --wait --poll-interval-ms 100
out ".run_id == \"$run1\" and .status == \"completed\" and .outputs[0].content == \"written\""
[ "$(workspace "$s1" a.txt)" = "from the operator" ] || fail "the approved write: $(workspace "$s1" a.txt)"
[ "$(q "SELECT status || ' ' || justification FROM approvals WHERE request_id = '$req1'")" = "allowed checked" ] ||
    fail "the approval's row: $(q "SELECT status, justification FROM approvals WHERE request_id = '$req1'")"

# 2. Denied with a reason: the model is told it.
s2=cliappr-$(uid)
run2=$(approval_submit "$s2" '[[mock:call=bash:{"command":"touch denied"}]] [[mock@2:text=ok]]')
approval_waits "$run2"
expect_exit 0 "$K" --output json approvals deny "$s2" "$(approvals_pending "$run2")" --reason "not today" --wait
out ".run_id == \"$run2\" and .status == \"completed\" and .tool_calls[0].is_error == true
    and (.tool_calls[0].result.error | test(\"not today\"))"
[ -e "$STATE_ROOT/workspace/$s2/denied" ] && fail "a denied command ran"

# 3. --wait ends where the run waits for an operator again: its next call.
s3=cliappr-$(uid)
run3=$(approval_submit "$s3" "$(write_call one.txt 1) [[mock@2:call=write_file:{\"path\":\"two.txt\",\"content\":\"2\"}]] [[mock@3:text=two]]")
approval_waits "$run3"
expect_exit 0 "$K" --output json approvals allow "$s3" "$(approvals_pending "$run3")" --wait
out ".run_id == \"$run3\" and .status == \"waiting_for_approval\" and (.pending_approvals[0].input.path == \"two.txt\")"
req3=$(approvals_pending "$run3")
expect_exit 0 "$K" --output json sessions approve "$s3" "$req3"
out ".run_id == \"$run3\" and .pending_approval_ids == []"
[ "$(q "SELECT status FROM approvals WHERE request_id = '$req3'")" = allowed ] || fail "sessions approve: not allowed"
run_completes "$run3"
[ "$(workspace "$s3" one.txt)$(workspace "$s3" two.txt)" = 12 ] || fail "sessions approve: the two writes"

# 4. allow-all (as approve-all) over two runs of two sessions, one with two
# requests: one batch a run, both complete.
s4=cliappr-$(uid) s5=cliappr-$(uid)
approval_pair "$s4"
run4=$run
run5=$(approval_submit "$s5" "$(write_call d.txt d) [[mock@2:text=d]]")
approval_waits "$run5"
[ "$(q "SELECT count(*) FROM runs WHERE status = 'waiting_for_approval'")" = 2 ] ||
    fail "other runs wait: $(q "SELECT run_id FROM runs WHERE status = 'waiting_for_approval'")"
expect_exit 0 "$K" --output json approvals approve-all --justification bulk --wait
out ".resolved_requests == 3 and .affected_sessions == 2
    and ([.runs[] | .run_id] | sort) == ([\"$run4\", \"$run5\"] | sort)
    and ([.runs[] | .status] | unique) == [\"completed\"]"
[ "$(workspace "$s4" b.txt)$(workspace "$s4" c.txt)$(workspace "$s5" d.txt)" = bcd ] || fail "allow-all: the three writes"
expect_exit 0 "$K" approvals allow-all
grep -q "resolved requests *0" "$RESP_DIR/cli.out" || fail "allow-all with nothing to resolve: $(cat "$RESP_DIR/cli.out")"

# 5. deny-all of one session leaves the other's; sessions deny.
s6=cliappr-$(uid) s7=cliappr-$(uid)
run6=$(approval_submit "$s6" '[[mock:call=bash:{"command":"touch six"}]] [[mock@2:text=six]]')
run7=$(approval_submit "$s7" '[[mock:call=bash:{"command":"touch seven"}]] [[mock@2:text=seven]]')
approval_waits "$run6"
approval_waits "$run7"
req7=$(approvals_pending "$run7")
expect_exit 0 "$K" --output json approvals deny-all --session-id "$s6" --reason "bulk no"
out ".resolved_requests == 1 and .affected_sessions == 1 and .runs[0].run_id == \"$run6\""
run_completes "$run6"
[ "$(approvals_pending "$run7")" = "$req7" ] || fail "deny-all --session-id resolved another session's request"
[ "$(q "SELECT status || ' ' || resolution_reason FROM approvals WHERE run_id = '$run6'")" = "denied bulk no" ] ||
    fail "deny-all's row: $(q "SELECT status, resolution_reason FROM approvals WHERE run_id = '$run6'")"
expect_exit 0 "$K" sessions deny "$s7" "$req7"
run_completes "$run7"
[ -e "$STATE_ROOT/workspace/$s6/six" ] || [ -e "$STATE_ROOT/workspace/$s7/seven" ] && fail "a denied command ran"

# 6. Idempotency keys: the same command again is replayed; the key with
# another request is a conflict (409: exit 6) that resolves nothing. Numbers
# of the operator's input are kept exactly.
s8=cliappr-$(uid)
approval_pair "$s8"
run8=$run
input='{"path":"b.txt","content":"b","n":9223372036854775807,"x":0.1}'
expect_exit 0 "$K" --output json approvals allow "$s8" "$r1" --updated-input-json "$input" --idempotency-key "k-$run8"
out ".run_id == \"$run8\" and .status == \"waiting_for_approval\" and .pending_approval_ids == [\"$r2\"]"
[ "$(q "SELECT updated_input->>'n' FROM approvals WHERE request_id = '$r1'")" = 9223372036854775807 ] ||
    fail "the input's integer: $(q "SELECT updated_input FROM approvals WHERE request_id = '$r1'")"
expect_exit 0 "$K" --output json approvals allow "$s8" "$r1" --updated-input-json "$input" --idempotency-key "k-$run8"
out ".run_id == \"$run8\""
expect_exit 6 "$K" approvals allow "$s8" "$r2" --idempotency-key "k-$run8"
grep -q "idempotency_conflict" "$RESP_DIR/cli.err" || fail "the conflict: $(cat "$RESP_DIR/cli.err")"
[ "$(approvals_pending "$run8")" = "$r2" ] || fail "a conflicting key resolved something: $(approvals_pending "$run8")"
expect_exit 0 "$K" approvals allow "$s8" "$r2"
run_completes "$run8"
# Nothing waits in the session any more: the API's conflict, exit 6.
expect_exit 6 "$K" approvals allow "$s8" "$r2"
grep -q "approval_state_conflict" "$RESP_DIR/cli.err" || fail "allow after the end: $(cat "$RESP_DIR/cli.err")"

# 7. No stack: the connection error's exit code (the trap starts it again).
"$K" down --state-root "$STATE_ROOT" >/dev/null 2>&1 || fail "down"
expect_exit 3 "$K" approvals list
expect_exit 3 "$K" approvals allow "$s8" "$r2"
expect_exit 3 "$K" approvals deny-all
true
