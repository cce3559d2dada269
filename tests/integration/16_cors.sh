# CORS, default loopback policy (contract §4): loopback origins get the CORS
# headers on every /v1 answer (auth errors included); any other origin is
# refused with 403 cors/origin_not_allowed and audited; preflights need no
# token. Source addresses come from 127.0.21.0/24.
audit=$STATE_ROOT/control-plane-auth/audit.jsonl

# Reads the last response's headers into H (lower-case names, CR stripped,
# repeated headers joined by ", ") and their counts into HN. No forks.
declare -A H HN
read_headers() {
    H=() HN=()
    local name value
    while IFS=: read -r name value; do
        value=${value# } value=${value%$'\r'} name=${name,,}
        [ -n "$value" ] || continue
        H[$name]=${H[$name]:+${H[$name]}, }$value
        HN[$name]=$((${HN[$name]:-0} + 1))
    done <"$HEADER_FILE"
}

# cors_headers LABEL ORIGIN: the last response carries the policy's headers, once each.
cors_headers() {
    read_headers
    local name want
    for name in access-control-allow-origin access-control-allow-methods access-control-allow-headers \
        access-control-max-age vary; do
        case $name in
        *origin) want=$2 ;;
        *methods) want=GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS ;;
        *headers) want=authorization,content-type,x-kheish-daemon-token,x-kheish-daemon-url ;;
        *max-age) want=600 ;;
        vary) want='origin, access-control-request-method, access-control-request-headers' ;;
        esac
        [ "${H[$name]-}" = "$want" ] && [ "${HN[$name]}" = 1 ] ||
            fail "$1: $name '${H[$name]-}' (x${HN[$name]:-0}), want '$want'"
    done
}

# no_cors LABEL: the last response has no Access-Control-* header.
no_cors() {
    read_headers
    local name
    for name in "${!H[@]}"; do
        case $name in access-control-*) fail "$1: unexpected $name: ${H[$name]}" ;; esac
    done
}

# Allowed origins: the answer is the normal one, plus the CORS headers; also on
# auth refusals (401 with its challenge, 403), router 404s and handler errors.
i=0
for o in http://localhost:3000 http://127.0.0.1 'https://[::1]:8443' http://localhost 'http://[::1]' \
    https://127.0.0.1:65535; do
    i=$((i + 1))
    ip=(--interface "127.0.21.$i")
    api GET /v1/capabilities '' "${ip[@]}" -H "Origin: $o"
    expect_status 200
    cors_headers "GET /v1/capabilities from $o" "$o"
    TOKEN= api GET /v1/capabilities '' "${ip[@]}" -H "Origin: $o"
    expect_problem 401 missing_token auth
    cors_headers "401 from $o" "$o"
    [ "${H[www-authenticate]-}" = 'Bearer realm="kheish-daemon"' ] || fail "401 from $o: no challenge"
done
o=http://localhost:3000 ip=(--interface 127.0.21.20)
TOKEN=wrong-$(uid) api GET /v1/runs '' "${ip[@]}" -H "Origin: $o"
expect_problem 401 invalid_token auth
cors_headers "invalid_token" "$o"
TOKEN=$READONLY_TOKEN api GET /v1/runtime/revisions '' "${ip[@]}" -H "Origin: $o"
expect_problem 403 insufficient_access auth
cors_headers "insufficient_access" "$o"
TOKEN=$READONLY_TOKEN api GET /v1/sessions '' "${ip[@]}" -H "Origin: $o"
expect_status 200
cors_headers "read-only GET" "$o"
api GET /v1/nothing '' "${ip[@]}" -H "Origin: $o"
expect_problem 404 route_not_found api
cors_headers "route_not_found" "$o"
api POST /v1/sessions '{"session_id":""}' "${ip[@]}" -H "Origin: $o"
expect_status 400
cors_headers "handler 400" "$o"

