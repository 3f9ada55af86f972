#!/usr/bin/env bash
# The mirror runbook's smoke tests (section 6) against `offkit serve` of a
# site with Concelier and Excititor exports installed:
#
#   bash scripts/mirror-smoke.sh OFFKIT ROOT MIRROR_KEY_PUB USER:PASSWORD
#
# USER:PASSWORD is a Basic user of a bcrypt htpasswd file this script writes
# with `htpasswd -B` (the gateway's format). The bundles of the primary
# domain must be cosign-signed by MIRROR_KEY_PUB's key (cosign verify-blob
# checks them). Needs curl, jq, htpasswd and cosign on PATH. Each step
# prints what it checked; the first failure stops the script with the cause.
set -euo pipefail
OFFKIT=$1 ROOT=$2 KEY=$3 CREDS=$4
tmp=$(mktemp -d)
pid=
stop() { [[ -z $pid ]] || { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; pid=; }; }
trap 'stop; rm -rf "$tmp"' EXIT
fail() {
	echo "mirror smoke: $*" >&2
	[[ -f $tmp/serve.log ]] && { echo "--- offkit serve log:" >&2; tail -20 "$tmp/serve.log" >&2; }
	exit 1
}
# cosign stays offline: no TUF, no Rekor (the signature is checked with the key).
echo unused >"$tmp/rekor.pub"
export TUF_ROOT=${TUF_ROOT:-$tmp/tuf} SIGSTORE_REKOR_PUBLIC_KEY=${SIGSTORE_REKOR_PUBLIC_KEY:-$tmp/rekor.pub}
htpasswd -B -b -c "$tmp/mirror.htpasswd" "${CREDS%%:*}" "${CREDS#*:}" 2>/dev/null

# start CONFIG: offkit serve on a free loopback port; sets $base.
start() {
	stop
	: >"$tmp/serve.log"
	"$OFFKIT" serve --root "$ROOT" --listen 127.0.0.1:0 --config "$1" 2>"$tmp/serve.log" &
	pid=$!
	local addr=
	for _ in $(seq 100); do
		addr=$(sed -n 's|.*msg=serving address=http://\([^ ]*\).*|\1|p' "$tmp/serve.log" | head -1)
		[[ -n $addr ]] && break
		kill -0 "$pid" 2>/dev/null || fail "offkit serve exited before listening"
		sleep 0.1
	done
	[[ -n $addr ]] || fail "offkit serve did not listen within 10 s"
	base=http://$addr
}

# Authentication on every route: Basic from the htpasswd file; no budgets.
cat >"$tmp/auth.yaml" <<YAML
mirror:
  concelier: {requireAuthentication: true, htpasswd: $tmp/mirror.htpasswd}
  excititor: {requireAuthentication: true, htpasswd: $tmp/mirror.htpasswd}
YAML
start "$tmp/auth.yaml"

echo "# Index with Basic Auth"
keys=$(curl -sf -u "$CREDS" "$base/concelier/exports/index.json" | jq -c 'keys') || fail "index.json with Basic"
echo "$keys"
[[ $keys == *'"domains"'* ]] || fail "index.json has no domains: $keys"

echo "# Mirror manifest signature and cache headers"
curl -sf -u "$CREDS" -I "$base/concelier/exports/mirror/primary/manifest.json" | tr -d '\r' >"$tmp/manifest-headers.txt" ||
	fail "HEAD manifest.json"
grep -E '^(Cache-Control|Content-Type|Etag|X-Content-Type-Options): ' "$tmp/manifest-headers.txt"
grep -qx 'Cache-Control: public, max-age=300, immutable' "$tmp/manifest-headers.txt" || fail "manifest Cache-Control"
grep -qx 'Content-Type: application/json' "$tmp/manifest-headers.txt" || fail "manifest Content-Type"
grep -qE '^Etag: "sha256:[0-9a-f]{64}"$' "$tmp/manifest-headers.txt" || fail "manifest ETag"
curl -sf -u "$CREDS" -I "$base/concelier/exports/index.json" | tr -d '\r' | grep -qx 'Cache-Control: public, max-age=60' ||
	fail "index.json Cache-Control"

echo "# Excititor consensus bundle metadata"
curl -sf -u "$CREDS" "$base/excititor/mirror/community/index" | jq -r '.exports[].exportKey' | tee "$tmp/keys.txt" ||
	fail "excititor index"
grep -qx consensus "$tmp/keys.txt" || fail "no consensus export in the Excititor index"

echo "# Signed bundle + detached JWS (spot check digests)"
curl -sf -u "$CREDS" "$base/concelier/exports/mirror/primary/bundle.json.jws" -o "$tmp/bundle.json.jws" || fail "bundle.json.jws"
curl -sf -u "$CREDS" "$base/concelier/exports/mirror/primary/bundle.json" -o "$tmp/bundle.json" || fail "bundle.json"
(cd "$tmp" && COSIGN_YES=true cosign verify-blob --insecure-ignore-tlog --signature bundle.json.jws --key "$KEY" bundle.json) ||
	fail "cosign verify-blob refused the served bundle"
etag=$(curl -sf -u "$CREDS" -I "$base/concelier/exports/mirror/primary/bundle.json" | tr -d '\r' | sed -n 's/^Etag: "sha256:\(.*\)"$/\1/p')
[[ $etag == "$(sha256sum "$tmp/bundle.json" | cut -d' ' -f1)" ]] || fail "bundle ETag $etag is not its sha256"
code=$(curl -s -o /dev/null -w '%{http_code}' -u "$CREDS" -H "If-None-Match: \"sha256:$etag\"" "$base/concelier/exports/mirror/primary/bundle.json")
[[ $code == 304 ]] || fail "If-None-Match with the ETag: HTTP $code, want 304"
echo "bundle sha256 $etag = ETag; If-None-Match: 304"

echo "# Service-level auth check (no credentials)"
curl -si "$base/concelier/exports/mirror/primary/manifest.json" | tr -d '\r' | sed '/^$/q' | tee "$tmp/noauth.txt"
grep -q '^HTTP/1.1 401' "$tmp/noauth.txt" || fail "no credentials: not 401"
grep -qx 'Www-Authenticate: Bearer realm="offkit"' "$tmp/noauth.txt" || fail "no WWW-Authenticate: Bearer"
grep -qx 'Www-Authenticate: Basic realm="offkit mirror"' "$tmp/noauth.txt" || fail "no WWW-Authenticate: Basic"
grep -qx 'Cache-Control: no-store' "$tmp/noauth.txt" || fail "a refusal without Cache-Control: no-store"

# Low budgets to observe 429: one index request per client and hour.
cat >"$tmp/limit.yaml" <<YAML
mirror:
  concelier: {requireAuthentication: true, htpasswd: $tmp/mirror.htpasswd, maxIndexRequestsPerHour: 1}
YAML
start "$tmp/limit.yaml"
echo "# Rate limit smoke (repeat quickly; second call should return 429 + Retry-After)"
for i in 1 2; do
	curl -s -o /dev/null -D - "$base/concelier/exports/index.json" -u "$CREDS" | tr -d '\r' |
		grep -E '^(HTTP/|Retry-After:)' | tee "$tmp/rl$i.txt"
	sleep 1
done
grep -q '^HTTP/1.1 200' "$tmp/rl1.txt" || fail "first call not 200"
grep -q '^HTTP/1.1 429' "$tmp/rl2.txt" || fail "second call not 429"
grep -qE '^Retry-After: [0-9]+$' "$tmp/rl2.txt" || fail "429 without Retry-After in seconds"
echo "mirror smoke: ok"
