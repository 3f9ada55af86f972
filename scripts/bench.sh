#!/usr/bin/env bash
# Times whole offkit commands against the baselines issue 2 names, on the
# corpus the competing tools were measured on (tools/benchcorpus), and prints
# a table of medians and ratios: wall time, and CPU time (user + sys of the
# whole process tree), the steadier figure on a shared machine. These
# machines are shared and noisy, so read ratios, not absolute times.
# Trees are moved aside before a timed run and deleted at the end: creating
# many files right after deleting many is slow on ext4 without a journal.
# OFFKIT_CPUPROFILE=DIR writes a CPU profile of every offkit command timed
# (DIR/NAME.pprof), for `go tool pprof -top bin/offkit DIR/NAME.pprof`.
#
#   RUNS=3 bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local COSIGN_PASSWORD=bench
RUNS=${RUNS:-3}
PROFILES=${OFFKIT_CPUPROFILE:-}
unset OFFKIT_CPUPROFILE
B=$PWD/_bench
OFFKIT=$PWD/bin/offkit
ADDR=127.0.0.1:5999
mkdir -p "$B"
go build -o "$OFFKIT" ./cmd/offkit
go build -o "$B/benchcorpus" ./tools/benchcorpus

# The registry and the OCI layout of the same images.
"$B/benchcorpus" -cache "$B/cache" -addr $ADDR -layout "$B/layout" > "$B/corpus.log" 2>&1 &
REG=$!
TGT=
trap 'kill $REG $TGT 2>/dev/null || true' EXIT
TRASH=$B/trash
mkdir -p "$TRASH"
# aside DIR...: moves trees out of the way (deleted at the end).
aside() { for d in "$@"; do [ -e "$d" ] && mv "$d" "$TRASH/$(basename "$d").$RANDOM$RANDOM"; done; true; }
# target: a fresh, empty registry on loopback, the target of a timed push.
target() {
  [ -n "$TGT" ] && { kill "$TGT" 2>/dev/null || true; wait "$TGT" 2>/dev/null || true; }
  "$B/benchcorpus" -empty -addr $TADDR > "$B/target.log" 2>&1 &
  TGT=$!
  for _ in $(seq 100); do grep -q ready "$B/target.log" && return; sleep 0.1; done
  cat "$B/target.log"; exit 1
}
TADDR=127.0.0.1:5998
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

