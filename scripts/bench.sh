#!/usr/bin/env bash
# Times whole offkit commands against the baselines issue 2 names, on the
# corpus the competing tools were measured on (tools/benchcorpus), and prints
# a table of medians and ratios. One run; these machines are shared and
# noisy, so read ratios, not absolute times.
#
#   RUNS=3 bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local COSIGN_PASSWORD=bench
RUNS=${RUNS:-3}
B=$PWD/_bench
OFFKIT=$PWD/bin/offkit
ADDR=127.0.0.1:5999
mkdir -p "$B"
go build -o "$OFFKIT" ./cmd/offkit
go build -o "$B/benchcorpus" ./tools/benchcorpus

# The registry and the OCI layout of the same images.
"$B/benchcorpus" -cache "$B/cache" -addr $ADDR -layout "$B/layout" > "$B/corpus.log" 2>&1 &
REG=$!
trap 'kill $REG 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q ready "$B/corpus.log" && break; sleep 1; done
grep -q ready "$B/corpus.log" || { cat "$B/corpus.log"; exit 1; }

[ -f "$B/bench.key" ] || (cd "$B" && "$OFFKIT" key generate --output-key-prefix bench >/dev/null)

cat > "$B/images.yaml" <<YAML
name: bench-images
version: 1.0.0
createdAt: 2025-10-20T00:00:00Z
images:
  - ref: $ADDR/bench/app1:1.0
  - ref: $ADDR/bench/app2:1.0
files:
  - src: /usr/lib/llvm-14/lib/libclang-cpp.so.14
  - src: /usr/lib/jvm/temurin-25-jdk-amd64/lib/src.zip
YAML
# The raw corpus: about 1 GB of compressible files from /usr, regular files
# only (kits carry no symlinks or special files, so neither does the corpus).
RAW=$B/raw
if [ ! -f "$RAW/.done" ]; then
  rm -rf "$RAW" && mkdir -p "$RAW"
  for d in /usr/share /usr/include /usr/lib/python3.11 /usr/lib/gcc; do
    mkdir -p "$RAW$(dirname $d)" && cp -a "$d" "$RAW$d"
  done
  find "$RAW" ! -type f ! -type d -delete
  # Nor paths that collide when case is ignored (xt_CONNMARK.h, xt_connmark.h).
  find "$RAW" -type f | sort | awk '{ if (seen[tolower($0)]++) print }' | xargs -r -d '\n' rm -f
  touch "$RAW/.done"
fi
{
  echo "name: bench-raw"; echo "version: 1.0.0"; echo "createdAt: 2025-10-20T00:00:00Z"; echo "files:"
  echo "  - src: $RAW/usr"; echo "    dest: raw/usr"
} > "$B/raw.yaml"
# Constant memory: a corpus four times the bytes of the images corpus (its
# OCI layout and files, four times over; the same number of entries per GB).
{
  echo "name: bench-raw4"; echo "version: 1.0.0"; echo "createdAt: 2025-10-20T00:00:00Z"; echo "files:"
  for i in 1 2 3 4; do echo "  - src: $B/imgtree"; echo "    dest: copy$i"; done
} > "$B/raw4.yaml"
# The same files as the images kit, laid out for the tar baseline.
mkdir -p "$B/imgtree"
rm -rf "$B/imgtree/images"; cp -r "$B/layout" "$B/imgtree/images"
cp /usr/lib/llvm-14/lib/libclang-cpp.so.14 /usr/lib/jvm/temurin-25-jdk-amd64/lib/src.zip "$B/imgtree/"

# measure NAME CMD...: median wall seconds and max RSS (MiB) over RUNS runs.
declare -A WALL RSS
measure() {
  local name=$1; shift
  local ts=() rs=()
  for _ in $(seq "$RUNS"); do
    sync; [ -n "${PREP:-}" ] && eval "$PREP"
    /usr/bin/time -f "%e %M" -o "$B/time.out" bash -c "$*" >/dev/null 2>"$B/err.out" || { cat "$B/err.out"; exit 1; }
    read -r t r < <(tail -1 "$B/time.out")
    ts+=("$t"); rs+=("$r")
  done
  WALL[$name]=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  RSS[$name]=$(printf '%s\n' "${rs[@]}" | sort -n | tail -1 | awk '{printf "%.0f", $1/1024}')
  printf '%-28s %8ss  %6s MiB\n' "$name" "${WALL[$name]}" "${RSS[$name]}" >&2
}
ratio() { awk -v a="${WALL[$1]}" -v b="${WALL[$2]}" 'BEGIN{printf "%.2f", a/b}'; }

