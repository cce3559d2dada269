# Auth matrix (contract §4): every endpoint x {no token, three malformed
# headers, wrong token, read-only token, admin token} gets the contract's status
# and problem code. Each row uses its own source address in 127.0.20.0/24, so no
# (reason, address) bucket comes near the 60-failures rate limit.
s=$(uid) s2=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
expect_status 201
api POST /v1/sessions "{\"session_id\":\"$s2\"}"
expect_status 201
api POST /v1/sessions/$s/runs '{"content":"auth matrix"}'
expect_status 202
r=$(jqr .run_id)
api GET /v1/runtime
mode=$(jqr .permission_mode) level=$(jqr .debug_level)

# METHOD|PATH|BODY|RO|ADMIN: RO=1 when the read-only token may use it (it then
# gets the admin's answer); ADMIN is the handler's status[:problem code]. Admin
# writes are no-ops for later tests (same mode and level, unknown rollback target).
matrix=(
    # Every route of fcgi/router.c.
    "GET|/v1/status||1|200"
    "GET|/v1/capabilities||1|200"
    "POST|/v1/sessions|{\"session_id\":\"$(uid)\"}|0|201"
    "GET|/v1/sessions||1|200"
    "GET|/v1/sessions/$s||1|200"
    "GET|/v1/sessions/$s/events||1|200"
    "POST|/v1/sessions/$s/runs|{\"content\":\"matrix\"}|0|202"
    "POST|/v1/sessions/$s2/interrupt||0|200"
    "POST|/v1/sessions/$s2/end|{\"reason\":\"matrix\"}|0|200"
    "GET|/v1/runs||1|200"
    "GET|/v1/runs/$r||1|200"
    "GET|/v1/runs/$r/events||1|200"
    "POST|/v1/runs/$r/cancel||0|200"
    "GET|/v1/runtime||1|200"
    "POST|/v1/runtime/permission-mode|{\"mode\":\"$mode\"}|0|200"
    "POST|/v1/runtime/debug-level|{\"level\":\"$level\"}|0|200"
    "GET|/v1/runtime/revisions||0|200"
    "POST|/v1/runtime/rollback|{\"target_revision\":999999}|0|404:runtime_revision_not_found"
    "GET|/v1/runtime/secrets||0|200"
    "POST|/v1/runtime/secrets|{}|0|400:bad_request"
    "GET|/v1/runtime/secrets/x||0|404:secret_not_found"
    "DELETE|/v1/runtime/secrets/x||0|404:secret_not_found"
    "POST|/v1/runtime/auth/slots/x/revoke||0|404:secret_not_found"
    "GET|/v1/runtime/auth/subjects/x||0|400:bad_request"
    "GET|/v1/runtime/auth/subjects/agent:x||0|404:subject_not_found"
    "POST|/v1/runtime/auth/subjects/agent:matrix/revoke||0|200"
    "GET|/v1/runtime/auth/leases/x||0|404:lease_not_found"
    "POST|/v1/runtime/auth/leases/x/revoke||0|404:lease_not_found"
    # Other methods on routes: admin-only, then 405 from the router.
    "DELETE|/v1/sessions/$s||0|405:method_not_allowed"
    "PUT|/v1/runtime|{}|0|405:method_not_allowed"
    "GET|/v1/runs/$r/cancel||0|405:method_not_allowed"
    # The contract's admin-only GETs that are no route yet, and unlisted GETs.
    "GET|/v1/runtime/hooks||0|404:route_not_found"
    "GET|/v1/runs/$r/debug||0|404:route_not_found"
    "GET|/v1/assets/x/raw||0|404:route_not_found"
    "GET|/v1/stacks||0|404:route_not_found"
    "GET|/v1/stacks/x/ledger||0|404:route_not_found"
    "GET|/v1/runtime/auth/accounts||0|404:route_not_found"
    "GET|/v1/runtime/unknown||0|404:route_not_found"
    "GET|/v1/sessions/||0|404:route_not_found"
    "GET|/v1/runs/$r/events/x||0|404:route_not_found"
    # Read-only allowlisted paths that are no route yet.
    "GET|/v1/questions||1|404:route_not_found"
    "GET|/v1/deliveries||1|404:route_not_found"
    "GET|/v1/deliveries/dead-letter||1|404:route_not_found"
    "GET|/v1/sessions/$s/tasks||1|404:route_not_found"
    "GET|/v1/agents||1|404:route_not_found"
)

