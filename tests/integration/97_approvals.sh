# Approvals (issue 15, point 4; contract §8): a call the permission engine
# asks about makes its run wait, holding no runner; an operator allows
# (maybe with another input) or denies, per run or per session, in atomic
# batches with idempotency keys; the run resumes on whichever runner claims
# it, across a restart of the stack and a runner killed; an approval may
# expire, which the model is told apart from a denial.
K=$BIN_DIR/kheish
q() { $PSQL -Atc "$1"; }
tool_stack_up approvals
"$K" runtime set-permission-mode default >/dev/null || fail "set-permission-mode default"

# 1. A write waits for its approval: the run holds no runner, the views and
# /v1/status count it, the run event lists the request.
s=appr-$(uid)
run=$(approval_submit "$s" '[[mock:call=write_file:{"path":"a.txt","content":"from the model"}]] [[mock@2:text=written]]')
approval_waits "$run"
api GET "/v1/runs/$run"
expect_status 200
expect_json '.status == "waiting_for_approval" and .lease_owner == null
    and (.pending_approval_ids | length == 1) and .pending_approvals[0].id == .pending_approval_ids[0]
    and .pending_approvals[0].tool_name == "write_file"
    and .pending_approvals[0].input == {"path": "a.txt", "content": "from the model"}
    and .pending_approvals[0].tool_call_id == .tool_calls[0].tool_call_id
    and (.pending_approvals[0] | keys) == ["id", "input", "reason", "scope", "tool_call_id", "tool_name"]
    and .tool_calls[0].decision == "ask" and (.tool_calls[0] | has("result") | not)'
req=$(jqr '.pending_approval_ids[0]')
api GET "/v1/sessions/$s"
expect_json ".status == \"waiting_for_approval\" and .pending_approvals == 1
    and .snapshot.pending_approvals[0].id == \"$req\""
api GET /v1/status
expect_json '.runs.waiting_for_approval >= 1 and .runs.pending_approval_count >= 1
    and (.runs.oldest_waiting_run_age_ms | type == "number")'
api GET "/v1/runs/$run/events"
expect_json "[.[] | .event.type] | index(\"waiting_for_approval\") != null"
expect_json "[.[] | select(.event.type == \"waiting_for_approval\") | .event.request_ids] == [[\"$req\"]]"
[ -e "$STATE_ROOT/workspace/$s/a.txt" ] && fail "a write waiting for its approval was made"
# The streams carry the wait: the session's state with its pending count,
# the run's view with its pending approval.
for path in "/v1/sessions/$s/stream?cursor=0" "/v1/runs/$run/stream?cursor=0"; do
    curl -sN --max-time 1 -H "Authorization: Bearer $ADMIN_TOKEN" "$KHEISH_DAEMON_URL$path" \
        >"$RESP_DIR/sse.txt" || true
    sed -n 's/^data: //p' "$RESP_DIR/sse.txt" | jq -se "any(.[]; (.type == \"session_state_changed\"
        and .status == \"waiting_for_approval\" and .pending_approvals == 1)
        or (.type == \"run_updated\" and .run.pending_approval_ids == [\"$req\"]))" >/dev/null ||
        fail "$path does not show the wait: $(head -c 600 "$RESP_DIR/sse.txt")"
done
# The permission audit of the ask names the approval it opened.
api GET "/v1/sessions/$s/permission-audits"
expect_json ".audits[0].decision == \"ask\" and .audits[0].approval_request_id == \"$req\""

# The read-only token cannot resolve; bad bodies change nothing.
TOKEN=$READONLY_TOKEN api POST "/v1/runs/$run/approvals" "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\"}]}"
expect_status 403
for body in '{}' '{"resolutions":[]}' "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"maybe\"}]}" \
    "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\",\"updated_input\":\"x\"}]}" \
    "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\",\"extra\":1}]}"; do
    api POST "/v1/runs/$run/approvals" "$body"
    expect_status 400
done
[ "$(approvals_pending "$run")" = "$req" ] || fail "a refused body resolved something"

# Allowed with another input: the run resumes, the tool writes what the
# operator gave, the ledger's grant is the approval.
api POST "/v1/runs/$run/approvals" "$(jq -cn --arg r "$req" '{resolutions: [{request_id: $r,
    behavior: "allow", updated_input: {path: "a.txt", content: "from the operator"},
    justification: "checked"}]}')"
