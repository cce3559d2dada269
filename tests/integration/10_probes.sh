# Probes answer outside /v1 with plain text, and every response has a request id.
api GET /healthz
expect_status 200
[ "$(body)" = "ok" ] || fail "healthz body: $(body)"
[ -n "$(header X-Request-Id)" ] || fail "no X-Request-Id"

api GET /readyz
expect_status 200
[ "$(body)" = "ready" ] || fail "readyz body: $(body)"
