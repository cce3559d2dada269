# Values that must survive PostgreSQL, and rows that must not stop others
# (issue 11, points 1, 3, 9 and 10): numbers round-trip exactly or are refused
# at the edge (the refusals are in tests/bad-input/cases.tsv); a row written
# before that rule (a number jsonb keeps and jansson cannot read) is still
# listed, read and cancelled; restart recovery moves each run on its own; a
# request whose client left while it waited for a worker is not executed; a
# malformed body's error never quotes the body.
q() { $PSQL -Atc "$1"; }
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
expect_status 201

# Numbers at the edges of what round-trips are kept: integers exactly, the
# others as the same double (jsonb may spell them longer: 0.1 is stored as
# 0.10000000000000001, which every reader reads back as 0.1).
exact='{"max":9223372036854775807,"min":-9223372036854775808,"tenth":0.1,"tiny":1.5e-300,"big_real":9007199254740991.0,"quadrillion":1e15}'
api POST /v1/sessions/$s/runs "{\"content\":\"exact\",\"metadata\":$exact}"
expect_status 202
run=$(jqr .run_id)
[ "$(q "SELECT payload->'metadata'->'max' = '9223372036854775807' AND payload->'metadata'->'min' = '-9223372036854775808'
        FROM runs WHERE run_id = '$run'")" = t ] ||
    fail "integers not stored exactly: $(q "SELECT payload->'metadata' FROM runs WHERE run_id = '$run'")"
api GET /v1/runs/$run
expect_status 200
grep -q '"max": *9223372036854775807[,}]' "$BODY_FILE" && grep -q '"min": *-9223372036854775808[,}]' "$BODY_FILE" ||
    fail "run view lost an integer: $(head -c 600 "$BODY_FILE")"
expect_json '.input_metadata | .tenth == 0.1 and .tiny == 1.5e-300 and .big_real == 9007199254740991 and .quadrillion == 1000000000000000'
api POST /v1/runs/$run/cancel '{}'
expect_status 200

# Nesting: 64 levels in all is accepted, 65 refused (cases.tsv).
deep=$(printf '{"a":%.0s' $(seq 62))1$(printf '}%.0s' $(seq 62))
api POST /v1/sessions/$s/runs "{\"content\":\"deep\",\"metadata\":$deep}"
expect_status 202
api POST /v1/runs/$(jqr .run_id)/cancel '{}'

# A row from before the rule: 1e19 in a run's metadata and in a session's
# capability_scope (jsonb prints 10000000000000000000).
p=$(uid)
api POST /v1/sessions "{\"session_id\":\"$p\"}"
api POST /v1/sessions/$p/runs '{"content":"poisoned"}'
prun=$(jqr .run_id)
q "UPDATE runs SET payload = jsonb_set(payload, '{metadata}', '{\"n\":1e19}'), input_metadata = '{\"n\":1e19}'
   WHERE run_id = '$prun';
   UPDATE sessions SET capability_scope = '{\"n\":1e19}' WHERE session_id = '$p'" >/dev/null
api GET "/v1/runs?session_id=$p&page=true"
expect_status 200
expect_json '(.items | length) == .pagination.total_count and .items[0].input_metadata.n == 10000000000000000000'
api GET /v1/sessions/$p
expect_status 200
expect_json '.capability_scope.n == 10000000000000000000'
api POST /v1/runs/$prun/cancel '{}'
expect_status 200
expect_json '.status == "cancelled"'

