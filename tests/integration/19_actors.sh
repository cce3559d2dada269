# Who did what (issue 14, part 3; sql/migrations/014_admin_actions.sql):
# every API write records its actor in admin_actions (role, a fingerprint of
# the token that is not the token, the client address, the request id the
# client got as X-Request-Id, the user agent), the rows it changed link to
# it, the table is append-only; the worker's log line carries role and
# remote_addr, the relays log each stream's open and close, nginx's access
# log carries the same request id; no log holds a token.
# Needs: the stack of tests/run.sh (admin and read-only tokens, a master key
# for secrets); makes its own sessions, slot, subject and lease.
q() { $PSQL -Atc "$1"; }
UA="kheish-actors-test/1.0 ($(uid))"
FP=$(printf %s "$ADMIN_TOKEN" | sha256sum | cut -c1-16)
case "$ADMIN_TOKEN" in "$FP"*) fail "the fingerprint is a prefix of the token" ;; esac
[ ${#FP} = 16 ] || fail "fingerprint '$FP'"

# write METHOD PATH BODY: an API write with our user agent; sets RID (the
# X-Request-Id the client got) and ACT (the id of its admin_actions row,
# checked: exactly one, the admin role and the token's fingerprint, our
# address and user agent, the method and path).
write() {
    api "$1" "$2" "$3" -A "$UA"
    RID=$(header X-Request-Id)
    [ -n "$RID" ] || fail "$1 $2: no X-Request-Id"
    local rows
    rows=$(q "SELECT id || '|' || role || '|' || token_fingerprint || '|' || remote_addr || '|' ||
                     user_agent || '|' || method || '|' || path
              FROM admin_actions WHERE request_id = '$RID'")
    [ "$(echo "$rows" | grep -c .)" = 1 ] || fail "$1 $2: $(echo "$rows" | grep -c .) admin_actions rows for $RID"
    ACT=${rows%%|*}
    [ "${rows#*|}" = "admin|$FP|127.0.0.1|$UA|$1|$2" ] || fail "$1 $2: admin action '$rows'"
}
# expect_action ACTION SESSION RUN TARGET RESULT: the last write's action.
expect_action() {
    local got
    got=$(q "SELECT action || '|' || coalesce(session_id, '') || '|' || coalesce(run_id, '') || '|' ||
                    coalesce(target_id, '') || '|' || result FROM admin_actions WHERE id = ${ACT:-0}")
    [ "$got" = "$1|$2|$3|$4|$5" ] || fail "action of $RID: '$got', expected '$1|$2|$3|$4|$5'"
}
# expect_link SQL: the query (with :act for the action id) answers t.
expect_link() {
    [ "$(q "${1//:act/${ACT:-0}}")" = t ] || fail "link missing: $1 (action $ACT)"
}

s1=$(uid) s2=$(uid) slot=$(uid)
write POST /v1/sessions "{\"session_id\":\"$s1\"}"
expect_status 201
expect_action session_create "$s1" "" "" created
write POST /v1/sessions "{\"session_id\":\"$s1\"}"
expect_action session_create "$s1" "" "" reused

write POST /v1/sessions/$s1/runs '{"content":"who asked"}'
expect_status 202
run=$(jqr .run_id)
expect_action run_submit "$s1" "$run" "" ok
expect_link "SELECT count(*) = 2 AND bool_and(admin_action_id = :act) FROM run_events
             WHERE run_id = '$run' AND event->>'type' IN ('accepted', 'queued')"
write POST /v1/runs/$run/cancel ''
expect_status 200
expect_action run_cancel "$s1" "$run" "" ok
expect_link "SELECT admin_action_id = :act FROM run_events WHERE run_id = '$run'
             AND event->>'type' = 'cancelled'"
cancel_rid=$RID
nope=nope-$(uid)
write POST /v1/runs/$nope/cancel ''
expect_problem 404 run_not_found runs
expect_action run_cancel "" "$nope" "" run_not_found

write POST /v1/sessions/$s1/interrupt ''
expect_status 200
expect_action session_interrupt "$s1" "" "" ok

# Ending a session with a queued run: the session's ended_by and the run's
# cancelled event link to the end.
write POST /v1/sessions "{\"session_id\":\"$s2\"}"
write POST /v1/sessions/$s2/runs '{"content":"queued when it ends"}'
run2=$(jqr .run_id)
write POST /v1/sessions/$s2/end '{"reason":"actors test"}'
expect_status 200
expect_action session_end "$s2" "" "" ok
expect_link "SELECT ended_by = :act FROM sessions WHERE session_id = '$s2'"
expect_link "SELECT admin_action_id = :act FROM run_events WHERE run_id = '$run2'
             AND event->>'type' = 'cancelled'"
write POST /v1/sessions/$nope/end '{}'
expect_problem 404 session_not_found sessions
expect_action session_end "$nope" "" "" session_not_found

# Runtime: the revision links to its action; source keeps its value.
write POST /v1/runtime/debug-level '{"level":"redacted"}'
expect_status 200
rev=$(jqr .config.revision)
expect_action runtime_change "" "" "$rev" ok
expect_link "SELECT admin_action_id = :act AND source = 'runtime_api' FROM runtime_revisions
             WHERE revision = $rev"
write POST /v1/runtime/permission-mode '{"mode":"plan","expected_revision":1}'
expect_problem 409 runtime_revision_conflict runtime
expect_action runtime_change "" "" "" revision_conflict
# Back to the settings before (later tests expect debug_level off).
write POST /v1/runtime/rollback '{}'
expect_json ".config.revision == $((rev + 1))"
expect_action runtime_change "" "" "$((rev + 1))" ok
expect_link "SELECT admin_action_id = :act AND rollback_of_revision = $((rev - 1))
             FROM runtime_revisions WHERE revision = $((rev + 1))"

# Slots: each audit row links to its action, and so do the leases it revoked.
write POST /v1/runtime/secrets "{\"slot_id\":\"$slot\",\"provider\":\"anthropic\",\"mode\":\"api_key\",
    \"state\":{\"kind\":\"api_key\",\"api_key\":\"sk-actors-$(uid)\"}}"
expect_status 200
expect_action slot_put "" "" "$slot" ok
expect_link "SELECT admin_action_id = :act FROM auth_slot_audit WHERE slot_id = '$slot' AND action = 'set'"
lease() { # N: a live lease of session:$slot on the slot
    q "INSERT INTO auth_leases (lease_id, grant_id, subject_id, subject_epoch, audience, slot_id,
        token_digest, issued_at_ms, expires_at_ms) VALUES ('lease-$slot-$1', 'g', 'session:$slot',
        (SELECT epoch FROM auth_subjects WHERE subject_id = 'session:$slot'),
        '{\"type\":\"route\",\"route_id\":\"r\",\"slot_id\":\"$slot\"}', '$slot',
        sha256('$slot-$1'), 0, (extract(epoch FROM now()) * 1000 + 600000)::bigint)" >/dev/null
}
q "INSERT INTO auth_subjects (subject_id, updated_at_ms) VALUES ('session:$slot', 0)" >/dev/null
lease 1
write POST /v1/runtime/auth/slots/$slot/revoke ''
expect_json '.revoked_leases == 1'
expect_action slot_revoke_leases "" "" "$slot" ok
expect_link "SELECT admin_action_id = :act FROM auth_slot_audit WHERE slot_id = '$slot'
             AND action = 'revoke_leases'"
expect_link "SELECT revoked_by = :act FROM auth_leases WHERE lease_id = 'lease-$slot-1'"
lease 2
write POST /v1/runtime/auth/leases/lease-$slot-2/revoke ''
expect_status 200
expect_action lease_revoke "" "" "lease-$slot-2" ok
expect_link "SELECT revoked_by = :act FROM auth_leases WHERE lease_id = 'lease-$slot-2'"
lease 3
write POST /v1/runtime/auth/subjects/session:$slot/revoke ''
expect_status 200
expect_action subject_revoke "" "" "session:$slot" ok
expect_link "SELECT revoked_by = :act FROM auth_subjects WHERE subject_id = 'session:$slot'"
expect_link "SELECT revoked_by = :act FROM auth_leases WHERE lease_id = 'lease-$slot-3'"
write DELETE /v1/runtime/secrets/$slot ''
expect_status 200
expect_action slot_delete "" "" "$slot" ok
expect_link "SELECT admin_action_id = :act FROM auth_slot_audit WHERE slot_id = '$slot'
             AND action = 'delete'"

# A read records nothing; a request the gate refuses records nothing.
n=$(q "SELECT count(*) FROM admin_actions")
api GET /v1/sessions/$s1 '' -A "$UA"
TOKEN=$READONLY_TOKEN api POST /v1/sessions "{\"session_id\":\"$(uid)\"}"
expect_problem 403 insufficient_access auth
[ "$(q "SELECT count(*) FROM admin_actions")" = "$n" ] || fail "a read or a refused write was recorded"

# The user agent: control characters removed, at most 256 bytes.
long=$(printf 'x%.0s' $(seq 300))
api POST /v1/sessions "{\"session_id\":\"$(uid)\"}" -H "User-Agent: a$(printf '\t')b$long"
[ "$(q "SELECT user_agent = 'ab' || repeat('x', 254) FROM admin_actions
        WHERE request_id = '$(header X-Request-Id)'")" = t ] || fail "the user agent was not cleaned and cut"

# Append-only: the application role may not change or remove a row; the
# owner neither, unless it disables the triggers (the maintenance path).
# (Each in a transaction rolled back, should a guard ever let it through;
# TRUNCATE cascades, or the rows linking to it would refuse it first.)
for sql in "UPDATE admin_actions SET result = 'x'" "DELETE FROM admin_actions" \
    "TRUNCATE admin_actions CASCADE"; do
    out=$($PSQL -c "BEGIN; SET LOCAL ROLE kheish_app; $sql; ROLLBACK" 2>&1) && fail "kheish_app could: $sql"
    case "$out" in *"permission denied"*) ;; *) fail "kheish_app $sql: $out" ;; esac
    out=$($PSQL -c "BEGIN; $sql; ROLLBACK" 2>&1) && fail "the owner could: $sql"
    case "$out" in *"admin_actions is append-only: "[A-Z]*" refused"*) ;; *) fail "owner $sql: $out" ;; esac
done
$PSQL -c "BEGIN; SET LOCAL ROLE kheish_app; INSERT INTO admin_actions (at_ms, role, method, path,
          action, result) VALUES (0, 'admin', 'POST', '/x', 'run_cancel', 'ok'); ROLLBACK" >/dev/null 2>&1 ||
    fail "kheish_app may not INSERT"
