# `kheish up` again after the routes file was edited in place (issue 11,
# point 10): what reads it (kheish-fcgi, the runners) restarts, and up says
# so; unchanged content restarts nothing and says nothing. Content is
# compared, not the path.
trap 'up_stack --routes-file ""; rm -rf "$RESP_DIR"' EXIT
R=$RESP_DIR/routes.toml
key_env_routes "$R" KHEISH_TEST_RELOAD_KEY gpt-4o
up_stack --routes-file "$R" --runners 1 || fail "up with a runner: $(tail -3 "$RESP_DIR/up.log")"
pid() { cat "$STATE_ROOT/run/$1.pid"; }
api GET /v1/status
restarts=$(jqr .supervisor.restart_count)
fcgi=$(pid fcgi) runner=$(pid runner-1) relay=$(pid relay-1)
# served: the digest of the routes file kheish-fcgi read.
served() { api GET /v1/status; jqr '.provider_readiness.routes_file.sha256'; }

up_stack --routes-file "$R" || fail "up, same content: $(tail -3 "$RESP_DIR/up.log")"
grep -q 'routes file changed' "$RESP_DIR/up.log" && fail "up announced a change of an unchanged file"
[ "$(pid fcgi) $(pid runner-1)" = "$fcgi $runner" ] || fail "unchanged content restarted kheish-fcgi or the runner"

key_env_routes "$R" KHEISH_TEST_RELOAD_KEY gpt-4.1 # the same path, new content
up_stack --routes-file "$R" || fail "up, edited file: $(tail -3 "$RESP_DIR/up.log")"
grep -q 'the routes file changed: restarting kheish-fcgi and the runners' "$RESP_DIR/up.log" ||
    fail "up did not say that it restarts: $(cat "$RESP_DIR/up.log")"
[ "$(pid fcgi)" != "$fcgi" ] && [ "$(pid runner-1)" != "$runner" ] ||
    fail "the edited file did not restart kheish-fcgi ($fcgi -> $(pid fcgi)) and the runner ($runner -> $(pid runner-1))"
[ "$(pid relay-1)" = "$relay" ] || fail "a relay, which does not read the routes file, was restarted"
[ "$(served)" = "$(sha256sum "$R" | cut -d' ' -f1)" ] || fail "kheish-fcgi serves another file: $(served)"
# Deliberate restarts are no crashes.
api GET /v1/status
expect_json ".supervisor.restart_count == $restarts"