# The cells run as one curl process (its transfers go out in order, one per
# --next): a process per cell costs more than the 20 s budget on a loaded host.
# Each transfer writes its body to $dir/bK and a line "K<TAB>status<TAB>
# content type<TAB>WWW-Authenticate" to stdout; want[K] is the expectation:
# "auth STATUS CODE" (a problem of domain auth) or "ok STATUS[:CODE]".
dir=$RESP_DIR/matrix
mkdir -p "$dir"
args=() label=() want=() k=0
cell() { # LABEL WANT METHOD PATH BODY ADDRESS [curl args...]
    local m=$3 p=$4 b=$5 ip=$6
    k=$((k + 1))
    label[k]=$1 want[k]=$2
    [ $k = 1 ] || args+=(--next)
    args+=(-sS --max-time 10 -X "$m" --interface "$ip" -o "$dir/b$k"
        -w "$k\t%{response_code}\t%{content_type}\t%header{www-authenticate}\n")
    [ -z "$b" ] || args+=(-H 'Content-Type: application/json' --data-binary "$b")
    shift 6
    args+=("$@" "$KHEISH_DAEMON_URL$p")
}

wrong=wrong-$(uid)
i=0
for row in "${matrix[@]}"; do
    IFS='|' read -r m p b ro ok <<<"$row"
    i=$((i + 1))
    set -- "$m" "$p" "$b" 127.0.20.$i
    cell "$m $p [no token]" "auth 401 missing_token" "$@"
    for h in 'Basic abc' 'Bearer' 'Bearer a b'; do
        cell "$m $p [Authorization: $h]" "auth 401 malformed_token" "$@" -H "Authorization: $h"
    done
    cell "$m $p [wrong token]" "auth 401 invalid_token" "$@" -H "Authorization: Bearer $wrong"
    if [ "$ro" = 1 ]; then
        cell "$m $p [read-only]" "ok $ok" "$@" -H "Authorization: Bearer $READONLY_TOKEN"
    else
        cell "$m $p [read-only]" "auth 403 insufficient_access" "$@" -H "Authorization: Bearer $READONLY_TOKEN"
    fi
    cell "$m $p [admin]" "ok $ok" "$@" -H "Authorization: Bearer $ADMIN_TOKEN"
done

declare -A got doc
while IFS=$'\t' read -r n st ct wa; do
    got[$n]="$st"$'\t'"$ct"$'\t'"${wa%$'\r'}"
done < <(curl "${args[@]}")
# Every body is compact JSON on one line: feed them to one jq as "K<TAB>body"
# lines; it answers K, status, code, domain, type, and the title when the
# detail is a string.
for n in $(seq $k); do
    IFS= read -r line <"$dir/b$n" || true
    printf '%s\t%s\n' "$n" "$line"
done >"$dir/all"
while IFS=$'\t' read -r n rest; do
    doc[$n]=$rest