# Restart recovery, each run on its own. Three input runs in three sessions
# are running under a lease that expired: one poisoned as above, one whose
# interruption a trigger refuses (it is failed with the reason instead), one
# plain. All three leave `running`; a trigger refusing even the failure
# leaves that run alone and reports it, and the others still move.
strand() { # prints the id of a new run stranded under an expired lease
    local sid
    sid=$(uid)
    api POST /v1/sessions "{\"session_id\":\"$sid\"}"
    api POST /v1/sessions/$sid/runs '{"content":"stranded"}'
    q "SELECT kheish_run_set_status('$(jqr .run_id)', 'running', NULL, 'ghost-runner', 0)" >/dev/null
    jqr .run_id
}
r_poison=$(strand) r_refused=$(strand) r_plain=$(strand)
q "UPDATE runs SET payload = jsonb_set(payload, '{metadata}', '{\"n\":-1e20}') WHERE run_id = '$r_poison'" >/dev/null
refuse() { # STATUSES: a trigger refusing r_refused's move to any of them
    echo "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
          BEGIN IF NEW.run_id = '$r_refused' AND NEW.status IN ($1) THEN
              RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END \$\$;
          CREATE TRIGGER refuse BEFORE UPDATE ON runs FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();"
}
# Refusing everything, in a transaction rolled back: reported, left running.
out=$($PSQL -At <<SQL
BEGIN;
$(refuse "'interrupted', 'failed'")
SELECT kheish_recover_runs(100);
ROLLBACK;
SQL
)
echo "$out" | jq -e --arg r "$r_refused" '.interrupted >= 2 and (.failed | length) == 1
    and .failed[0].run_id == $r and .failed[0].left_running
    and (.failed[0].reason | contains("refused by the test"))' >/dev/null ||
    fail "recovery with a run that cannot move: $out"
# Refusing the interruption only: that run is failed with the reason.
out=$($PSQL -At <<SQL
$(refuse "'interrupted'")
SELECT kheish_recover_runs(100);
DROP TRIGGER refuse ON runs;
SQL
)
echo "$out" | jq -e --arg r "$r_refused" '.interrupted >= 2 and (.failed | length) == 1
    and .failed[0].run_id == $r and (.failed[0].left_running | not)' >/dev/null ||
    fail "recovery: $out"
[ "$(q "SELECT string_agg(status, ' ' ORDER BY run_id = '$r_refused', run_id) FROM runs
        WHERE run_id IN ('$r_poison', '$r_refused', '$r_plain')")" = "interrupted interrupted failed" ] ||
    fail "after recovery: $(q "SELECT run_id, status, error FROM runs WHERE run_id IN ('$r_poison', '$r_refused', '$r_plain')")"
q "SELECT error FROM runs WHERE run_id = '$r_refused'" | grep -q "could not interrupt it: refused by the test" ||
    fail "the failed run's reason: $(q "SELECT error FROM runs WHERE run_id = '$r_refused'")"

# A request whose client left while every worker was busy is not executed.
a=$(uid)
api POST /v1/sessions "{\"session_id\":\"$a\"}"
workers=$(pgrep -P "$(cat "$STATE_ROOT/run/fcgi.pid")")
kill -STOP $workers
curl -sS -m 1 -o /dev/null -X POST -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' --data '{"content":"nobody waits"}' \
    "$KHEISH_DAEMON_URL/v1/sessions/$a/runs" 2>/dev/null
sleep 0.5 # nginx notices its client left and closes the FastCGI connection
kill -CONT $workers
api GET /healthz # a worker has taken the abandoned request by the time this is answered
sleep 0.5
[ "$(q "SELECT count(*) FROM runs WHERE session_id = '$a'")" = 0 ] ||
    fail "an abandoned submission was executed"
grep -q '"status":499' "$STATE_ROOT/logs/fcgi.log" || fail "no 499 in the worker's log"
api POST /v1/sessions/$a/runs '{"content":"someone waits"}'
expect_status 202

# A malformed body's error gives a position, never the text near the fault.
secret="sk-live-$(uid)"
for b in "{\"content\":\"$secret\\q\"}" "{\"content\":\"$secret" "{\"$secret\":1,}" "{\"c\":$secret}"; do
    api POST /v1/sessions/$s/runs "$b"
    expect_problem 400 bad_request
    grep -q "$secret" "$BODY_FILE" && fail "the error quotes the body: $(body)"
    expect_json '.detail | test("at byte [0-9]+")'
done
api POST /v1/runtime/secrets "{\"slot_id\":\"x\",\"state\":{\"api_key\":\"$secret\\x\"}}"
expect_problem 400 bad_request
grep -q "$secret" "$BODY_FILE" && fail "the secrets endpoint's error quotes the body: $(body)"
grep -rq "$secret" "$STATE_ROOT/logs" && fail "a log holds the body's text"