# measure NAME CMD...: median wall and CPU seconds and max RSS (MiB) over
# RUNS runs. PREP, when set, runs (untimed) before each run.
declare -A WALL CPU RSS
measure() {
  local name=$1; shift
  local ts=() cs=() rs=()
  local prof=""
  if [ -n "$PROFILES" ]; then mkdir -p "$PROFILES"; prof="OFFKIT_CPUPROFILE=$PROFILES/${name// /-}.pprof"; fi
  for _ in $(seq "$RUNS"); do
    sync; [ -n "${PREP:-}" ] && eval "$PREP"
    /usr/bin/time -f "%e %U %S %M" -o "$B/time.out" env $prof bash -c "$*" >/dev/null 2>"$B/err.out" || { cat "$B/err.out"; exit 1; }
    read -r t u sy r < <(tail -1 "$B/time.out")
    ts+=("$t"); cs+=("$(awk -v a="$u" -v b="$sy" 'BEGIN{printf "%.2f", a+b}')"); rs+=("$r")
  done
  WALL[$name]=$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  CPU[$name]=$(printf '%s\n' "${cs[@]}" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  RSS[$name]=$(printf '%s\n' "${rs[@]}" | sort -n | tail -1 | awk '{printf "%.0f", $1/1024}')
  printf '%-28s %8ss wall %8ss cpu %6s MiB  (load %s)\n' "$name" "${WALL[$name]}" "${CPU[$name]}" "${RSS[$name]}" "$(cut -d' ' -f1-3 /proc/loadavg)" >&2
}
ratio() { awk -v a="${WALL[$1]}" -v b="${WALL[$2]}" 'BEGIN{printf "%.2f", a/b}'; }
cratio() { awk -v a="${CPU[$1]}" -v b="${CPU[$2]}" 'BEGIN{printf "%.2f", a/b}'; }
# row STEP A B GOAL: a table row, A against B.
row() { printf '| %s | %ss / %ss | %ss / %ss | %s | %s | %s |\n' "$1" "${WALL[$2]}" "${CPU[$2]}" "${WALL[$3]}" "${CPU[$3]}" "$(ratio "$2" "$3")" "$(cratio "$2" "$3")" "$4"; }

for corpus in images raw; do
  spec="$B/$corpus.yaml"; out="$B/out-$corpus"; aside "$out"; mkdir -p "$out"
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
  PREP="aside $B/untar; mkdir -p $B/untar"
  measure "$corpus zstd|tar -x" "zstd -dc $K | tar -x -C $B/untar"
  PREP="aside $B/site"
  measure "$corpus install" "$OFFKIT install $K --root $B/site --key $B/bench.pub"
  PREP=""
  if [ $corpus = images ]; then
    # push: into an empty registry each time. The Zarf-like baseline
    # extracts the package and then pushes its images with
    # go-containerregistry, as Zarf's mirror-resources does (Zarf itself
    # cannot be installed offline): zstd|tar -x, then benchcorpus -push.
    PREP="target"
    measure "images push KIT" "$OFFKIT push $K --key $B/bench.pub --to $TADDR/kit --plain-http"
    measure "images push --root" "$OFFKIT push --root $B/site --to $TADDR/site --plain-http"
    PREP="target; aside $B/zx"
    cp_cmd="mkdir -p $B/zx && zstd -dc $K | tar -x -C $B/zx && $B/benchcorpus -push $B/zx/images -to $TADDR/zarf"
    measure "images extract+push" "$cp_cmd"
    PREP=""
  fi
  printf '\n%s corpus: kit %d bytes, tar|zstd -3 %d bytes\n' $corpus "$KSIZE" "$BSIZE"
  printf '| step | offkit wall / cpu | baseline wall / cpu | wall ratio | cpu ratio | goal |\n|---|---|---|---|---|---|\n'
  row build "$corpus build" "$corpus tar|zstd" "$([ $corpus = images ] && echo '≤ 1.1' || echo '≤ 1.0')"
  row verify "$corpus verify" "$corpus zstd|sha256sum" "$([ $corpus = images ] && echo '≤ 0.25' || echo '≤ 0.5')"
  row install "$corpus install" "$corpus zstd|tar -x" "≤ 1.0"
  if [ $corpus = images ]; then
    row "push KIT (vs extract+push, Zarf-like)" "images push KIT" "images extract+push" "≤ 0.8"
    row "push KIT (vs push --root)" "images push KIT" "images push --root" ""
  fi
  printf '| size | %d | %d | %s | | ≤ 1.0 |\n' "$KSIZE" "$BSIZE" "$(awk -v a=$KSIZE -v b=$BSIZE 'BEGIN{printf "%.3f", a/b}')"
  printf '| peak RSS build/verify/install | %s / %s / %s MiB | | | | ≤ 100 MiB |\n\n' "${RSS[$corpus build]}" "${RSS[$corpus verify]}" "${RSS[$corpus install]}"
done

# Constant memory: 4x the bytes (raw4.yaml above).
out="$B/out-raw4"; aside "$out"; mkdir -p "$out"
RUNS=1
measure "raw4 build" "$OFFKIT build -f $B/raw4.yaml -o $out --key $B/bench.key --overwrite"
measure "raw4 verify" "$OFFKIT verify $out/bench-raw4-1.0.0.kit.tar.zst --key $B/bench.pub"
PREP="aside $B/site4"
measure "raw4 install" "$OFFKIT install $out/bench-raw4-1.0.0.kit.tar.zst --root $B/site4 --key $B/bench.pub"
printf '4x corpus (%d bytes): peak RSS build/verify/install %s / %s / %s MiB\n' "$(stat -c %s $out/bench-raw4-1.0.0.kit.tar.zst)" "${RSS[raw4 build]}" "${RSS[raw4 verify]}" "${RSS[raw4 install]}"
aside "$B/site" "$B/site4" "$B/untar" "$B/zx" "$out"
rm -rf "$TRASH"
