# Issue 11.9: a secret's request body never touches disk. nginx keeps the
# whole body of /v1/runtime/secrets in memory (client_body_buffer_size equal
# to its client_max_body_size, 128 KiB) where other locations spool bodies
# over their buffer to client_body_temp_path. nginx says when it spools: a
# warn line "a client request body is buffered to a temporary file" in its
# error log (the embedded config logs at warn).
LIMIT=$((128 * 1024))
LOG=$STATE_ROOT/nginx/logs/error.log
spooled() { grep -c 'client request body is buffered to a temporary file' "$LOG"; }
SECRET="sk-test-$(uid)-PLAINTEXT"
ref=$(uid)

# A valid record padded with whitespace to one byte under the limit.
record="\"slot_id\":\"$ref\",\"provider\":\"generic\",\"mode\":\"opaque_secret\",\"state\":{\"value\":\"$SECRET\"}}"
f=$RESP_DIR/secret.json
{
    printf '{'
    head -c $((LIMIT - 2 - ${#record})) /dev/zero | tr '\0' ' '
    printf '%s' "$record"
} >"$f"
[ "$(stat -c %s "$f")" = $((LIMIT - 1)) ] || fail "the body is $(stat -c %s "$f") bytes"
post() { # PATH FILE
    api POST "$1" "" -H 'Content-Type: application/json' --data-binary "@$2"
}

# The same body to a location that may spool it: the evidence is live.
before=$(spooled)
post /v1/sessions "$f"
[ "$(spooled)" -gt "$before" ] || fail "nginx did not log spooling a $((LIMIT - 1))-byte body to /v1/sessions"

before=$(spooled)
post /v1/runtime/secrets "$f"
expect_status 200
[ "$(spooled)" = "$before" ] || fail "the secret body was buffered to a temporary file: $(tail -n 1 "$LOG")"
grep -rq "$SECRET" "$STATE_ROOT/nginx" && fail "the secret is in a file under nginx/"

# One byte over the limit: refused by nginx before any worker sees it.
printf '  ' >>"$f"
post /v1/runtime/secrets "$f"
expect_problem 413 payload_too_large
[ "$(spooled)" = "$before" ] || fail "the refused secret body was buffered to a temporary file"
api GET /v1/runtime/secrets/$ref
expect_status 200
