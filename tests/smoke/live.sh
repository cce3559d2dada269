#!/usr/bin/env bash
# The live smoke (issue 13, point 6): the runbook's commands against a serve
# stack doing real runs on the mock provider. A run with input --wait and
# one waited for with runs wait (both answered by the mock, with the slot's
# key); the first frame of the global, session and run streams, raw and
# through the CLI; incident containment (permission mode dontAsk, debug level
# off) and back; interrupt of a hung run, which frees the provider call;
# cancel of a completed run is a no-op that exits 0; revoke-subject and
# revoke-slot with the contract's shapes and effects; the admin token
# rotated by mv. Nothing secret in the evidence directory.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/smoke/lib.sh

PROVIDER_KEY=sk-live-$(uid)$(uid)
smoke_up live "$PROVIDER_KEY" || exit 1

keep status status
expect_kept '.health.ok == true and .provider_readiness.active_route_ready == true' '{health, provider_readiness}'
keep doctor-routes doctor routes --check-auth --check-references --canary --canary-timeout-ms 20000
expect_kept '.ok == true and .diagnostics == [] and .canaries[0].status == "passed"' '{canaries, diagnostics}'

# Two real runs: one inline (input --wait), one detached and waited for.
S=ops-live
keep session-create sessions create "$S"
expect_kept '.session_id == "'"$S"'"'
keep input-wait sessions input "$S" '[[mock:text=OPS_LIVE_INLINE_OK]]' --wait
expect_kept '.status == "completed" and any(.outputs[]; .content == "OPS_LIVE_INLINE_OK")' '{status, outputs, error}'
keep run-submit sessions input "$S" 'Reply exactly. [[mock:text=OPS_LIVE_OK]]'
RUN=$(jq -r .run_id "$KEPT")
expect_kept '(.run_id | startswith("run-")) and (.status | IN("queued", "running", "completed"))'
keep run-wait runs wait "$RUN" --timeout-ms 20000
expect_kept '.status == "completed" and any(.outputs[]; .content == "OPS_LIVE_OK")' '{status, outputs, error}'
mock_requests provider-requests
expect_kept 'length >= 3 and all(.[]; .headers.authorization == "'"$(key_seen "$PROVIDER_KEY")"'" and .status == 200)' \
    '[.[] | {seq, status, authorization: .headers.authorization}]'

# The first frame of each stream replayed from cursor 0: raw through nginx,
# then with the CLI's stream verbs holding the read-only token.
sse_first_frame "$ADMIN" "/v1/events/stream?cursor=0" events-first
sse_first_frame "$ADMIN" "/v1/sessions/$S/stream?cursor=0" session-first
sse_first_frame "$ADMIN" "/v1/runs/$RUN/stream?cursor=0" run-first
grep -qx 'event: run_updated' "$EVIDENCE/run-first.sse" || fail "the run stream began with $(grep event: "$EVIDENCE/run-first.sse")"
for verb in "events stream" "sessions stream $S" "runs stream $RUN"; do
    # shellcheck disable=SC2086
    cli_as "$READONLY" $verb --cursor 0 --max-events 1 --timeout-ms 10000 >"$RESP_DIR/frame" ||
        fail "kheish $verb (read-only token): exit $?"
    jq -se 'length == 1 and (.[0].id | test("^[0-9]+$")) and .[0].event == .[0].data.type' \
        "$RESP_DIR/frame" >/dev/null || fail "kheish $verb: $(head -c 400 "$RESP_DIR/frame")"
done

# Incident containment: dontAsk and debug off, each a new revision and a
# runtime_updated event on the global stream; then the modes before.
keep runtime-before runtime get
MODE=$(jq -r .permission_mode "$KEPT") LEVEL=$(jq -r .debug_level "$KEPT") REV=$(jq .config.revision "$KEPT")
TAIL=$(cli status | jq -r .events.tail_event_id_cursor)
keep permission-dont-ask runtime set-permission-mode dont-ask
expect_kept '.permission_mode == "dontAsk" and .config.revision == '"$((REV + 1))" '{permission_mode, config}'
keep debug-off runtime set-debug-level off
expect_kept '.debug_level == "off" and .config.revision == '"$((REV + 2))" '{debug_level, config}'
cli events stream --cursor "$TAIL" --max-events 1 --timeout-ms 10000 >"$EVIDENCE/runtime-event.json"
jq -e '.event == "runtime_updated" and .data.runtime.permission_mode == "dontAsk" and (.id | length > 0)' \
    "$EVIDENCE/runtime-event.json" >/dev/null || fail "no runtime_updated frame: $(head -c 400 "$EVIDENCE/runtime-event.json")"
