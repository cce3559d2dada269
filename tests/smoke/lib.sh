# Helpers for the ops smokes in tests/smoke/ (issue 13, point 6). Each smoke
# is a script of its own: it sources tests/lib.sh (fail, wait_until, uid,
# mock_provider_start) and this file, then stands up its own stack with
# `kheish serve` the way an operator's smoke would:
#
#   EVIDENCE   a fresh `mktemp -d` (0700): the state root, the workspace, the
#              routes file, serve's log and every answer the smoke keeps
#   SECRETS    another one, outside it: the admin and read-only token files
#              and the master key file
#
# and ends with smoke_end: no secret value the smoke handled (tokens,
# rotated-out tokens, provider keys, master keys) in any file of the
# evidence directory, no token or key file there, no sanitizer report in its
# logs. tests/run.sh runs them after the integration tests; run one alone with
#   BIN_DIR=... KHEISH_NGINX_TEMPLATE_DIR=$PWD/nginx bash tests/smoke/NAME.sh
# KHEISH_SMOKE_KEEP=1 keeps the evidence directory (the secrets never).

# The stack under test is configured by flags only: nothing of a stack the
# caller may run (tests/run.sh exports its own) leaks in.
for v in $(compgen -e KHEISH_); do
    case $v in KHEISH_NGINX* | KHEISH_TEST_* | KHEISH_SMOKE_*) ;; *) unset "$v" ;; esac
done
unset STATE_ROOT PSQL PSQL_ADMIN ADMIN_TOKEN READONLY_TOKEN

SERVE=
MOCK=
SMOKE_SECRETS=()

# fail, as tests/lib.sh's, but naming the line of the smoke's own script
# that called the helper which found the fault.
fail() {
    local i at=${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}
    for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
        [ "${BASH_SOURCE[i]}" = "$0" ] && at=${0##*/}:${BASH_LINENO[i - 1]}
    done
    echo "  FAIL $at: $*" >&2
    FAILED=1
}

# smoke_init NAME: the two directories, the token and key files, a free
# port (PORT, URL) and the cleanup trap.
smoke_init() {
    EVIDENCE=$(mktemp -d "/tmp/kheish-smoke-$1.XXXXXX")
    SECRETS=$(mktemp -d "/tmp/kheish-smoke-$1-secrets.XXXXXX")
    STATE=$EVIDENCE/state WORKSPACE=$EVIDENCE/workspace ROUTES=$EVIDENCE/routes.toml
    ADMIN=$SECRETS/admin-token READONLY=$SECRETS/readonly-token KEY=$SECRETS/auth-store-master-key
    trap smoke_cleanup EXIT
    mkdir -p "$STATE" "$WORKSPACE"
    kheish secrets generate >"$KEY"
    token_write "$ADMIN" "admin-$1"
    token_write "$READONLY" "readonly-$1"
    chmod 600 "$KEY"
    key_secret "$KEY"
    export KHEISH_AUTH_STORE_MASTER_KEY_FILE=$KEY
    audit_key_write "$SECRETS/audit-signing.key" # else serve makes one beside $STATE
    export KHEISH_EXTERNAL_ACTION_AUDIT_SIGNING_KEY_FILE=$SECRETS/audit-signing.key
    free_port
    URL=http://127.0.0.1:$PORT
}

# smoke_secret VALUE: one more value the leak check looks for.
# key_secret FILE: a master key file's value, as base64 and as hex.
smoke_secret() { SMOKE_SECRETS+=("$1"); }
key_secret() {
    smoke_secret "$(cat "$1")"
    smoke_secret "$(base64 -d "$1" | od -An -tx1 | tr -d ' \n')"
}

# token_write FILE PREFIX: a fresh token installed over FILE the way an
# operator rotates one (a 0600 file next to it, moved over it); remembered
# by the leak check.
token_write() {
    local token
    token="$2-$(kheish secrets generate | tr -d '=/+')"
    (umask 077 && printf '%s\n' "$token" >"$1.next")
    mv "$1.next" "$1"
    smoke_secret "$token"
}

# smoke_up NAME PROVIDER_KEY: smoke_init NAME, the mock provider, a routes
# file whose one route has its key in the slot openai.prod (mock_routes),
# PROVIDER_KEY stored there offline, and serve started; 1 when serve does
# not come up.
smoke_up() {
    smoke_init "$1"
    mock_provider_start
    mock_routes "$ROUTES"
    slot_set_offline "$2" >"$EVIDENCE/secret-set.json" || fail "secrets set --offline: exit $?"
    smoke_serve_start serve.log
}

# slot_set_offline VALUE: the provider key of openai.prod written straight
# into the state root's database while serve is not running (from the
# environment, so the value is in no argument list); what it says about the
# cluster goes to EVIDENCE/offline.log.
slot_set_offline() {
    smoke_secret "$1"
    SLOT_VALUE=$1 kheish --output json secrets set openai.prod --offline --state-root "$STATE" \
        --provider openai --from-env SLOT_VALUE 2>>"$EVIDENCE/offline.log"
}

# smoke_serve_spawn LOG [FLAGS...]: `kheish serve` in the background with the
# flag set of upstream's smokes (plus FLAGS), its output in EVIDENCE/LOG.
# SERVE is serve's pid. smoke_serve_start LOG [FLAGS...] also waits for
# /readyz.
smoke_serve_spawn() {
    local log=$EVIDENCE/$1
    shift
    "$BIN_DIR/kheish" serve --bind "127.0.0.1:$PORT" --state-root "$STATE" --workspace-root "$WORKSPACE" \
        --routes-file "$ROUTES" --mcp-discovery disabled --http-auth-mode bearer \
        --http-admin-token-file "$ADMIN" --http-readonly-token-file "$READONLY" "$@" >"$log" 2>&1 &
    SERVE=$!
}
smoke_serve_start() {
    smoke_serve_spawn "$@"
    wait_until 60 ready || {
        fail "serve did not become ready: $(tail -20 "$EVIDENCE/$1")"
        return 1
    }
}

ready() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ]; }

