#!/usr/bin/env bash
# The Authority steps of `make demo`, on the demo site (no network: a
# stand-in issuer on loopback, tools/authtest, with its committed TEST key):
#
#   1. the cache as a kit left it: `offkit authority status`
#   2. a manual synchronisation: `offkit authority refresh` from the issuer
#   3. offkit serve with serve.yaml authority: and a protected mirror route
#      (the example kit's Concelier export): 401 without a token, 200 with
#      one; one audit line per request
#
# usage: demo-authority.sh OFFKIT ROOT
set -euo pipefail
OFFKIT=$1 ROOT=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
demo=$(dirname "$ROOT")
key=$repo/tools/authtest/testdata/demo-issuer.jwk
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"' EXIT

fail() {
	echo "demo: $*" >&2
	for f in "$tmp"/*.log; do
		[[ -s $f ]] && { echo "--- $f:" >&2; cat "$f" >&2; }
	done
	exit 1
}
# wait_for FILE SED-EXPR PID: the first match of SED-EXPR in FILE, or fail.
wait_for() {
	local v=
	for _ in $(seq 100); do
		v=$(sed -n "$2" "$1" | head -1)
		[[ -n $v ]] && { echo "$v"; return; }
		kill -0 "$3" 2>/dev/null || fail "$(basename "$1" .log) exited"
		sleep 0.1
	done
	fail "$(basename "$1" .log) did not start within 10 s"
}

(cd "$repo" && go build -o "$tmp/authtest" ./tools/authtest)

echo '$ offkit authority status --root site     # the snapshot the stellaops-authority kit carried'
"$OFFKIT" authority status --root "$ROOT"
echo

"$tmp/authtest" serve -key "$key" >"$tmp/issuer.log" 2>&1 &
pids+=($!)
issuer=$(wait_for "$tmp/issuer.log" 's/^issuer \(http:[^ ]*\)$/\1/p' "${pids[-1]}")

echo "\$ offkit authority refresh --root site --issuer $issuer --allow-loopback-http"
"$OFFKIT" authority refresh --root "$ROOT" --issuer "$issuer" --allow-loopback-http
echo
echo "\$ offkit authority status --root site --issuer $issuer"
"$OFFKIT" authority status --root "$ROOT" --issuer "$issuer"
echo

cat >"$demo/serve-authority.yaml" <<YAML
listen: 127.0.0.1:0
mirror:
  concelier:
    requireAuthentication: true
authority:
  enabled: true
  allowAnonymousFallback: false
  issuer: "$issuer"
  allowLoopbackHttp: true
  audiences: ["api://concelier"]
  requiredScopes: ["concelier.mirror.read"]
  bypassNetworks: []
  tokenClockSkewSeconds: 60
  resilience:
    enableRetries: true
    retryDelays: ["00:00:01", "00:00:02", "00:00:05"]
    allowOfflineCacheFallback: true
    offlineCacheTolerance: "00:30:00"
YAML
"$OFFKIT" serve --root "$ROOT" --config "$demo/serve-authority.yaml" 2>"$tmp/serve.log" &
pids+=($!)
addr=$(wait_for "$tmp/serve.log" 's|.*msg=serving address=http://\([^ ]*\).*|\1|p' "${pids[-1]}")
for _ in $(seq 50); do
	[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz") == 200 ]] && break
	sleep 0.1
done
route=/concelier/exports/index.json

code=$(curl -sS -D "$tmp/h" -o "$tmp/body" -w '%{http_code}' "http://$addr$route")
echo "\$ curl -i http://$addr$route"
echo "HTTP $code"
grep -i '^www-authenticate' "$tmp/h" | tr -d '\r'
cat "$tmp/body"
[[ $code == 401 ]] || fail "without a token: HTTP $code, want 401"
grep -qi '^www-authenticate: Bearer' "$tmp/h" || fail "401 without WWW-Authenticate: Bearer"

token=$("$tmp/authtest" token -key "$key" -issuer "$issuer" -scope concelier.mirror.read)
code=$(curl -sS -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $token" "http://$addr$route")
echo
echo "\$ curl -i -H 'Authorization: Bearer <token from tools/authtest>' http://$addr$route"
echo "HTTP $code"
head -c 400 "$tmp/body"
echo
[[ $code == 200 ]] || fail "with a token: HTTP $code, want 200"

echo
echo '$ grep offkit.authorization.audit serve.log'
grep 'logger=offkit.authorization.audit' "$tmp/serve.log" | sed 's/^time=[^ ]* //'
n=$(grep -c 'logger=offkit.authorization.audit' "$tmp/serve.log" || true)
[[ $n == 2 ]] || fail "$n audit lines, want 2"
echo
echo "\$ curl http://$addr/metrics | grep offkit_authority_requests_total"
curl -sS "http://$addr/metrics" | grep '^offkit_authority_requests_total' | grep -v ' 0$'