done < <(jq -Rr 'index("\t") as $i | (.[$i + 1:] | try fromjson catch null) as $d |
    [.[:$i]] + if ($d | type) == "object" then
        [$d.status, $d.code, $d.domain, $d.type,
         (if ($d.detail | type) == "string" then $d.title else "no detail" end)]
        | map(. // "" | tostring)
    else ["", "", "", "", ""] end | @tsv' "$dir/all")

for n in $(seq $k); do
    IFS=$'\t' read -r st ct wa <<<"${got[$n]-}"
    IFS=$'\t' read -r bs bc bd bt btitle <<<"${doc[$n]-}"
    read -r kind ws wc <<<"${want[$n]}"
    err=
    if [ "$kind" = auth ]; then
        [ "$st" = "$ws" ] || err+=" status ${st:-none};"
        case "$ct" in application/problem+json*) ;; *) err+=" content type '$ct';" ;; esac
        title=Unauthorized
        [ "$ws" = 401 ] || title=Forbidden
        [ "$bs $bc $bd $bt $btitle" = "$ws $wc auth urn:kheish:problem:$wc $title" ] ||
            err+=" body $(head -c 200 "$dir/b$n");"
        [ "$ws" != 401 ] || [ "$wa" = 'Bearer realm="kheish-daemon"' ] || err+=" WWW-Authenticate '$wa';"
    else
        wc=${ws#*:} ws=${ws%%:*}
        [ "$st" = "$ws" ] || err+=" status ${st:-none};"
        [ "$wc" = "$ws" ] || [ "$bc" = "$wc" ] || err+=" code '$bc', want $wc;"
        [ "$bd" != auth ] || err+=" an auth problem;"
        [ -z "$err" ] || err+=" body $(head -c 200 "$dir/b$n");"
    fi
    [ -z "$err" ] || fail "${label[n]}:$err"
done

# HEAD follows the GET allowlist; the bearer scheme is case-insensitive and the
# token trimmed.
ip=(--interface 127.0.20.200)
TOKEN=$READONLY_TOKEN api HEAD /v1/status '' -I "${ip[@]}"
expect_status 200
TOKEN=$READONLY_TOKEN api HEAD /v1/sessions/$s '' -I "${ip[@]}"
expect_status 200
TOKEN=$READONLY_TOKEN api HEAD /v1/runtime/revisions '' -I "${ip[@]}"
expect_status 403
TOKEN= api HEAD /v1/status '' -I "${ip[@]}"
expect_status 401
[ "$(header WWW-Authenticate)" = 'Bearer realm="kheish-daemon"' ] || fail "HEAD 401 without challenge"
TOKEN= api GET /v1/runtime/revisions '' "${ip[@]}" -H "Authorization: bearer $ADMIN_TOKEN"
expect_status 200
TOKEN= api GET /v1/status '' "${ip[@]}" -H "Authorization: BEARER   $READONLY_TOKEN  "
expect_status 200

# Probes are outside the gate: no token, or a bad one, is fine.
for p in /healthz /readyz; do
    for h in '' 'Authorization: Basic abc' "Authorization: Bearer $wrong"; do
        TOKEN= api GET $p '' "${ip[@]}" ${h:+-H "$h"}
        [ "$STATUS" = 200 ] || fail "GET $p [${h:-no token}]: $STATUS $(body)"
    done
done

# A refused write changes nothing.
before=$(row_counts)
n=$(uid)
for t in "$wrong" "$READONLY_TOKEN" ""; do
    refusal=401
    [ "$t" != "$READONLY_TOKEN" ] || refusal=403
    TOKEN=$t api POST /v1/sessions "{\"session_id\":\"$n\"}" "${ip[@]}"
    [ "$STATUS" = $refusal ] || fail "refused session create: $STATUS, want $refusal"
    TOKEN=$t api POST /v1/sessions/$s/runs '{"content":"refused"}' "${ip[@]}"
    [ "$STATUS" = $refusal ] || fail "refused run submit: $STATUS, want $refusal"
done
[ "$(row_counts)" = "$before" ] || fail "refused writes changed row counts: $before -> $(row_counts)"
api GET /v1/sessions/$n
expect_status 404

# Refusals are audited with the access they lacked; no token bytes ever reach
# the audit file.
[ "$($PSQL -Atc "SELECT count(*) FROM auth_audit WHERE event = 'auth_failure' AND method = 'GET'
    AND path = '/v1/runtime/unknown' AND reason = 'insufficient_access' AND required_access = 'admin'
    AND remote_addr LIKE '127.0.20.%'")" -ge 1 ] || fail "no auth_audit row for a read-only refusal"
audit=$STATE_ROOT/control-plane-auth/audit.jsonl
[ -s "$audit" ] || fail "no audit file"
for t in "$ADMIN_TOKEN" "$READONLY_TOKEN" "$wrong"; do
    ! grep -qF -- "$t" "$audit" || fail "a token appears in $audit"
done
