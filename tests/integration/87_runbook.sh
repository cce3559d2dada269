# The runbooks' commands all run (issue 13, point 5): tests/runbook-check.sh
# finds every `kheish ...` fragment of docs/runbooks/*.md and README.md; each
# names a command and flags the CLI has, and each that only reads runs against
# this stack with the exit code the doc gives. A made-up verb inserted into a
# copy of a doc fails, naming it, and so does a made-up flag on a real verb or
# a wrong exit code. The stack gets a routes file (doctor fails without one)
# whose provider is a closed port, and is put back without runners at the end.
trap 'up_stack --routes-file ""; rm -rf "$RESP_DIR"' EXIT
key_env_routes "$RESP_DIR/routes.toml" KHEISH_TEST_RUNBOOK_KEY
echo 'base_url = "http://127.0.0.1:9"' >>"$RESP_DIR/routes.toml"
KHEISH_TEST_RUNBOOK_KEY=k-$(uid) up_stack --routes-file "$RESP_DIR/routes.toml" ||
    fail "up with runners: $(tail -3 "$RESP_DIR/up.log")"
held() { api GET /v1/status && [ "$(jqr '.runners.maintenance_lock_holder // empty')" != "" ]; }
wait_until 10 held || fail "no runner took the maintenance lock"

# check FILE...: the checker's verdict ($RC) and output ($RESP_DIR/check.out).
check() {
    KHEISH=$BIN_DIR/kheish tests/runbook-check.sh --verbose "$@" >"$RESP_DIR/check.out" 2>&1
    RC=$?
}
out() { grep -v ': parsed: \|: run (exit ' "$RESP_DIR/check.out" | head -c 2000; }

check docs/runbooks/*.md README.md
[ "$RC" = 0 ] || fail "the runbooks: exit $RC: $(out)"
# Not vacuous: most fragments were found, and the read-only ones ran.
summary=$(tail -n 1 "$RESP_DIR/check.out")
if ! [[ $summary =~ ([0-9]+)\ fragments.*:\ ([0-9]+)\ run ]] || [ "${BASH_REMATCH[1]}" -lt 80 ] ||
    [ "${BASH_REMATCH[2]}" -lt 40 ]; then
    fail "too few fragments: $summary"
fi
grep -q '^README.md:[0-9]*: run (exit 0): bin/kheish runs wait run-1$' "$RESP_DIR/check.out" ||
    fail "README's runs wait did not run: $(grep 'runs wait' "$RESP_DIR/check.out")"

# A made-up verb inserted in the middle of a copy of a doc: named, with its line.
awk '{ print } /^kheish doctor routes --check-auth / && !done { print "kheish runs frobnicate <run-id>"; done = 1 }' \
    docs/runbooks/validate.md >"$RESP_DIR/verb.md"
line=$(grep -n '^kheish runs frobnicate' "$RESP_DIR/verb.md" | cut -d: -f1)
check "$RESP_DIR/verb.md"
[ "$RC" = 1 ] || fail "made-up verb: exit $RC"
grep -qF "$RESP_DIR/verb.md:$line: kheish: unknown command 'runs frobnicate': kheish runs frobnicate <run-id>" \
    "$RESP_DIR/check.out" || fail "made-up verb at line $line: $(out)"
grep -q ' 1 failed$' "$RESP_DIR/check.out" || fail "made-up verb: more than it failed: $(out)"

# A made-up flag on a real verb, inline in prose and in a block; a made-up
# group; a wrong exit code, and the same one annotated.
cp README.md "$RESP_DIR/flags.md"
cat >>"$RESP_DIR/flags.md" <<'EOF'
Check `kheish status --frobnicate` first.

```sh
bin/kheish runs list --session-id demo \
    --frobnicate-more 2 | head
bin/kheish frobnicate-all
kheish sessions get no-such-session
kheish sessions get no-such-session    # exits 5
```
EOF
n=$(wc -l <README.md)
check "$RESP_DIR/flags.md"
[ "$RC" = 1 ] || fail "made-up flags: exit $RC"
for want in "$((n + 1)): unknown flag --frobnicate for 'kheish status': kheish status --frobnicate" \
    "$((n + 4)): unknown flag --frobnicate-more for 'kheish runs list': bin/kheish runs list --session-id demo --frobnicate-more 2" \
    "$((n + 6)): kheish: unknown command 'frobnicate-all': bin/kheish frobnicate-all" \
    "$((n + 7)): exited 5, expected 0 (kheish: "; do
    grep -qF "$RESP_DIR/flags.md:$want" "$RESP_DIR/check.out" || fail "flags.md: no '$want' in: $(out)"
done
grep -q ' 4 failed$' "$RESP_DIR/check.out" || fail "flags.md: not 4 failures: $(out)"

# The extraction: inline spans, continuations, pipes, $( ), &&, comments,
# heredocs and other languages' blocks.
cat >"$RESP_DIR/syntax.md" <<'EOF'
Prose with `kheish status --output json` and `kheish` alone.

```sh
KHEISH_X=1 bin/kheish --output json \
    runs list --limit 2 | jq length   # a comment
cat >x <<'END'
kheish frobnicate inside a heredoc
END
s=$(kheish --output json sessions list --limit 1 | jq -r '.[0].session_id') && kheish sessions get demo
```

```toml
kheish = "frobnicate: not a command"
```
EOF
check "$RESP_DIR/syntax.md"
[ "$RC" = 0 ] || fail "syntax.md: exit $RC: $(out)"
printf '%s\n' "$RESP_DIR/syntax.md:1: run (exit 0): kheish status --output json" \
    "$RESP_DIR/syntax.md:4: run (exit 0): bin/kheish --output json runs list --limit 2" \
    "$RESP_DIR/syntax.md:9: run (exit 0): kheish --output json sessions list --limit 1" \
    "$RESP_DIR/syntax.md:9: run (exit 0): kheish sessions get demo" \
    "runbook-check: 4 fragments in 1 files: 4 run, 0 parsed only, 0 failed" >"$RESP_DIR/syntax.want"
diff "$RESP_DIR/syntax.want" "$RESP_DIR/check.out" >&2 || fail "syntax.md: fragments differ"