# Without Origin: no CORS headers, whatever the answer.
api GET /v1/status '' "${ip[@]}"
expect_status 200
no_cors "GET without Origin"
TOKEN= api GET /v1/status '' "${ip[@]}"
expect_status 401
no_cors "401 without Origin"

# Other origins: 403 cors/origin_not_allowed before auth (the admin token does
# not help), no CORS header, and one audit line and one auth_audit row each.
# audit_keys ARRAY: counts the file's lines and the table's rows of refused GET
# /v1/status origins, by "file|db ORIGIN ADDRESS".
audit_keys() {
    local -n into=$1
    local key
    into=()
    while IFS= read -r key; do
        into[$key]=$((${into[$key]:-0} + 1))
    done < <(
        jq -r 'select(.event == "cors_origin_rejected" and .reason == "origin_not_allowed" and
            .method == "GET" and .path == "/v1/status" and (has("required_access") | not)) |
            "file \(.origin) \(.remote_addr // "" | split(":")[0])"' "$audit"
        $PSQL -Atc "SELECT 'db ' || origin || ' ' || split_part(remote_addr, ':', 1) FROM auth_audit
            WHERE event = 'cors_origin_rejected' AND reason = 'origin_not_allowed' AND method = 'GET'
            AND path = '/v1/status' AND required_access IS NULL"
    )
}
declare -A before_audit after_audit
audit_keys before_audit
refused=(http://evil.example http://localhost.evil.example http://localhost:3000/path null
    http://127.0.0.1:99999 ftp://localhost 'http://[::2]' http://127.0.0.2 'http://localhost:3000?x=1')
i=100
for o in "${refused[@]}"; do
    i=$((i + 1))
    api GET /v1/status '' --interface 127.0.21.$i -H "Origin: $o"
    expect_problem 403 origin_not_allowed cors
    no_cors "refused origin $o"
done
audit_keys after_audit
i=100
for o in "${refused[@]}"; do
    i=$((i + 1))
    for k in "file $o 127.0.21.$i" "db $o 127.0.21.$i"; do
        [ "${after_audit[$k]:-0}" = $((${before_audit[$k]:-0} + 1)) ] ||
            fail "origin $o: ${after_audit[$k]:-0} ${k%% *} audit records, want $((${before_audit[$k]:-0} + 1))"
    done
done
ip=(--interface 127.0.21.120)
before=$(row_counts)
api POST /v1/sessions "{\"session_id\":\"$(uid)\"}" "${ip[@]}" -H 'Origin: http://evil.example'
expect_problem 403 origin_not_allowed cors
[ "$(row_counts)" = "$before" ] || fail "a refused origin's POST changed row counts"
TOKEN= api GET /v1/status '' "${ip[@]}" -H 'Origin: http://evil.example'
expect_problem 403 origin_not_allowed cors
[ "$(header WWW-Authenticate)" = "" ] || fail "a refused origin gets an auth challenge"
[ "$(stat -c %a "$audit")" = 600 ] || fail "$audit mode $(stat -c %a "$audit"), want 600"

# Preflight: no token needed, 204 with the CORS headers, never reaches a handler.
ip=(--interface 127.0.21.121)
before=$(row_counts)
for p in /v1/status /v1/sessions /v1/runtime/revisions /v1/nothing; do
    TOKEN= api OPTIONS $p '' "${ip[@]}" -H 'Origin: http://localhost:3000' \
        -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization,content-type'
    expect_status 204
    cors_headers "preflight $p" http://localhost:3000
done
[ "$(row_counts)" = "$before" ] || fail "a preflight changed row counts"
TOKEN= api OPTIONS /v1/status '' "${ip[@]}" -H 'Origin: http://evil.example' -H 'Access-Control-Request-Method: POST'
expect_problem 403 origin_not_allowed cors
no_cors "preflight from http://evil.example"

# nginx adds no CORS header of its own: its catch-all 404 has none.
api GET /nothing '' "${ip[@]}" -H 'Origin: http://localhost:3000'
expect_status 404
no_cors "nginx 404"
