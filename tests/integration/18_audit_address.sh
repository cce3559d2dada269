# The relays trust X-Real-IP (issue 11, point 7): they listen only on unix
# sockets that nginx's workers alone may open (0660, nginx's group), never on
# a TCP port; and a client address that is no IPv4 or IPv6 address is
# recorded as the marker "invalid", never as the header's text (quotes, RTL
# overrides), in the audit file and rows alike.
AUDIT=$STATE_ROOT/control-plane-auth/audit.jsonl
for i in 1 2; do
    pid=$(cat "$STATE_ROOT/run/relay-$i.pid")
    sock=$STATE_ROOT/run/relay-$i.sock
    [ -S "$sock" ] || fail "relay $i has no socket $sock"
    [ "$(stat -c %a "$sock")" = 660 ] || fail "$sock is $(stat -c %a "$sock")"
    ss -ltnpH | grep -q "pid=$pid," && fail "relay $i listens on a TCP port: $(ss -ltnpH | grep "pid=$pid,")"
done

# relay_fail X-REAL-IP: a request with a wrong token, straight to relay 1's
# socket as nginx would send it, with that X-Real-IP.
relay_fail() {
    curl -s -m 2 -o /dev/null -w '%{http_code}' --unix-socket "$STATE_ROOT/run/relay-1.sock" \
        -H "Authorization: Bearer wrong-$(uid)" -H "X-Real-IP: $1" -H 'X-Real-Port: 4242' \
        http://relay/v1/events/stream
}
mark=$(uid)
hostile=("1.2.3.4\" $mark" "$mark\",\"forged\":\"x" "$(printf '10.0.0.1\xe2\x80\xae%s' "$mark")" "::1 $mark")
before=$($PSQL -Atc "SELECT coalesce(max(id), 0) FROM auth_audit")
for h in "${hostile[@]}"; do
    [ "$(relay_fail "$h")" = 401 ] || fail "X-Real-IP '$h': not a 401"
done
[ "$(relay_fail 2001:db8::7)" = 401 ] || fail "an IPv6 X-Real-IP: not a 401"
grep -q "$mark" "$AUDIT" && fail "the header's text reached $AUDIT: $(grep "$mark" "$AUDIT" | head -2)"
grep -q "$(printf '\xe2\x80\xae')" "$AUDIT" && fail "an RTL override reached $AUDIT"
rows=$($PSQL -Atc "SELECT remote_addr FROM auth_audit WHERE id > $before ORDER BY id" | tr '\n' ' ')
[ "$rows" = "invalid invalid invalid invalid [2001:db8::7]:4242 " ] || fail "audit rows' addresses: $rows"
