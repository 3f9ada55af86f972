#!/usr/bin/env bash
# Times offkit serve's feed mirror against nginx (Debian's nginx-light,
# scripts/install-interop-tools.sh) serving the same files with the same
# Cache-Control headers: GET index.json and GET bundle.json (10 MiB) at 50
# concurrent clients with wrk on loopback; offkit with rate limits off, with
# limits on (a budget no client reaches) and with Basic auth (bcrypt
# htpasswd -B) next to nginx's auth_basic over the same file. One run; read
# the ratios, not the absolute figures (shared, noisy machines).
#
#   DURATION=10s bash scripts/bench-mirror.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
DURATION=${DURATION:-10s}
B=$PWD/_bench/mirror
BIN=$PWD/bin
OFFKIT=$BIN/offkit
OFF=127.0.0.1:5111 NGX=127.0.0.1:5112 NGXAUTH=127.0.0.1:5113
rm -rf "$B" && mkdir -p "$B"
bash scripts/install-interop-tools.sh >/dev/null
go build -o "$OFFKIT" ./cmd/offkit
go build -o "$B/mirrorfixture" ./tools/mirrorfixture
EXPORT=$("$B/mirrorfixture" -root "$B/site" -key "$B/mirror-key.pub" -bundle-size $((10 << 20)))
htpasswd -B -b -c "$B/htpasswd" bench bench-password 2>/dev/null
AUTH="Authorization: Basic $(printf bench:bench-password | base64)"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; [ -f "$B/nginx.pid" ] && kill "$(cat "$B/nginx.pid")" 2>/dev/null; wait 2>/dev/null || true' EXIT
# offkit_start NAME: offkit serve with serve.yaml $B/NAME.yaml on $OFF.
offkit_start() {
  "$OFFKIT" serve --root "$B/site" --listen $OFF --config "$B/$1.yaml" 2>"$B/$1.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -fs "http://$OFF/healthz" >/dev/null && return; sleep 0.1; done
  echo "offkit serve did not start"; cat "$B/$1.log"; exit 1
}
offkit_stop() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }
printf 'listen: %s\n' $OFF > "$B/off.yaml"
printf 'listen: %s\nmirror:\n  concelier: {maxIndexRequestsPerHour: 100000000}\n' $OFF > "$B/limits.yaml"
printf 'listen: %s\nmirror:\n  concelier: {requireAuthentication: true, htpasswd: %s}\n' $OFF "$B/htpasswd" > "$B/basic.yaml"

# nginx: the same files, the runbook's headers, one server without and one
# with auth_basic.
mkdir -p "$B/nginx"
ngx_loc() { # the two locations, then any extra directive
  cat <<NGX
    location = /concelier/exports/index.json {
      alias $EXPORT/index.json;
      default_type application/json;
      add_header Cache-Control "public, max-age=60";
      add_header X-Content-Type-Options nosniff;
      $1
    }
    location /concelier/exports/mirror/ {
      alias $EXPORT/;
      default_type application/json;
      add_header Cache-Control "public, max-age=300, immutable";
      add_header X-Content-Type-Options nosniff;
      $1
    }
NGX
}
cat > "$B/nginx/nginx.conf" <<NGX
user root;
worker_processes 2;
pid $B/nginx.pid;
error_log $B/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { application/json json; application/jose jws; }
  client_body_temp_path $B/nginx/body;
  proxy_temp_path $B/nginx/proxy;
  fastcgi_temp_path $B/nginx/fastcgi;
  uwsgi_temp_path $B/nginx/uwsgi;
  scgi_temp_path $B/nginx/scgi;
  server {
    listen $NGX;
$(ngx_loc "")
  }
  server {
    listen $NGXAUTH;
$(ngx_loc "auth_basic \"offkit mirror\"; auth_basic_user_file $B/htpasswd;")
  }
}
NGX
nginx -p "$B/nginx" -e "$B/nginx/error.log" -c "$B/nginx/nginx.conf"
for _ in $(seq 50); do curl -fs -o /dev/null "http://$NGX/concelier/exports/index.json" && break; sleep 0.1; done
curl -fs -o /dev/null -H "$AUTH" "http://$NGXAUTH/concelier/exports/index.json" || { echo "nginx auth_basic refused the bcrypt user"; exit 1; }

declare -A RPS P99
wrk_run() { # NAME URL [wrk args]
  local name=$1 url=$2; shift 2
  wrk -t2 -c50 -d "$DURATION" --latency "$@" "$url" > "$B/wrk.out"
  grep -q 'Non-2xx' "$B/wrk.out" && { echo "$name: non-2xx answers"; cat "$B/wrk.out"; exit 1; }
  RPS[$name]=$(awk '/^Requests\/sec/ {print $2}' "$B/wrk.out")
  P99[$name]=$(awk '$1=="99%" {print $2}' "$B/wrk.out")
  printf '%-22s %10s req/s  p99 %s\n' "$name" "${RPS[$name]}" "${P99[$name]}" >&2
}
IDX=/concelier/exports/index.json BUNDLE=/concelier/exports/mirror/primary/bundle.json
# Each offkit run is followed at once by its nginx run, so both see the
# same load on a shared machine.
for mode in off limits basic; do
  offkit_start $mode
  args=() ngx=$NGX
  [ $mode = basic ] && args=(-H "$AUTH") ngx=$NGXAUTH
  for what in index bundle; do
    url=$IDX; [ $what = bundle ] && url=$BUNDLE
    wrk_run "offkit $mode $what" "http://$OFF$url" "${args[@]}"
    wrk_run "nginx $mode $what" "http://$ngx$url" "${args[@]}"
  done
  offkit_stop
done

r() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b+0 == 0) print "n/a"; else printf "%.2f", a/b}'; }
printf '\n| GET, 50 clients | offkit serve req/s (p99) | nginx req/s (p99) | ratio | goal |\n|---|---|---|---|---|\n'
row() { # LABEL OFFKIT NGINX GOAL
  printf '| %s | %s (%s) | %s (%s) | %s | ≥ %s |\n' "$1" "${RPS[$2]}" "${P99[$2]}" "${RPS[$3]}" "${P99[$3]}" "$(r "${RPS[$2]}" "${RPS[$3]}")" "$4"
}
row "index.json, limits off" "offkit off index" "nginx off index" 1.0
row "bundle.json 10 MiB, limits off" "offkit off bundle" "nginx off bundle" 1.0
row "index.json, limits on (nginx: none)" "offkit limits index" "nginx limits index" 0.8
row "bundle.json 10 MiB, limits on (nginx: none)" "offkit limits bundle" "nginx limits bundle" 0.8
row "index.json, Basic auth" "offkit basic index" "nginx basic index" 0.8
row "bundle.json 10 MiB, Basic auth" "offkit basic bundle" "nginx basic bundle" 0.8
