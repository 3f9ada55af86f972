#!/usr/bin/env bash
# The last step of `make demo`: serve the installed site on loopback, show
# what a puller and the monitoring stack see, then stop the server.
#
# offkit serve listens on a free port (127.0.0.1:0) unless ADDR is given and
# logs the address it got. When a step fails, the cause is printed: the
# HTTP status and body, and the server's log.
set -euo pipefail
OFFKIT=$1 ROOT=$2 ADDR=${3:-127.0.0.1:0}
LOG=$(dirname "$ROOT")/serve.log
tmp=$(mktemp -d)
: >"$LOG" # exists before the loop below reads it
"$OFFKIT" serve --root "$ROOT" --listen "$ADDR" 2>"$LOG" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT

fail() {
	echo "demo: $*" >&2
	echo "--- offkit serve log ($LOG):" >&2
	cat "$LOG" >&2
	exit 1
}

# The address offkit serve logs once it listens ("msg=serving address=http://…").
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's|.*msg=serving address=http://\([^ ]*\).*|\1|p' "$LOG" | head -1)
	[[ -n $addr ]] && break
	kill -0 "$pid" 2>/dev/null || fail "offkit serve exited before listening"
	sleep 0.1
done
[[ -n $addr ]] || fail "offkit serve did not start listening within 10 s"

# get URL [CURL-ARGS...]: print the response (body, or headers with -I), or
# fail with the cause.
get() {
	local url=$1 code
	shift
	code=$(curl -sS -o "$tmp/out" -w '%{http_code}' "$@" "$url" 2>"$tmp/err") ||
		fail "curl $url: $(cat "$tmp/err")"
	[[ $code == 2?? ]] || fail "$url: HTTP $code: $(head -c 2000 "$tmp/out")"
	cat "$tmp/out"
}

for _ in $(seq 50); do
	[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz") == 200 ]] && break
	kill -0 "$pid" 2>/dev/null || fail "offkit serve exited"
	sleep 0.1
done
show() { echo "\$ curl $1"; get "$@"; echo; }
show "http://$addr/readyz"
show "http://$addr/v2/_catalog"
show "http://$addr/v2/stellaops/zastava-observer/tags/list"
echo "\$ curl -I http://$addr/v2/stellaops/zastava-observer/manifests/1.4.2"
get "http://$addr/v2/stellaops/zastava-observer/manifests/1.4.2" -I | tr -d '\r' |
	grep -iE '^(HTTP|content-type|docker-content-digest|content-length)'
show "http://$addr/rules/index.json"
# The feed mirror, when the installed kits carry exports: the headers a
# Concelier connector and a CDN see.
if [[ -f $ROOT/current/.offkit/mirror/exports.json ]]; then
	for p in /concelier/exports/index.json /concelier/exports/mirror/primary/bundle.json; do
		echo "\$ curl -I http://$addr$p"
		get "http://$addr$p" -I | tr -d '\r' |
			grep -iE '^(HTTP|cache-control|content-type|content-length|etag|x-content-type-options)'
	done
	echo "\$ curl http://$addr/metrics | grep offkit_mirror_export_age_seconds"
	get "http://$addr/metrics" | grep '^offkit_mirror_export_age_seconds' || true
fi
echo "\$ curl http://$addr/metrics | grep offkit_http_requests_total"
get "http://$addr/metrics" | grep '^offkit_http_requests_total' || true

# debuginfod (docs/debug.md): the kit's debug file, fetched by its build id
# as gdb and elfutils tools fetch it; with curl when elfutils'
# debuginfod-find is not installed (Debian package debuginfod).
dbg=$(ls "$ROOT"/current/debug/.build-id/*/*.debug 2>/dev/null | head -1 || true)
if [[ -n $dbg ]]; then
	id=$(basename "$(dirname "$dbg")")$(basename "$dbg" .debug)
	echo "\$ offkit debug find $id --root $ROOT"
	"$OFFKIT" debug find "$id" --root "$ROOT" || fail "offkit debug find $id"
	if command -v debuginfod-find >/dev/null; then
		echo "\$ DEBUGINFOD_URLS=http://$addr debuginfod-find debuginfo $id"
		got=$(DEBUGINFOD_URLS=http://$addr DEBUGINFOD_CACHE_PATH=$tmp/debuginfod debuginfod-find debuginfo "$id") ||
			fail "debuginfod-find debuginfo $id"
		echo "$got"
	else
		echo "(debuginfod-find is not installed (Debian package debuginfod): fetching with curl instead)"
		echo "\$ curl -o debuginfo http://$addr/buildid/$id/debuginfo"
		get "http://$addr/buildid/$id/debuginfo" >"$tmp/debuginfo"
		got=$tmp/debuginfo
	fi
	cmp "$got" "$dbg" || fail "the debug file served differs from the installed one"
	echo "(the same bytes as the installed file; its build id:)"
	"$OFFKIT" debug buildid "$got"
fi