case $MODE in dontAsk) m=dont-ask ;; acceptEdits) m=accept-edits ;; bypassPermissions) m=bypass-permissions ;; *) m=$MODE ;; esac
keep permission-restore runtime set-permission-mode "$m"
expect_kept '.permission_mode == "'"$MODE"'"' .permission_mode
keep debug-restore runtime set-debug-level "$LEVEL"
expect_kept '.debug_level == "'"$LEVEL"'"' .debug_level
keep revisions runtime revisions
expect_kept '[.revisions[:4][].setting] == ["debug_level", "permission_mode", "debug_level", "permission_mode"]' \
    '[.revisions[] | {revision, setting}]'

# Interrupt: a run the provider never answers is stopped, and so is the
# provider call (the mock sees its connection closed).
mock_reset
hung_run hung-submit "$S"
keep interrupt sessions interrupt "$S"
expect_kept '.interrupted == true' '{interrupted}'
keep hung-wait runs wait "$HUNG" --timeout-ms 10000
expect_kept '.status == "interrupted"' '{status, error}'
released() { curl -sS "$MOCK_URL/_mock/requests" | jq -e 'length == 1 and .[0].outcome != null' >/dev/null; }
wait_until 10 released || fail "the provider call of the interrupted run is still open"
keep interrupt-idle sessions interrupt "$S"
expect_kept '.interrupted == false' '{interrupted}'

# Cancel of a completed run: a no-op that succeeds, with no new event.
cli runs events "$RUN" >"$EVIDENCE/run-events-before.json" || fail "runs events: exit $?"
keep cancel-completed runs cancel "$RUN"
expect_kept '.status == "completed" and .run_id == "'"$RUN"'"' '{run_id, status}'
cli runs events "$RUN" | cmp -s - "$EVIDENCE/run-events-before.json" || fail "cancel of a completed run changed its events"

# revoke-subject: the session's route leases end, and its next run is
# refused a credential (the provider never hears of it).
keep subject-before runtime auth subject "session:$S"
expect_kept '.revoked == false and (.active_route_lease_ids | length) >= 1' .
EPOCH=$(jq .current_epoch "$KEPT")
keep revoke-subject runtime auth revoke-subject "session:$S"
expect_kept '.subject_id == "session:'"$S"'" and .revoked == true and .current_epoch > '"$EPOCH"' and
    .active_route_lease_ids == [] and .active_connector_lease_ids == [] and .active_mcp_lease_ids == []' .
mock_reset
keep after-revoke-subject sessions input "$S" 'still there?' --wait
expect_kept '.status == "failed" and (.error | test("revoked"))' '{status, error}'
mock_requests provider-after-revoke-subject
expect_kept 'length == 0' '[.[] | .seq]'

# revoke-slot: every active lease of the slot ends; the slot stays, and
# the next run gets a fresh lease.
S2=ops-live-slot
keep session2 sessions create "$S2"
keep slot-run sessions input "$S2" '[[mock:text=before revoke-slot]]' --wait
expect_kept '.status == "completed"' '{status, error}'
keep subject2 runtime auth subject "session:$S2"
LEASE=$(jq -r '.active_route_lease_ids[0]' "$KEPT")
keep revoke-slot runtime auth revoke-slot openai.prod
expect_kept '(keys | sort) == ["revoked_leases", "slot_id"] and .slot_id == "openai.prod" and
    (.revoked_leases | type) == "number" and .revoked_leases >= 1'
keep lease-after-revoke-slot runtime auth lease "$LEASE"
expect_kept '.revoked == true and .active == false and .lease.id == "'"$LEASE"'" and
    (.lease | has("token_digest") | not)'
keep revoke-slot-again runtime auth revoke-slot openai.prod
expect_kept '. == {slot_id: "openai.prod", revoked_leases: 0}'
expect_exit 5 cli runtime auth revoke-slot no.such.slot
keep slot-run-after sessions input "$S2" '[[mock:text=after revoke-slot]]' --wait
expect_kept '.status == "completed" and any(.outputs[]; .content == "after revoke-slot")' '{status, error}'

# The admin token rotated by mv: the old one is refused (exit 4) from the
# next request, the new one works, the read-only one is untouched.
cp "$ADMIN" "$SECRETS/old-admin-token"
token_write "$ADMIN" admin-live-rotated
expect_exit 4 cli_as "$SECRETS/old-admin-token" status
keep status-rotated status
expect_kept '.control_plane.auth_effective_admin_token_available == true' .control_plane
expect_exit 0 cli_as "$READONLY" status
expect_exit 4 cli_as "$READONLY" sessions create not-with-read-only

smoke_serve_stop
smoke_end
