# Auth through nginx and every worker: token rotation, the host-wide failure
# rate limit, the audit ledger and its JSONL mirror, the control_plane status
# block, and the startup refusals. Failures come from 127.0.30.0/24 so other
# files' rate-limit buckets are untouched.
AUDIT=$STATE_ROOT/control-plane-auth/audit.jsonl
ADMIN_FILE=$STATE_ROOT/tokens/admin-token
RO_FILE=$STATE_ROOT/tokens/readonly-token
from() { echo --interface "127.0.30.$1"; }
rotate() { # FILE CONTENT: the operator's atomic replace
    printf '%s\n' "$2" >"$1.new" && install -m 600 "$1.new" "$1.next" && mv "$1.next" "$1" && rm "$1.new"
}

# --- the control_plane block
api GET /v1/status
expect_status 200
expect_json '.control_plane | .auth_enabled and .bind_is_loopback and (.bind_is_unspecified | not)
    and .read_only_token_enabled and .auth_effective_admin_token_available
    and .auth_effective_read_only_token_available and .auth_token_file_count == 2
    and .auth_token_file_error_count == 0 and (.auth_duplicate_token | not)
    and .cors_policy == "loopback" and .cors_allowed_origin_count == 0
    and (.externally_exposed_without_auth | not)
    and ([.auth_token_files[] | select(.readable and .token_loaded)] | length) == 2'
expect_json ".control_plane.bind_addr == \"${KHEISH_DAEMON_URL#http://}\" and .control_plane.base_url == \"$KHEISH_DAEMON_URL\""
expect_json '[.health.warnings[].code | select(startswith("control_plane"))] == []'

# --- rotation: after an atomic replace, every worker rejects the old admin
# token and accepts the new one from the next request on (the accepted
# requests name their worker: /v1/status carries its process_id).
old=$ADMIN_TOKEN
new=rotated-$(uid)
rotate "$ADMIN_FILE" "$new"
burst() { # TOKEN: 20 requests, 10 at a time (more than the 4 workers), "status pid" per line
    for i in 1 2; do
        for j in $(seq 1 10); do
            curl -s -H "Authorization: Bearer $1" -w '\n%{http_code}\n' "$KHEISH_DAEMON_URL/v1/status" |
                jq -Rn '[inputs] | "\(.[1]) \((.[0] | fromjson? | .process_id) // "-")"' -r &
        done
        wait
    done
}
burst "$new" >"$RESP_DIR/new"
burst "$old" >"$RESP_DIR/old"
[ "$(grep -c '^200 ' "$RESP_DIR/new")" = 20 ] || fail "new token: $(sort "$RESP_DIR/new" | uniq -c)"
[ "$(grep -c '^401 ' "$RESP_DIR/old")" = 20 ] || fail "old token: $(sort "$RESP_DIR/old" | uniq -c)"
pool=$(pgrep -P "$(cat "$STATE_ROOT/run/fcgi.pid")" | wc -l)
workers=$(awk '{print $2}' "$RESP_DIR/new" | sort -u | wc -l)
[ "$workers" = "$pool" ] || fail "the 20 requests reached $workers of the $pool workers"
ADMIN_TOKEN=$new

