# The CLI against the live stack: json output is the API document, pretty output
# is a table, and exit codes follow the contract.
export KHEISH_DAEMON_URL

expect_exit 0 kheish status --output json
jq -e '.ready == true and .status == "ready"' "$RESP_DIR/cli.out" >/dev/null || fail "status --output json"
expect_exit 0 kheish status
grep -qi ready "$RESP_DIR/cli.out" || fail "pretty status says nothing about readiness"

s=$(uid)
expect_exit 0 kheish --output json sessions create "$s" --persona-id p
jq -e ".session_id == \"$s\"" "$RESP_DIR/cli.out" >/dev/null || fail "sessions create"
expect_exit 0 kheish sessions submit "$s" "hello from the cli" --output json
run=$(jq -r .run_id "$RESP_DIR/cli.out")
api GET /v1/runs/$run
expect_exit 0 kheish runs get "$run" --output json
[ "$(jq -S 'del(.updated_at_ms)' "$RESP_DIR/cli.out")" = "$(jq -S 'del(.updated_at_ms)' "$BODY_FILE")" ] ||
    fail "--output json is not the API document"
expect_exit 0 kheish runs list --session-id "$s"
grep -q "$run" "$RESP_DIR/cli.out" || fail "runs list table lacks $run"
expect_exit 0 kheish runs cancel "$run"
expect_exit 0 kheish runs wait "$run" --output json
jq -e '.status == "cancelled"' "$RESP_DIR/cli.out" >/dev/null || fail "runs wait did not return the terminal run"
expect_exit 0 kheish runtime get --output json
expect_exit 0 kheish runtime set-permission-mode dont-ask --output json
jq -e '.permission_mode == "dontAsk"' "$RESP_DIR/cli.out" >/dev/null || fail "set-permission-mode dont-ask"
expect_exit 0 kheish runtime rollback

# Exit codes: 5 not found, 6 conflict, 2 bad request and bad usage, 3 unreachable.
expect_exit 5 kheish runs get run-999999999
grep -q run_not_found "$RESP_DIR/cli.err" || fail "404 is explained on stderr"
expect_exit 6 kheish sessions create "$s" --persona-id other
expect_exit 2 kheish sessions create '../x'
expect_exit 2 kheish runs get
expect_exit 2 kheish runs list --limit nope
expect_exit 2 kheish no-such-command
expect_exit 2 kheish sessions
grep -q "'sessions' needs a command" "$RESP_DIR/cli.err" || fail "a group without a command: $(head -1 "$RESP_DIR/cli.err")"
expect_exit 3 kheish --base-url http://127.0.0.1:1 status
expect_exit 2 kheish --token a --token-file /dev/null status

# --help runs nothing: it prints the named command's usage (exit 0), and an
# unknown command, or a word after a command without verbs, is a usage error
# as it is without --help (tests/runbook-check.sh relies on both).
expect_exit 0 kheish runs cancel run-999999999 --help
grep -q '^usage: kheish runs cancel <id>$' "$RESP_DIR/cli.out" || fail "runs cancel --help: $(cat "$RESP_DIR/cli.out")"
expect_exit 0 kheish runtime auth revoke-slot s --help
grep -q '^usage: kheish runtime auth revoke-slot <slot>$' "$RESP_DIR/cli.out" || fail "runtime auth revoke-slot --help"
expect_exit 0 kheish doctor --help
[ "$(cat "$RESP_DIR/cli.out")" = "usage: kheish doctor [--cors-origin ORIGIN]" ] || fail "doctor --help: $(cat "$RESP_DIR/cli.out")"
expect_exit 0 kheish runs --help
grep -q '^  kheish runs wait ' "$RESP_DIR/cli.out" || fail "runs --help lists the group"
for cmd in "no-such-command" "runs no-such-verb" "doctor no-such-verb" "runtime auth no-such-verb x"; do
    # shellcheck disable=SC2086 # the words of the command
    expect_exit 2 kheish $cmd --help
    grep -q "unknown command" "$RESP_DIR/cli.err" || fail "$cmd --help: $(head -1 "$RESP_DIR/cli.err")"
done
expect_exit 0 kheish supervise --help
grep -q '^usage: kheish supervise' "$RESP_DIR/cli.out" || fail "supervise --help: $(cat "$RESP_DIR/cli.out")"
