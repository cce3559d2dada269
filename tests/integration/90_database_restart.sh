# PostgreSQL goes away and comes back: readiness follows it, status still
# answers, and workers reconnect without failing the first read after.
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$STATE_ROOT/pg/data" -m fast -w stop >/dev/null ||
    fail "could not stop PostgreSQL"
api GET /readyz
expect_problem 503 database_unavailable readiness
api GET /v1/status
expect_status 200
expect_json '.ready == false and .storage.ok == false and .runs == null'
expect_json 'any(.health.warnings[]; .code == "storage_write_probe_failed" and .severity == "error") and .health.ok == false'
api GET /v1/runs/run-1
expect_problem 503 database_unavailable storage

kheish up --state-root "$STATE_ROOT" --port "${KHEISH_DAEMON_URL##*:}" >/dev/null 2>&1 || fail "kheish up did not restart PostgreSQL"
# Every worker held a connection to the old server: each must reconnect on its
# next request instead of failing it.
for i in $(seq 1 12); do
    api GET /v1/runs/run-999999999
    expect_problem 404 run_not_found
done
api GET /readyz
expect_status 200

# The same after a crash (immediate shutdown: each backend sends its goodbye,
# then closes) for the writes that are one statement of their own: every
# submission is accepted, none is lost or made twice.
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
runuser -u postgres -- "$(pg_config --bindir)/pg_ctl" -D "$STATE_ROOT/pg/data" -m immediate -w stop >/dev/null ||
    fail "could not crash PostgreSQL"
kheish up --state-root "$STATE_ROOT" --port "${KHEISH_DAEMON_URL##*:}" >/dev/null 2>&1 || fail "kheish up after the crash"
for i in $(seq 1 12); do
    api POST "/v1/sessions/$s/runs" "{\"content\":\"after the crash $i\"}"
    expect_status 202
done
[ "$($PSQL -Atc "SELECT count(*) FROM runs WHERE session_id = '$s'")" = 12 ] ||
    fail "submissions after the crash: $($PSQL -Atc "SELECT count(*) FROM runs WHERE session_id = '$s'") runs, not 12"