# smoke_serve_stop: SIGTERM, as an operator stops it; serve must exit 0.
smoke_serve_stop() {
    [ -n "$SERVE" ] || return 0
    kill -TERM "$SERVE"
    wait "$SERVE"
    local rc=$?
    SERVE=
    [ $rc = 0 ] || fail "serve exited $rc on SIGTERM"
}

# cli ARGS...: the CLI against the stack with the admin token, JSON out.
# cli_as TOKEN_FILE ARGS...: the same with another token.
cli() { cli_as "$ADMIN" "$@"; }
cli_as() {
    local token=$1
    shift
    kheish --base-url "$URL" --token-file "$token" --output json "$@"
}

# keep NAME ARGS...: cli ARGS, the answer kept as EVIDENCE/NAME.json (the
# path in KEPT); fails the smoke unless the CLI exits 0.
keep() {
    KEPT=$EVIDENCE/$1.json
    shift
    cli "$@" >"$KEPT" 2>"$KEPT.err" || {
        fail "kheish $*: exit $?: $(head -c 400 "$KEPT.err") $(head -c 400 "$KEPT")"
        return 1
    }
    [ -s "$KEPT.err" ] || rm "$KEPT.err"
}

# expect_kept JQ [SHOW]: the last kept answer satisfies the jq expression;
# on failure the message shows SHOW of it (a jq filter, default the whole).
expect_kept() {
    jq -e "$1" "$KEPT" >/dev/null 2>&1 ||
        fail "${KEPT##*/}: jq '$1' is false on: $(jq -c "${2:-.}" "$KEPT" 2>&1 | head -c 800)"
}

# hung_run NAME SESSION: a run the mock provider never answers, submitted
# (the answer kept as NAME) and running; HUNG is its id.
hung_run() {
    keep "$1" sessions input "$2" '[[mock:hang]]'
    HUNG=$(jq -r .run_id "$KEPT")
    wait_until 15 run_status_is "$HUNG" running || fail "the hung run $HUNG never ran"
}
run_status_is() { [ "$(cli runs get "$1" | jq -r .status)" = "$2" ]; }

# mock_requests NAME: what the mock provider received (credentials as
# SHA-256 digests), kept as EVIDENCE/NAME.json. mock_reset: forgets it.
mock_requests() {
    KEPT=$EVIDENCE/$1.json
    curl -sS "$MOCK_URL/_mock/requests" >"$KEPT" || fail "the mock's request list: curl exit $?"
}
mock_reset() { curl -sS -X POST "$MOCK_URL/_mock/reset" >/dev/null || fail "mock reset: curl exit $?"; }

# key_seen KEY: the Authorization header the mock records for KEY.
key_seen() { printf 'Bearer %s' "$(printf %s "$1" | sha256sum | cut -d' ' -f1)"; }

# expect_exit WANT CMD...: CMD exits WANT.
expect_exit() {
    local want=$1 got
    shift
    "$@" >"$RESP_DIR/exit.out" 2>&1
    got=$?
    [ "$got" = "$want" ] || fail "$*: exit $got, wanted $want: $(head -c 400 "$RESP_DIR/exit.out")"
}

