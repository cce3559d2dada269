#!/usr/bin/env bash
# The SLO probe (issue 13, point 6): what a monitoring job would poll. A
# serve stack with one route whose key sits in a slot (set offline before
# the start) and points at the mock provider; then status, doctor and
# doctor routes --check-auth, with the admin token and the read-only one a
# probe would hold. Every SLO field of the status tree (tests/smoke/slo_fields.txt)
# must be there with its type, and say "healthy" on a fresh stack; a run in
# flight and a debug level at full must show in them, and go away again.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib.sh
. tests/smoke/lib.sh

# slo_check FILE: the status document FILE against slo_fields.txt. Prints
# `BAD <path> ...` for a field missing or of the wrong type, `LATER <path>`
# for one this build does not have yet.
slo_check() {
    jq -r --rawfile spec tests/smoke/slo_fields.txt '
        def at($segs; $p):
            if ($segs | length) == 0 then {p: $p, v: .}
            elif ($segs[0] | endswith("[]")) then
                ($segs[0][:-2]) as $k | (if type == "object" then .[$k] else null end) as $a
                | if ($a | type) == "array" then
                      range(0; $a | length) as $i | $a[$i] | at($segs[1:]; "\($p).\($k)[\($i)]")
                  else {p: "\($p).\($k)", v: $a, no_array: true} end
            else (if type == "object" then .[$segs[0]] else null end) | at($segs[1:]; "\($p).\($segs[0])")
            end;
        . as $doc
        | $spec | split("\n")[] | select(test("^[~a-z]"))
        | (capture("^(?<later>~?)(?<path>[a-z_.\\[\\]]+) (?<type>[a-z]+)(?<opt>\\??)$")
           // error("slo_fields.txt: bad line: \(.)")) as $f
        | [$doc | at($f.path | split("."); "")] as $found
        | ([$found[] | select(.v != null)] | length) as $present
        | if $f.later == "~" and $present == 0 then "LATER \($f.path)"
          else $found[]
               | select(if .no_array then .v != null or ($f.opt == "" and $f.later == "")
                        else (.v | type) != $f.type and (.v != null or ($f.opt == "" and $f.later == "")) end)
               | "BAD \(.p[1:]): \(.v | type), wanted \($f.type)\($f.opt)"
          end' "$1"
}

# expect_slo_fields FILE: slo_check finds nothing wrong, and health.ok
# holds exactly when every warning is only info (contract §1.2).
expect_slo_fields() {
    slo_check "$1" >"$RESP_DIR/slo" || fail "slo_check $1 failed"
    grep '^BAD' "$RESP_DIR/slo" >"$RESP_DIR/bad" && fail "SLO fields of ${1##*/}: $(cat "$RESP_DIR/bad")"
    jq -e '.health.ok == all(.health.warnings[]; .severity == "info")' "$1" >/dev/null ||
        fail "health.ok contradicts the warnings in ${1##*/}: $(jq -c .health "$1")"
}

smoke_up slo "sk-slo-$(uid)$(uid)" || exit 1

keep status status
expect_slo_fields "$KEPT"
# What is missing is said (a block the tree lacks as a whole by its name).
sed -n 's/^LATER //p' "$RESP_DIR/slo" | while read -r path; do
    jq -e --arg b "${path%%.*}" 'has($b)' "$KEPT" >/dev/null && echo "$path" || echo "${path%%.*}"
done | uniq | tr '\n' ' ' | sed 's/^/note: contract fields not in this build: /; s/ $/\n/'
# A fresh stack says healthy, in every part an SLO watches.
expect_kept '.status == "ready" and .ready == true' '{status, ready}'
expect_kept '.health.ok == true and .health.warnings == [] and .health.route_error_count == 0' .health
expect_kept '.storage.ok == true and .storage.write_error_count == 0 and
    ([.storage.probes[].name] | sort) == ["database", "state_root", "workspace_root"] and
    all(.storage.probes[]; .state == "ok" and .writable == true) and
    .storage.master_key.inside_state_root == false' .storage
expect_kept '.provider_readiness | .active_route_ready == true and .error_route_count == 0 and
    .route_count == 1 and .ready_route_count == 1 and .routes[0].code == "route_auth_ready"' .provider_readiness
expect_kept '.runs | .queued == 0 and .running == 0 and .waiting_for_approval == 0 and
    .waiting_for_user_question == 0 and .failed == 0 and .stale_non_terminal_run_count == 0' .runs
expect_kept '(.delivery.unresolved_dead_lettered // 0) == 0' .delivery
expect_kept '.runtime.debug_level != "full"' .runtime.debug_level
expect_kept '.control_plane | .auth_enabled == true and .bind_is_loopback == true and
    .bind_is_unspecified == false and .externally_exposed_without_auth == false and
    .read_only_token_enabled == true and .auth_token_file_count == 2 and
    .auth_token_file_error_count == 0 and .auth_duplicate_token == false' .control_plane
expect_kept '.events.replay_gap_count == 0 and .events.stream_lagged_event_count == 0' .events

keep doctor doctor
expect_kept '.ok == true and .errors == [] and .readyz_reachable and .events_stream_reachable'
keep doctor-cors doctor --cors-origin http://localhost:5173
expect_kept '.ok == true and any(.checks[]; .name == "control_plane_cors" and .ok)'
keep doctor-routes-auth doctor routes --check-auth
expect_kept '.ok == true and .auth_checked == true and .diagnostics == [] and .route_count == 1'

# A monitoring job holds the read-only token: status and doctor answer it
# the same.
cli_as "$READONLY" status >"$EVIDENCE/status-readonly.json" || fail "status with the read-only token: exit $?"
expect_slo_fields "$EVIDENCE/status-readonly.json"
cli_as "$READONLY" doctor >"$EVIDENCE/doctor-readonly.json" ||
    fail "doctor with the read-only token: exit $?: $(jq -c .errors "$EVIDENCE/doctor-readonly.json")"

# A run in flight fills the optional run fields, with their types.
cli sessions create slo-probe >/dev/null || fail "sessions create"
hung_run submit slo-probe
keep status-running status
expect_slo_fields "$KEPT"
expect_kept '.runs.running == 1 and .runs.oldest_non_terminal_run_id == "'"$HUNG"'" and
    (.runs.oldest_non_terminal_run_age_ms | type) == "number" and .sessions.total >= 1 and
    (.events.newest_event_id | type) == "string"' '{runs, sessions, events}'
keep cancel runs cancel "$HUNG"
expect_kept '.status == "cancelled"' .status

# debug_level full is an SLO breach: the status shows it and doctor fails;
# back to off, doctor is clean again. (The contract's health warning
# debug_capture_full is not raised by this build: reported, not asserted.)
keep debug-full runtime set-debug-level full
keep status-debug-full status
expect_slo_fields "$KEPT"
expect_kept '.runtime.debug_level == "full"' .runtime.debug_level
cli doctor >"$EVIDENCE/doctor-debug-full.json"
[ $? = 1 ] && jq -e 'any(.checks[]; .name == "debug_level" and .severity == "error")' \
    "$EVIDENCE/doctor-debug-full.json" >/dev/null || fail "doctor with debug level full did not fail on it"
keep debug-off runtime set-debug-level off
keep status-after status
expect_slo_fields "$KEPT"
expect_kept '.health.ok == true and .runs.running == 0 and .runs.cancelled == 1' '{health, runs}'
keep doctor-after doctor

smoke_serve_stop
smoke_end
