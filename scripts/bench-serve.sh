#!/usr/bin/env bash
# Times `offkit serve` and `offkit push` against the distribution registry
# (pinned, scripts/install-interop-tools.sh) serving the same image on the
# same machine, with wrk on loopback, and prints a table. One run; read the
# ratios, not the absolute figures (shared, noisy machines).
#
#   DURATION=10s bash scripts/bench-serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local COSIGN_PASSWORD=bench
DURATION=${DURATION:-10s}
B=$PWD/_bench/serve
BIN=$PWD/bin
OFFKIT=$BIN/offkit
SRC=127.0.0.1:5101 SERVE=127.0.0.1:5102 PUSH1=127.0.0.1:5103 PUSH2=127.0.0.1:5104
rm -rf "$B" && mkdir -p "$B"
bash scripts/install-interop-tools.sh >/dev/null
go build -o "$OFFKIT" ./cmd/offkit

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
distribution() { # ADDR DIR: a distribution registry with filesystem storage
  cat > "$2.yml" <<YAML
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $2}, delete: {enabled: false}}
http: {addr: $1}
YAML
  "$BIN/registry" serve "$2.yml" >"$2.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://$1/v2/" >/dev/null && return; sleep 0.1; done
  echo "registry on $1 did not start"; cat "$2.log"; exit 1
}

# One image with a 100 MiB layer (random bytes: compression does not help
# either side) in the source registry, built into a kit and installed.
distribution $SRC "$B/src"
head -c $((100 << 20)) /dev/urandom > "$B/big.bin"
tar -cf "$B/layer.tar" -C "$B" big.bin
"$BIN/crane" append --insecure -f "$B/layer.tar" -t $SRC/bench/big:1.0 >/dev/null 2>&1
LAYER=$("$BIN/crane" manifest --insecure $SRC/bench/big:1.0 | grep -o '"digest":"sha256:[0-9a-f]*"' | tail -1 | cut -d'"' -f4)
(cd "$B" && "$OFFKIT" key generate --output-key-prefix bench >/dev/null)
printf 'name: bench-big\nversion: 1.0.0\ncreatedAt: 2026-11-20T00:00:00Z\nimages:\n  - ref: %s/bench/big:1.0\n    plainHTTP: true\n' $SRC > "$B/kit.yaml"
"$OFFKIT" build -f "$B/kit.yaml" -o "$B" --key "$B/bench.key" 2>/dev/null >/dev/null
"$OFFKIT" install "$B/bench-big-1.0.0.kit.tar.zst" --root "$B/site" --key "$B/bench.pub" >/dev/null
"$OFFKIT" serve --root "$B/site" --listen $SERVE 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://$SERVE/readyz" >/dev/null && break; sleep 0.1; done

ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json'
# wrk_run NAME ARGS...: requests/s, transfer MB/s and p99 latency.
declare -A RPS MBS P99
wrk_run() {
  local name=$1; shift
  wrk -t2 -d "$DURATION" --latency "$@" > "$B/wrk.out"
  RPS[$name]=$(awk '/^Requests\/sec/ {print $2}' "$B/wrk.out")
  MBS[$name]=$(awk '/^Transfer\/sec/ {v=$2; if (v ~ /GB$/) {sub("GB","",v); v*=1024} else if (v ~ /MB$/) sub("MB","",v); else if (v ~ /KB$/) {sub("KB","",v); v/=1024}; printf "%.0f", v}' "$B/wrk.out")
  P99[$name]=$(awk '$1=="99%" {print $2}' "$B/wrk.out")
  printf '%-24s %10s req/s %8s MiB/s  p99 %s\n' "$name" "${RPS[$name]}" "${MBS[$name]}" "${P99[$name]}" >&2
}
for who in offkit distribution; do
  addr=$SERVE; [ $who = distribution ] && addr=$SRC
  wrk_run "$who blob" -c4 "http://$addr/v2/bench/big/blobs/$LAYER"
  wrk_run "$who manifest" -c50 -H "$ACCEPT" "http://$addr/v2/bench/big/manifests/1.0"
done

# Push into empty registries: offkit push from the site vs crane copy.
distribution $PUSH1 "$B/push1"
distribution $PUSH2 "$B/push2"
t0=$(date +%s.%N); "$OFFKIT" push --root "$B/site" --to $PUSH1/pushed --plain-http >/dev/null 2>&1; t1=$(date +%s.%N)
"$BIN/crane" copy --insecure $SRC/bench/big:1.0 $PUSH2/copied/big:1.0 >/dev/null 2>&1; t2=$(date +%s.%N)
"$OFFKIT" push --root "$B/site" --to $PUSH1/pushed --plain-http >/dev/null 2>&1; t3=$(date +%s.%N)
PUSH=$(awk -v a=$t0 -v b=$t1 'BEGIN{printf "%.2f", b-a}')
CRANE=$(awk -v a=$t1 -v b=$t2 'BEGIN{printf "%.2f", b-a}')
AGAIN=$(awk -v a=$t2 -v b=$t3 'BEGIN{printf "%.2f", b-a}')

r() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 == 0) print "n/a"; else printf "%.2f", a/b}'; }
printf '\n| measure | offkit serve | distribution | ratio | goal |\n|---|---|---|---|---|\n'
printf '| blob GET, 100 MiB layer, 4 clients | %s MiB/s (p99 %s) | %s MiB/s (p99 %s) | %s | ≥ 1.0 |\n' \
  "${MBS[offkit blob]}" "${P99[offkit blob]}" "${MBS[distribution blob]}" "${P99[distribution blob]}" "$(r "${MBS[offkit blob]}" "${MBS[distribution blob]}")"
printf '| manifest GET, 50 clients | %s req/s (p99 %s) | %s req/s (p99 %s) | %s | ≥ 1.0 |\n' \
  "${RPS[offkit manifest]}" "${P99[offkit manifest]}" "${RPS[distribution manifest]}" "${P99[distribution manifest]}" "$(r "${RPS[offkit manifest]}" "${RPS[distribution manifest]}")"
printf '| push 100 MiB image into an empty registry | offkit push %ss | crane copy %ss | %s | |\n' "$PUSH" "$CRANE" "$(r "$PUSH" "$CRANE")"
printf '| push again (nothing to upload) | %ss | | | |\n' "$AGAIN"
