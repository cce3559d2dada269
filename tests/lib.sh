# Helpers for the black-box tests in tests/integration/. Sourced by tests/run.sh
# into each test file's own shell. The stack is already up:
#   KHEISH_DAEMON_URL  base URL through nginx      STATE_ROOT  its state root
#   BIN_DIR            the binaries                PSQL        psql as the owner
# A test calls the helpers below; any failed expectation marks the file failed.

FAILED=0
RESP_DIR=$(mktemp -d)
trap 'rm -rf "$RESP_DIR"' EXIT

fail() {
    echo "  FAIL ${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}: $*" >&2
    FAILED=1
}

# api METHOD PATH [BODY] [curl args...]: sets STATUS, and BODY_FILE/HEADER_FILE.
# Sends `Authorization: Bearer $TOKEN` (the admin token unless TOKEN is set;
# TOKEN= sends none).
api() {
    local method=$1 path=$2 body=${3-}
    shift 3 2>/dev/null || shift $#
    BODY_FILE=$RESP_DIR/body HEADER_FILE=$RESP_DIR/headers
    local args=(-sS -X "$method" -o "$BODY_FILE" -D "$HEADER_FILE" -w '%{http_code}')
    local token=${TOKEN-$ADMIN_TOKEN}
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    STATUS=$(curl "${args[@]}" "$@" "$KHEISH_DAEMON_URL$path") || STATUS=000
}

body() { cat "$BODY_FILE"; }
header() { grep -i "^$1:" "$HEADER_FILE" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

expect_status() {
    [ "$STATUS" = "$1" ] || fail "expected HTTP $1, got $STATUS: $(head -c 400 "$BODY_FILE")"
}

# expect_json JQ_EXPR: the response body satisfies the jq boolean expression.
expect_json() {
    jq -e "$1" "$BODY_FILE" >/dev/null 2>&1 || fail "jq '$1' is false on: $(head -c 600 "$BODY_FILE")"
}

# expect_problem STATUS CODE [DOMAIN]: a problem+json document with that code.
expect_problem() {
    expect_status "$1"
    case "$(header Content-Type)" in
    application/problem+json*) ;;
    *) fail "expected application/problem+json, got '$(header Content-Type)'" ;;
    esac
    expect_json ".status == $1 and .code == \"$2\" and .type == \"urn:kheish:problem:$2\" and (.title | type) == \"string\" and (.detail | type) == \"string\""
    [ -z "${3-}" ] || expect_json ".domain == \"$3\""
}

jqr() { jq -r "$1" "$BODY_FILE"; }

# Row counts of every table the API writes, as one line (for "changes nothing").
row_counts() {
    $PSQL -Atc "SELECT (SELECT count(*) FROM sessions) || ' ' || (SELECT count(*) FROM runs) || ' ' ||
                       (SELECT count(*) FROM run_events) || ' ' || (SELECT count(*) FROM events) || ' ' ||
                       (SELECT count(*) FROM runtime_revisions)"
}

# free_port: sets PORT to a loopback port nobody listens on, whose
# neighbour 1000 up (an embedded stack's PostgreSQL) is free too; below the
# ephemeral range, where outgoing connections could take one meanwhile.
free_port() {
    local p
    PORT=
    while [ -z "$PORT" ]; do
        p=$((20000 + RANDOM % 10000))
        port_free "$p" && port_free $((p + 1000)) && PORT=$p
    done
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A unique id for this test's objects.
uid() { echo "t$$-$RANDOM$RANDOM"; }

kheish() { "$BIN_DIR/kheish" "$@"; }

# expect_exit CODE CMD...: CMD exits CODE; its stdout is left in
# $RESP_DIR/cli.out and its stderr in $RESP_DIR/cli.err.
expect_exit() {
    local want=$1 got
    shift
    "$@" >"$RESP_DIR/cli.out" 2>"$RESP_DIR/cli.err"
    got=$?
    [ "$got" = "$want" ] || fail "'$*' exited $got, expected $want: $(head -c 300 "$RESP_DIR/cli.err")"
}

# Two sessions with a run each, for the stream tests: sets s1, s2 and run (s1's).
stream_fixture() {
    s1=$(uid) s2=$(uid)
    api POST /v1/sessions "{\"session_id\":\"$s1\"}"
    api POST /v1/sessions "{\"session_id\":\"$s2\"}"
    api POST /v1/sessions/$s1/runs '{"content":"stream me"}'
    run=$(jqr .run_id)
    api POST /v1/sessions/$s2/runs '{"content":"and me"}'
}

# wait_until SECONDS CMD...: retries CMD every 0.1 s.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.1
    done
}

# relay_streams I: how many connections relay I (1, 2: run/relay-I.pid,
# run/relay-I.sock) has accepted from nginx, i.e. streams it serves (state 03,
# connected, in /proc/net/unix).
relay_streams() {
    grep -c " 0001 03 [0-9]* $STATE_ROOT/run/relay-$1.sock\$" /proc/net/unix
}

# relay_serving: the relay (1 or 2) that serves the only open stream.
relay_serving() {
    local i
    for i in 1 2; do
        [ "$(relay_streams $i)" -gt 0 ] && echo $i && return 0
    done
    return 1
}