[ "$($PSQL -Atc "SET ROLE kheish_auditor; SELECT count(*) > 0 FROM audit.admin_actions")" = t ] ||
    fail "kheish_auditor may not read admin_actions"
out=$($PSQL -Atc "BEGIN; ALTER TABLE admin_actions DISABLE TRIGGER admin_actions_append_only;
    UPDATE admin_actions SET user_agent = 'maintenance' WHERE id = $ACT RETURNING user_agent;
    ROLLBACK" 2>&1)
[ "$out" = maintenance ] || fail "the maintenance path: $out"
[ "$(q "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'admin_actions_%' AND tgenabled = 'O'")" = 2 ] ||
    fail "the guard triggers are not enabled"

# The worker's log line of a write: role and remote_addr, same request id.
FCGI_LOG=$STATE_ROOT/logs/fcgi.log
grep "\"request_id\":\"$cancel_rid\"" "$FCGI_LOG" | grep '"role":"admin"' | grep -q '"remote_addr":"127.0.0.1"' ||
    fail "no fcgi log line with role and remote_addr for $cancel_rid: $(grep "$cancel_rid" "$FCGI_LOG")"

# A relay logs a stream's open and close: request id, role, address, scope,
# cursor, and at close the events sent (s1's, replayed from 0: its creation,
# its run's submission and cancel).
headers=$RESP_DIR/stream.headers
curl -s -m 2 -D "$headers" -o "$RESP_DIR/stream.body" -H "Authorization: Bearer $READONLY_TOKEN" \
    "$KHEISH_DAEMON_URL/v1/sessions/$s1/stream?cursor=0"
srid=$(grep -i '^x-request-id:' "$headers" | cut -d' ' -f2 | tr -d '\r')
sent=$(grep -c '^id: ' "$RESP_DIR/stream.body")
[ -n "$srid" ] && [ "$sent" -ge 3 ] || fail "stream: request id '$srid', $sent events"
closed() { cat "$STATE_ROOT"/logs/relay-*.log | grep '"event":"stream_closed"' | grep -q "\"request_id\":\"$srid\""; }
wait_until 5 closed || fail "no stream_closed line for $srid"
opened=$(cat "$STATE_ROOT"/logs/relay-*.log | grep '"event":"stream_opened"' | grep "\"request_id\":\"$srid\"")
closed=$(cat "$STATE_ROOT"/logs/relay-*.log | grep '"event":"stream_closed"' | grep "\"request_id\":\"$srid\"")
for l in "$opened" "$closed"; do
    echo "$l" | jq -e --arg s "$s1" '.role == "read_only" and .remote_addr == "127.0.0.1"
        and .scope == "session" and .session_id == $s and .cursor == 0' >/dev/null ||
        fail "stream log line: $l"
done
echo "$closed" | jq -e --argjson n "$sent" '.events_sent == $n and .reason == "client_closed"
    and (.duration_ms | type) == "number" and .last_event_id > 0' >/dev/null ||
    fail "stream_closed: $closed ($sent events received)"

# nginx's access log carries the same request ids (it flushes every second).
ACCESS=$STATE_ROOT/nginx/logs/access.log
in_access() { grep -q "\"request_id\":\"$1\"" "$ACCESS" 2>/dev/null; }
wait_until 5 in_access "$srid" || fail "no access log line for the stream $srid"
in_access "$cancel_rid" || fail "no access log line for $cancel_rid"
grep "\"request_id\":\"$cancel_rid\"" "$ACCESS" | jq -e '.status == 200 and .method == "POST"' >/dev/null ||
    fail "access log line: $(grep "$cancel_rid" "$ACCESS")"

# No token in any log, nor in admin_actions.
for t in "$ADMIN_TOKEN" "$READONLY_TOKEN"; do
    grep -rlF -- "$t" "$STATE_ROOT/logs" "$STATE_ROOT/nginx/logs" && fail "a token is in a log"
    [ "$(q "SELECT count(*) FROM admin_actions WHERE strpos(admin_actions::text, '$t') > 0")" = 0 ] ||
        fail "a token is in admin_actions"
done