# sse_first_frame TOKEN_FILE PATH NAME: the first frame of the stream PATH,
# read raw through nginx with curl (the token in a header file, not in
# curl's arguments), kept as EVIDENCE/NAME.sse; checks the answer is a 200
# event stream and the frame has an id, an event name and JSON data whose
# type is that name.
sse_first_frame() {
    local out=$EVIDENCE/$3.sse hdr=$SECRETS/sse.header
    (umask 077 && printf 'Authorization: Bearer %s\n' "$(tr -d '\n' <"$1")" >"$hdr")
    # The stream never ends: read until the first blank line, then hang up.
    rm -f "$RESP_DIR/stream"
    curl -sSN --max-time 10 -H @"$hdr" -D "$out.headers" -o "$RESP_DIR/stream" "$URL$2" 2>/dev/null &
    local reader=$!
    wait_until 10 grep -qs '^$' "$RESP_DIR/stream"
    kill "$reader" 2>/dev/null
    wait "$reader"
    rm -f "$hdr"
    awk 'BEGIN { RS = "" } { print; exit }' "$RESP_DIR/stream" >"$out" 2>/dev/null
    grep -qs '^HTTP/1.1 200' "$out.headers" && grep -qi '^content-type: text/event-stream' "$out.headers" ||
        fail "$2: not a 200 event stream: $(tr -d '\r' <"$out.headers" 2>&1 | head -5)"
    local event
    event=$(sed -n 's/^event: //p' "$out")
    grep -Eq '^id: [0-9]+$' "$out" && [ -n "$event" ] &&
        sed -n 's/^data: //p' "$out" | jq -e --arg e "$event" '.type == $e' >/dev/null ||
        fail "$2: the first frame lacks id:, event: or typed data: $(head -c 400 "$out")"
}

# smoke_leak_check: no token or key file in the evidence directory, and none
# of the values the smoke handled in any of its files, binary ones included
# (the state root holds the database's files). Secret-looking variables of
# the environment count too, as values.
smoke_leak_check() {
    [ -n "$MOCK" ] && cp "$RESP_DIR/mock.log" "$EVIDENCE/mock.log" 2>/dev/null
    local found name value secrets=("${SMOKE_SECRETS[@]}")
    found=$(find "$EVIDENCE" -type f \( -name admin-token -o -name readonly-token \
        -o -name auth-store-master-key -o -name '*.key' -o -name '*-token.next' -o -name 'old-*' -o -name '*.header' \) |
        head -3)
    [ -z "$found" ] || fail "token or key files in the evidence directory: $found"
    while IFS='=' read -r name value; do
        case $name in
        *_FILE) ;;
        *API_KEY* | *TOKEN* | *SECRET* | *PASSWORD* | *MASTER_KEY*) [ ${#value} -ge 8 ] && secrets+=("$value") ;;
        esac
    done < <(env)
    [ ${#secrets[@]} -ge 5 ] || fail "the leak check has only ${#secrets[@]} values to look for"
    for value in "${secrets[@]}"; do
        found=$(grep -R -l -a -F -- "$value" "$EVIDENCE" 2>/dev/null | head -3)
        [ -z "$found" ] || fail "a secret value (${value:0:6}...) is in $found"
    done
}

# smoke_end: the leak check, then a sanitizer report in any log of the
# evidence directory (serve's carry every daemon's stderr) fails the smoke
# too; exits with the smoke's verdict.
smoke_end() {
    smoke_leak_check
    local report='ERROR: (Address|Leak)Sanitizer|runtime error:'
    if grep -q -E "$report" "$EVIDENCE"/*.log 2>/dev/null; then
        fail "sanitizer report: $(grep -h -A20 -E "$report" "$EVIDENCE"/*.log | head -40)"
    fi
    exit "$FAILED"
}

smoke_cleanup() {
    if [ -n "$SERVE" ]; then
        kill -TERM "$SERVE" 2>/dev/null
        wait "$SERVE"
    fi
    [ -n "${STATE-}" ] && kheish down --state-root "$STATE" >/dev/null 2>&1
    if [ -n "$MOCK" ]; then
        kill "$MOCK" 2>/dev/null
        wait "$MOCK"
    fi
    rm -rf "$SECRETS" "$RESP_DIR"
    if [ "${KHEISH_SMOKE_KEEP:-0}" = 1 ]; then
        echo "evidence kept in $EVIDENCE" >&2
    else
        rm -rf "$EVIDENCE"
    fi
}
