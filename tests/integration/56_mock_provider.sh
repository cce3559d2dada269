# The mock model provider (tests/mock-provider/) that the runner tests use:
# its own self-test of the three wire formats and every directive, so a
# fixture that drifted from the real APIs fails here, not in a runner test.
bash tests/mock-provider/selftest.sh >"$RESP_DIR/mock.log" 2>&1 ||
    fail "mock provider self-test: $(tail -20 "$RESP_DIR/mock.log")"
tail -1 "$RESP_DIR/mock.log"