# --- rate limit: 60 failures per reason and address in 60 s, then 429 with
# Retry-After: 60 whichever worker answers; one transition line is audited.
fails() { # ADDRESS N: N wrong-token requests in parallel batches, codes on stdout
    local n=$2
    while [ "$n" -gt 0 ]; do
        for _ in $(seq 1 $((n < 10 ? n : 10))); do
            curl -s -o /dev/null -w '%{http_code}\n' --interface "127.0.30.$1" \
                -H "Authorization: Bearer wrong-$1" "$KHEISH_DAEMON_URL/v1/runs" &
        done
        wait
        n=$((n - 10))
    done
}
[ "$(fails 1 60 | sort | uniq -c | awk '{print $1, $2}')" = "60 401" ] || fail "the first 60 failures were not all 401"
TOKEN=wrong-1 api GET /v1/runs '' $(from 1)
expect_problem 429 rate_limited auth
[ "$(header Retry-After)" = 60 ] || fail "Retry-After: '$(header Retry-After)'"
[ "$(fails 1 10 | sort -u)" = 429 ] || fail "failures after the limit were not all 429"
TOKEN=wrong-2 api GET /v1/runs '' $(from 2)
expect_problem 401 invalid_token auth # another address
TOKEN= api GET /v1/runs '' $(from 1)
expect_problem 401 missing_token auth # another reason
api GET /v1/runs '' $(from 1)
expect_status 200 # the right token is never limited
lines() { grep -c "$1" "$AUDIT"; }
[ "$(lines '"event":"auth_failure".*"reason":"invalid_token".*"remote_addr":"127.0.30.1:')" = 60 ] ||
    fail "auth_failure lines: $(grep '"remote_addr":"127.0.30.1:' "$AUDIT" | grep -v invalid_token)"
[ "$(lines '"event":"auth_rate_limited".*"remote_addr":"127.0.30.1:')" = 1 ] || fail "transition lines"
rows=$($PSQL -Atc "SELECT event, count(*) FROM auth_audit WHERE remote_addr LIKE '127.0.30.1:%'
                   AND reason = 'invalid_token' GROUP BY event ORDER BY event" | tr '\n' ' ')
[ "$rows" = "auth_failure|60 auth_rate_limited|1 " ] || fail "audit rows: $rows"

# --- one audit row and line per failure kind, with the contract's fields
TOKEN= api POST /v1/sessions '{}' $(from 3)
expect_problem 401 missing_token auth
[ "$(header WWW-Authenticate)" = 'Bearer realm="kheish-daemon"' ] || fail "WWW-Authenticate: $(header WWW-Authenticate)"
TOKEN= api GET /v1/status '' $(from 3) -H 'Authorization: Basic dXNlcjpwYXNz'
expect_problem 401 malformed_token auth
TOKEN=not-a-token api GET /v1/runtime/revisions '' $(from 3)
expect_problem 401 invalid_token auth
TOKEN=$READONLY_TOKEN api POST /v1/runtime/debug-level '{"level":"on"}' $(from 3)
expect_problem 403 insufficient_access auth
TOKEN=$READONLY_TOKEN api GET /v1/status '' $(from 3)
expect_status 200
tail -n 4 "$AUDIT" >"$RESP_DIR/kinds"
jq -se '[.[] | select(.remote_addr | startswith("127.0.30.3:"))] | length == 4
    and (map(.reason) == ["missing_token", "malformed_token", "invalid_token", "insufficient_access"])
    and (map(.required_access) == ["admin", "read_only", "admin", "admin"])
    and all(.event == "auth_failure" and (.timestamp_ms | type) == "number"
            and (.method | type) == "string" and (.path | startswith("/v1/")))' "$RESP_DIR/kinds" >/dev/null ||
    fail "audit lines: $(cat "$RESP_DIR/kinds")"
rows=$($PSQL -Atc "SELECT string_agg(reason || ':' || method || ':' || path || ':' || required_access, ' ' ORDER BY id)
                   FROM auth_audit WHERE remote_addr LIKE '127.0.30.3:%'")
[ "$rows" = "missing_token:POST:/v1/sessions:admin malformed_token:GET:/v1/status:read_only invalid_token:GET:/v1/runtime/revisions:admin insufficient_access:POST:/v1/runtime/debug-level:admin" ] ||
    fail "audit rows: $rows"
[ "$(stat -c %a "$AUDIT")" = 600 ] || fail "audit.jsonl mode $(stat -c %a "$AUDIT")"
[ "$(stat -c %a "${AUDIT%/*}")" = 700 ] || fail "control-plane-auth mode $(stat -c %a "${AUDIT%/*}")"

# --- the ledger is append-only, for the application role and the owner alike
for who in kheish_app postgres; do
    for sql in "UPDATE auth_audit SET reason = 'x'" "DELETE FROM auth_audit" "TRUNCATE auth_audit"; do
        $PSQL -c "SET ROLE $who; $sql" >/dev/null 2>&1 && fail "$who could run: $sql"
    done
done

# --- token files that give no token: health warnings, and back
: >"$RO_FILE"
api GET /v1/status
expect_json '.control_plane.auth_token_file_error_count == 1 and (.control_plane.auth_effective_read_only_token_available | not)'
expect_json '[.health.warnings[] | select(.code == "control_plane_auth_token_file_unavailable" and .severity == "warning")] | length == 1'
expect_json '.health.ok == false'
TOKEN=$READONLY_TOKEN api GET /v1/status '' $(from 4)
expect_problem 401 invalid_token auth
rotate "$RO_FILE" "$READONLY_TOKEN"
TOKEN=$READONLY_TOKEN api GET /v1/status
expect_status 200

# Identical admin and read-only tokens: every bearer token is refused.
rotate "$RO_FILE" "$ADMIN_TOKEN"
api GET /v1/status '' $(from 4)
expect_problem 401 invalid_token auth
rotate "$RO_FILE" "$READONLY_TOKEN"
api GET /v1/status
expect_status 200

# Restore the stack's admin token for the files that follow.
rotate "$ADMIN_FILE" "$old"
ADMIN_TOKEN=$old

# --- no token bytes anywhere: audit file and table, logs, responses
for t in "$old" "$new" "$READONLY_TOKEN" wrong-1 wrong-2 not-a-token dXNlcjpwYXNz; do
    if grep -rlF -- "$t" "$AUDIT" "$STATE_ROOT"/logs "$STATE_ROOT"/nginx/logs "$RESP_DIR"; then
        fail "token bytes of '$t' found in the files above"
    fi
    [ "$($PSQL -Atc "SELECT count(*) FROM auth_audit WHERE auth_audit::text LIKE '%' || \$\$$t\$\$ || '%'")" = 0 ] ||
        fail "token bytes of '$t' in auth_audit"
done

# --- startup refusals (contract §4), exit 2 with a message naming the problem
refuse() { # EXPECTED-TEXT ARGS...: kheish-fcgi refuses to start
    local want=$1 out
    shift
    out=$(env -u KHEISH_DAEMON_ADMIN_TOKEN_FILE "$BIN_DIR/kheish-fcgi" --socket "$RESP_DIR/x.sock" \
        --state-root "$STATE_ROOT" "$@" 2>&1)
    local rc=$?
    [ $rc = 2 ] && grep -q -- "$want" <<<"$out" || fail "kheish-fcgi $* -> exit $rc: $out"
}
refuse 'not loopback' --bind 0.0.0.0:443
refuse 'not loopback' --bind 0.0.0.0:443 --http-auth-mode none
refuse 'needs an admin token' --bind 127.0.0.1:1 --http-auth-mode bearer
refuse 'not both' --bind 127.0.0.1:1 --http-admin-token x --http-admin-token-file "$ADMIN_FILE"
refuse 'identical' --bind 127.0.0.1:1 --http-admin-token x --http-readonly-token x
refuse 'same file' --bind 127.0.0.1:1 --http-admin-token-file "$ADMIN_FILE" --http-readonly-token-file "$ADMIN_FILE"
refuse 'without an admin token' --bind 127.0.0.1:1 --http-readonly-token-file "$RO_FILE"
refuse 'not a loopback origin' --bind 127.0.0.1:1 --http-cors-allow-origin https://app.example.com
refuse 'auto, none or bearer' --bind 127.0.0.1:1 --http-auth-mode open
[ -e "$RESP_DIR/x.sock" ] && fail "a refused kheish-fcgi left a socket"
true
