#!/usr/bin/env bash
# The last step of `make demo`: serve the installed site on loopback, show
# what a puller and the monitoring stack see, then stop the server.
set -euo pipefail
OFFKIT=$1 ROOT=$2 ADDR=${3:-127.0.0.1:18080}
"$OFFKIT" serve --root "$ROOT" --listen "$ADDR" 2>"$ROOT/../serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs "http://$ADDR/readyz" >/dev/null && break; sleep 0.1; done
show() { echo "\$ curl $*"; curl -fsS "$@"; echo; }
show "http://$ADDR/readyz"
show "http://$ADDR/v2/_catalog"
show "http://$ADDR/v2/stellaops/zastava-observer/tags/list"
echo "\$ curl -I http://$ADDR/v2/stellaops/zastava-observer/manifests/1.4.2"
curl -fsSI -H 'Accept: application/vnd.oci.image.index.v1+json' "http://$ADDR/v2/stellaops/zastava-observer/manifests/1.4.2" | grep -iE '^(HTTP|content-type|docker-content-digest|content-length)'
show "http://$ADDR/rules/index.json"
echo "\$ curl http://$ADDR/metrics | grep offkit_http_requests_total"
curl -fsS "http://$ADDR/metrics" | grep '^offkit_http_requests_total' || true