for corpus in images raw; do
  spec="$B/$corpus.yaml"; out="$B/out-$corpus"; rm -rf "$out"; mkdir -p "$out"
  K="$out/bench-$corpus-1.0.0.kit.tar.zst"
  if [ $corpus = images ]; then
    measure "$corpus build" "$OFFKIT build -f $spec -o $out --key $B/bench.key --overwrite --plain-http"
    measure "$corpus tar|zstd" "tar -cf - -C $B/imgtree . | zstd -q -T0 -3 > $B/base.tar.zst"
  else
    measure "$corpus build" "$OFFKIT build -f $spec -o $out --key $B/bench.key --overwrite"
    measure "$corpus tar|zstd" "tar -cf - -C $RAW usr | zstd -q -T0 -3 > $B/base.tar.zst"
  fi
  KSIZE=$(stat -c %s "$K"); BSIZE=$(stat -c %s "$B/base.tar.zst")
  measure "$corpus verify" "$OFFKIT verify $K --key $B/bench.pub"
  measure "$corpus zstd|sha256sum" "zstd -dc $K | sha256sum"
  PREP="rm -rf $B/site $B/untar; mkdir -p $B/untar"
  measure "$corpus install" "$OFFKIT install $K --root $B/site --key $B/bench.pub"
  measure "$corpus zstd|tar -x" "zstd -dc $K | tar -x -C $B/untar"
  PREP=""
  printf '\n%s corpus: kit %d bytes, tar|zstd -3 %d bytes\n' $corpus "$KSIZE" "$BSIZE"
  printf '| step | offkit | baseline | ratio | goal |\n|---|---|---|---|---|\n'
  printf '| build | %ss | %ss | %s | %s |\n' "${WALL[$corpus build]}" "${WALL[$corpus tar|zstd]}" "$(ratio "$corpus build" "$corpus tar|zstd")" "$([ $corpus = images ] && echo '≤ 1.1' || echo '≤ 1.0')"
  printf '| verify | %ss | %ss | %s | ≤ 0.5 |\n' "${WALL[$corpus verify]}" "${WALL[$corpus zstd|sha256sum]}" "$(ratio "$corpus verify" "$corpus zstd|sha256sum")"
  printf '| install | %ss | %ss | %s | ≤ 1.3 |\n' "${WALL[$corpus install]}" "${WALL[$corpus zstd|tar -x]}" "$(ratio "$corpus install" "$corpus zstd|tar -x")"
  printf '| size | %d | %d | %s | ≤ 1.0 |\n' "$KSIZE" "$BSIZE" "$(awk -v a=$KSIZE -v b=$BSIZE 'BEGIN{printf "%.3f", a/b}')"
  printf '| peak RSS build/verify/install | %s / %s / %s MiB | | | ≤ 100 MiB |\n\n' "${RSS[$corpus build]}" "${RSS[$corpus verify]}" "${RSS[$corpus install]}"
done

# Constant memory: 4x the bytes (raw4.yaml above).
out="$B/out-raw4"; rm -rf "$out"; mkdir -p "$out"
RUNS=1
measure "raw4 build" "$OFFKIT build -f $B/raw4.yaml -o $out --key $B/bench.key --overwrite"
measure "raw4 verify" "$OFFKIT verify $out/bench-raw4-1.0.0.kit.tar.zst --key $B/bench.pub"
PREP="rm -rf $B/site4"
measure "raw4 install" "$OFFKIT install $out/bench-raw4-1.0.0.kit.tar.zst --root $B/site4 --key $B/bench.pub"
printf '4x corpus (%d bytes): peak RSS build/verify/install %s / %s / %s MiB\n' "$(stat -c %s $out/bench-raw4-1.0.0.kit.tar.zst)" "${RSS[raw4 build]}" "${RSS[raw4 verify]}" "${RSS[raw4 install]}"
rm -rf "$B/site" "$B/site4" "$B/untar" "$out"
