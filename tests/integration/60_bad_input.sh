# Bad input: every malformed request is a 4xx problem+json and changes nothing.
s=$(uid)
api POST /v1/sessions "{\"session_id\":\"$s\"}"
api POST /v1/sessions/$s/runs '{"content":"x"}'
run=$(jqr .run_id)
before=$(row_counts)

bad() { # EXPECTED-STATUS METHOD PATH BODY [curl args]
    local want=$1
    shift
    api "$@"
    expect_problem "$want" "$(jq -r .code "$BODY_FILE" 2>/dev/null)"
}

bad 404 GET /v1/nope ''
expect_json '.code == "route_not_found" and .domain == "api"'
bad 404 GET /v1/sessions/$s/nope ''
bad 405 DELETE /v1/sessions ''
case "$(header Allow)" in "GET, POST" | "POST, GET") ;; *) fail "405 Allow header: $(header Allow)" ;; esac
bad 405 PUT /v1/runs/$run ''

# Malformed JSON, wrong shapes and types, unknown fields and enum values.
for body in '{' '[]' '"text"' '{"content":' '{"content":1}' '{"content":null,"x":1}' \
    '{"generation":{"max_output_tokens":"10"}}' '{"generation":{"max_output_tokens":0}}' \
    '{"generation":{"max_output_tokens":1e400}}' '{"generation":{"temperature":99}}' \
    '{"generation":{"tool_choice":"sometimes"}}' '{"generation":{"tool_choice":{"type":"weird"}}}' \
    '{"metadata":[]}' '{"input_items":[{"type":"video"}]}' '{"content":"a","content":"b"}' \
    '{"content":"a","input_items":[{"type":"text","text":"b"}]}' '{"content":"\u0000"}' \
    '{"binding_keys":[1]}' '{"idempotency_key":""}'; do
    bad 400 POST /v1/sessions/$s/runs "$body"
done
for body in '{"session_id":""}' '{"session_id":"."}' '{"session_id":".."}' '{"session_id":"../etc"}' \
    '{"session_id":"a/b"}' '{"session_id":"a b"}' '{"session_id":true}' '{"session_id":{}}' \
    "{\"session_id\":\"$(printf 'x%.0s' $(seq 200))\"}"; do
    bad 400 POST /v1/sessions "$body"
done
bad 400 POST /v1/runtime/debug-level '{"level":"full","extra":true}'
bad 400 POST /v1/runtime/rollback '{"target_revision":-1}'
bad 400 POST /v1/runs/$run/cancel '{"force":true}'

# Invalid UTF-8 and NUL bytes in the body.
api POST /v1/sessions/$s/runs "$(printf '{"content":"\xff\xfe"}')"
expect_problem 400 bad_request
printf '{"content":"a\0b"}' >"$RESP_DIR/nul.json"
api POST /v1/sessions/$s/runs '' --data-binary @"$RESP_DIR/nul.json" -H 'Content-Type: application/json'
expect_problem 400 bad_request

# Path traversal and hostile ids in paths and queries.
for path in "/v1/sessions/..%2F..%2Fetc%2Fpasswd" "/v1/sessions/%2e%2e" "/v1/runs/run-1%00" \
    "/v1/runs/%FF%FE" "/v1/sessions/$(printf 'y%.0s' $(seq 200))"; do
    api GET "$path"
    case "$STATUS" in 4??) ;; *) fail "GET $path gave $STATUS" ;; esac
    expect_json '(.code | type) == "string"'
done
api GET "/v1/runs?session_id=%FF"
expect_problem 400 bad_request
api GET "/v1/runs?limit=99999999999999999999999"
expect_problem 400 invalid_limit
api GET "/v1/runs?limit=1&limit=2"
expect_problem 400 bad_request

# Bodies over the limit: the worker's 2 MiB and the proxy's ceiling.
head -c $((2 * 1024 * 1024 + 10)) /dev/zero | tr '\0' 'a' | sed 's/^/{"content":"/; s/$/"}/' >"$RESP_DIR/big.json"
api POST /v1/sessions/$s/runs '' --data-binary @"$RESP_DIR/big.json" -H 'Content-Type: application/json'
expect_problem 413 payload_too_large
head -c $((10 * 1024 * 1024)) /dev/zero >"$RESP_DIR/huge.bin"
api POST /v1/sessions/$s/runs '' --data-binary @"$RESP_DIR/huge.bin" -H 'Content-Type: application/json'
expect_problem 413 payload_too_large
# Hostile headers.
api POST /v1/sessions/$s/runs '{"content":"x"}' -H "Idempotency-Key: $(printf 'k%.0s' $(seq 300))"
expect_problem 400 invalid_idempotency_key

[ "$(row_counts)" = "$before" ] || fail "bad input changed rows: $before -> $(row_counts)"
api GET /healthz
expect_status 200