expect_status 202
expect_json ".run_id == \"$run\" and (.status == \"running\" or .status == \"completed\") and .pending_approval_ids == []"
run_completes "$run"
[ "$(cat "$STATE_ROOT/workspace/$s/a.txt")" = "from the operator" ] || fail "the approved write: $(cat "$STATE_ROOT/workspace/$s/a.txt")"
api GET "/v1/runs/$run"
expect_json '.outputs[0].content == "written" and .tool_calls[0].is_error == false'
api GET "/v1/runs/$run/events"
expect_json "[.[] | select(.event.type == \"approval_resolved\") | .event.resolutions[0]] ==
    [{\"request_id\": \"$req\", \"behavior\": \"allow\", \"justification\": \"checked\",
      \"updated_input\": {\"path\": \"a.txt\", \"content\": \"from the operator\"}}]"
"$K" --output json runs external-actions "$run" >"$RESP_DIR/ea.json" || fail "runs external-actions"
jq -e "[.[] | select(.kind == \"tool\") | .grant_id] == [\"approval:$req\", \"approval:$req\"]" \
    "$RESP_DIR/ea.json" >/dev/null || fail "the approved call's ledger records: $(jq -c '[.[] | {phase, target, grant_id}]' "$RESP_DIR/ea.json")"
api GET "/v1/sessions/$s/permission-audits"
expect_json "[.audits[] | .decision] == [\"ask\", \"allow\"] and .audits[1].justification == \"checked\"
    and .audits[1].approval_request_id == \"$req\""
[ "$(q "SELECT status FROM approvals WHERE request_id = '$req'")" = allowed ] || fail "the approval's row"

# 2. Denied through the session: the model is told, nothing is written; the
# answer is the SessionView.
s=appr-$(uid)
run=$(approval_submit "$s" '[[mock:call=bash:{"command":"touch denied"}]] [[mock@2:text=ok]]')
approval_waits "$run"
req=$(approvals_pending "$run")
api POST "/v1/sessions/$s/approvals" "$(jq -cn --arg r "$req" '{resolutions: [{request_id: $r, behavior: "deny", reason: "not today"}]}')"
expect_status 200
expect_json ".session_id == \"$s\" and (.snapshot | has(\"pending_approvals\"))"
run_completes "$run"
api GET "/v1/runs/$run"
expect_json '.tool_calls[0].is_error == true and (.tool_calls[0].result.error | test("denied")) and (.tool_calls[0].result.error | test("not today"))'
[ -e "$STATE_ROOT/workspace/$s/denied" ] && fail "a denied command ran"
# Not waiting any more: 409; unknown run: 404.
api POST "/v1/runs/$run/approvals" "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\"}]}"
expect_status 409
expect_json '.domain == "approvals" and .code == "approval_state_conflict"'
api POST "/v1/runs/run-999999999/approvals" "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\"}]}"
expect_status 404
api POST "/v1/sessions/$s/approval-runs" "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\"}]}"
expect_status 409

# 3. Two calls asked in one turn: batches are atomic, partial batches keep
# the rest pending, idempotency keys replay or conflict.
s=appr-$(uid)
approval_pair "$s"
ids=$r1,$r2
api POST "/v1/runs/$run/approvals" "{\"resolutions\":[{\"request_id\":\"$r1\",\"behavior\":\"allow\"},{\"request_id\":\"approval-0-0-0\",\"behavior\":\"allow\"}]}"
expect_status 404
expect_json '.code == "approval_request_not_found"'
api POST "/v1/runs/$run/approvals" "{\"resolutions\":[{\"request_id\":\"$r1\",\"behavior\":\"allow\"},{\"request_id\":\"$r1\",\"behavior\":\"deny\"}]}"
expect_status 400
expect_json '.code == "approval_request_duplicate"'
[ "$(approvals_pending "$run")" = "$ids" ] || fail "a refused batch resolved something: $(approvals_pending "$run")"
body="{\"resolutions\":[{\"request_id\":\"$r1\",\"behavior\":\"allow\"}]}"
# Two sends of one keyed batch at once (the run's row held meanwhile, so
# both queue behind it): both are answered 202, the second as the replay.
$PSQL -c "BEGIN; SELECT 1 FROM runs WHERE run_id = '$run' FOR UPDATE; SELECT pg_sleep(1); COMMIT" >/dev/null &
pids=$!
sleep 0.3
for i in 1 2; do
    curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
        -H 'Content-Type: application/json' -H "Idempotency-Key: k-$run" -d "$body" \
        "$KHEISH_DAEMON_URL/v1/runs/$run/approvals" >"$RESP_DIR/race$i" &
    pids="$pids $!"
done
wait $pids
[ "$(cat "$RESP_DIR/race1") $(cat "$RESP_DIR/race2")" = "202 202" ] ||
    fail "a keyed batch sent twice at once: $(cat "$RESP_DIR/race1") $(cat "$RESP_DIR/race2")"
api GET "/v1/runs/$run"
expect_json ".status == \"waiting_for_approval\" and .pending_approval_ids == [\"$r2\"]"
api POST "/v1/runs/$run/approvals" "$body" -H "Idempotency-Key: k-$run"
expect_status 202
expect_json ".run_id == \"$run\""
api POST "/v1/runs/$run/approvals" "{\"idempotency_key\":\"k-$run\",\"resolutions\":[{\"request_id\":\"$r2\",\"behavior\":\"allow\"}]}"
expect_status 409
expect_json '.domain == "idempotency" and .code == "idempotency_conflict"'
api POST "/v1/runs/$run/approvals" "{\"resolutions\":[{\"request_id\":\"$r1\",\"behavior\":\"deny\"},{\"request_id\":\"$r2\",\"behavior\":\"allow\"}]}"
expect_status 409
expect_json '.code == "approval_request_stale"'
[ "$(approvals_pending "$run")" = "$r2" ] || fail "a stale batch resolved something"
api POST "/v1/sessions/$s/approval-runs" "{\"resolutions\":[{\"request_id\":\"$r2\",\"behavior\":\"allow\"}]}"
expect_status 202
run_completes "$run"
[ "$(cat "$STATE_ROOT/workspace/$s/b.txt")$(cat "$STATE_ROOT/workspace/$s/c.txt")" = bc ] || fail "the two approved writes"
[ "$(q "SELECT count(*) FROM admin_actions WHERE run_id = '$run' AND action = 'approval_resolve'")" -ge 6 ] ||
    fail "the resolutions are not in admin_actions"

# 4. Expiry: recorded as expired, not denied; the model is told so.
s=appr-$(uid)
run=$(approval_submit "$s" '[[mock:call=write_file:{"path":"late.txt","content":"x"}]] [[mock@2:text=late]]')
approval_waits "$run"
req=$(approvals_pending "$run")
q "UPDATE approvals SET expires_at_ms = kheish_now_ms() - 1 WHERE request_id = '$req'" >/dev/null
run_completes "$run"
[ "$(q "SELECT status FROM approvals WHERE request_id = '$req'")" = expired ] || fail "not expired"
api GET "/v1/runs/$run"
expect_json '.tool_calls[0].is_error == true and (.tool_calls[0].result.error | test("in time"))'
api GET "/v1/runs/$run/events"
expect_json '[.[] | select(.event.type == "approval_resolved") | .event.resolutions[0].expired] == [true]'
[ -e "$STATE_ROOT/workspace/$s/late.txt" ] && fail "an expired approval's write was made"

# 5. A cancelled waiting run withdraws its approvals.
s=appr-$(uid)
run=$(approval_submit "$s" '[[mock:call=bash:{"command":"true"}]]')
approval_waits "$run"
"$K" runs cancel "$run" >/dev/null || fail "runs cancel"
[ "$(q "SELECT status FROM approvals WHERE run_id = '$run'")" = withdrawn ] || fail "not withdrawn"
api GET "/v1/sessions/$s"
expect_json '.pending_approvals == 0 and .snapshot.pending_approvals == []'

# 6. A waiting run survives the stack going down and up (with an expiry set
# this time) and a runner killed; it completes on another runner.
s=appr-$(uid)
run=$(approval_submit "$s" '[[mock:call=write_file:{"path":"kept.txt","content":"kept"}]] [[mock@2:text=survived]]')
approval_waits "$run"
req=$(approvals_pending "$run")
first=$(grep -h "\"run $run of" "$STATE_ROOT"/logs/runner*.log | jq -r .pid | head -1)
[ -n "$first" ] || fail "no runner claimed $run"
"$K" down --state-root "$STATE_ROOT" >/dev/null 2>&1 || fail "down"
KHEISH_APPROVAL_TTL_MS=600000 up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up again: $(tail -5 "$RESP_DIR/up.log")"
run_status_is "$run" waiting_for_approval || fail "after down and up: $(q "SELECT status FROM runs WHERE run_id = '$run'")"
pkill -9 -f kheish-runner || fail "no runner to kill"
api POST "/v1/runs/$run/approvals" "{\"resolutions\":[{\"request_id\":\"$req\",\"behavior\":\"allow\"}]}"
expect_status 202
run_completes "$run"
[ "$(cat "$STATE_ROOT/workspace/$s/kept.txt")" = kept ] || fail "the write after the restart"
# (Each runner logs to its own file: the pids that claimed the run, in any order.)
others=$(grep -h "\"run $run of" "$STATE_ROOT"/logs/runner*.log | jq -r .pid | sort -u | grep -vx "$first")
[ -n "$others" ] || fail "resumed by the runner that started it ($first): $(grep -h "$run" "$STATE_ROOT"/logs/*.log)"
# The runners started with KHEISH_APPROVAL_TTL_MS open approvals that expire.
s=appr-$(uid)
run=$(approval_submit "$s" '[[mock:call=bash:{"command":"true"}]]')
approval_waits "$run"
[ "$(q "SELECT expires_at_ms - created_at_ms FROM approvals WHERE run_id = '$run'")" = 600000 ] ||
    fail "KHEISH_APPROVAL_TTL_MS: $(q "SELECT created_at_ms, expires_at_ms FROM approvals WHERE run_id = '$run'")"
"$K" runs cancel "$run" >/dev/null
true