# relay_raw I: standard input sent as is to relay I's socket (bytes nginx
# would refuse); prints the answer, waiting at most 5 s for the relay to close.
relay_raw() {
    timeout 5 perl -MIO::Socket::UNIX -e '
        my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "relay socket: $!\n";
        local $/; print $s scalar <STDIN>; $s->flush; print <$s>;' "$STATE_ROOT/run/relay-$1.sock"
}

# key_env_routes FILE VAR [MODEL]: a routes file with one route whose key is
# the variable VAR (runners start without calling the provider). For tests
# that need runners; `kheish up --routes-file ''` stops them again.
key_env_routes() {
    printf 'version = 1\ndefault_route = "main"\n\n[routes.main]\ndriver = "openai"\n' >"$1"
    printf 'default_model = "%s"\napi_key_env = "%s"\n' "${3:-gpt-4o}" "$2" >>"$1"
}

# up_stack [FLAGS...]: `kheish up` of the test stack, its output in
# $RESP_DIR/up.log.
up_stack() {
    "$BIN_DIR/kheish" up --state-root "$STATE_ROOT" --port "${KHEISH_DAEMON_URL##*:}" "$@" \
        >"$RESP_DIR/up.log" 2>&1
}

# mock_provider_start [FLAGS...]: starts tests/mock-provider on a free port
# (FLAGS: its own, e.g. --api-key K); sets MOCK (its pid) and MOCK_URL.
mock_provider_start() {
    node tests/mock-provider/server.mjs --port 0 --ready-file "$RESP_DIR/mock.port" "$@" 2>"$RESP_DIR/mock.log" &
    MOCK=$!
    wait_until 10 test -s "$RESP_DIR/mock.port" || fail "the mock provider did not start"
    MOCK_URL=http://127.0.0.1:$(cat "$RESP_DIR/mock.port")
}

# mock_routes FILE: a routes file with one route, openai, whose key is in
# the slot openai.prod and whose provider is the mock (mock_provider_start
# first), as upstream's ops smokes have it.
mock_routes() {
    cat >"$1" <<EOF
version = 1
default_route = "openai"

[routes.openai]
driver = "openai"
default_model = "gpt-5.4"
auth_ref = "openai.prod"
base_url = "$MOCK_URL/v1"
EOF
}

# runners_stop: back to a stack without runners (and without a routes file to
# remember: later tests expect runs to stay queued); stops the mock provider.
runners_stop() {
    up_stack --routes-file ''
    kill "$MOCK" 2>/dev/null
}

# tool_stack_up NAME: runners whose provider is the mock (mock_provider_start,
# the slot openai.prod, mock_routes), for the files whose runs call tools;
# bash runs as the tool user inside bubblewrap, which must reach the
# workspace through its parents (docs/security.md), so the test's temporary
# directory is made 0711. The EXIT trap puts the permission mode and the
# stack back.
tool_stack_up() {
    mock_provider_start
    trap '"$BIN_DIR/kheish" runtime set-permission-mode default >/dev/null; runners_stop; rm -rf "$RESP_DIR"' EXIT
    "$BIN_DIR/kheish" secrets set openai.prod --provider openai --value "sk-$1-$(uid)" >/dev/null ||
        fail "secrets set"
    mock_routes "$RESP_DIR/routes.toml"
    chmod 711 "${STATE_ROOT%/*}"
    up_stack --routes-file "$RESP_DIR/routes.toml" || fail "up with runners: $(tail -5 "$RESP_DIR/up.log")"
}

# The approval tests' runs (97, 98), read in the database.
# approval_submit SESSION TEXT: a run submitted in a new session; prints its id.
approval_submit() {
    "$BIN_DIR/kheish" --output json sessions create "$1" >/dev/null || fail "sessions create $1"
    api POST "/v1/sessions/$1/runs" "$(jq -cn --arg c "$2" '{content: $c}')"
    expect_status 202
    jqr .run_id
}
run_status_is() { [ "$($PSQL -Atc "SELECT status FROM runs WHERE run_id = '$1'")" = "$2" ]; }
run_status_fail() { fail "run $1 $2: $($PSQL -Atc "SELECT status, error FROM runs WHERE run_id = '$1'")"; }
# approval_waits RUN, run_completes RUN: within 30 s, or the test fails.
approval_waits() { wait_until 30 run_status_is "$1" waiting_for_approval || run_status_fail "$1" "does not wait"; }
run_completes() { wait_until 30 run_status_is "$1" completed || run_status_fail "$1" "did not complete"; }
# approvals_pending RUN: the run's pending request ids, comma-separated, in order.
approvals_pending() {
    $PSQL -Atc "SELECT string_agg(request_id, ',' ORDER BY request_id) FROM approvals
                WHERE run_id = '$1' AND status = 'pending'"
}
# approval_pair SESSION: a run whose one turn asks to write b.txt and c.txt,
# waiting for both; sets run, and r1 and r2 (its two requests, in order).
approval_pair() {
    run=$(approval_submit "$1" '[[mock:call=write_file:{"path":"b.txt","content":"b"}]] [[mock:call=write_file:{"path":"c.txt","content":"c"}]] [[mock@2:text=both]]')
    approval_waits "$run"
    local ids
    ids=$(approvals_pending "$run")
    r1=${ids%,*} r2=${ids#*,}
    [ -n "$r1" ] && [ "$r1" != "$r2" ] || fail "two approvals: $ids"
}
