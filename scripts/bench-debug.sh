#!/usr/bin/env bash
# The debug symbols bench (docs/debug.md): prints a table of
#   1. rehydrating one 10 MiB .debug file from a ~2 GB kit with
#      `offkit debug fetch --from K` (wall time; bytes of the kit file read,
#      counted by offkit and reported as kitBytesRead), against
#      `tar --zstd -xf K PATH` (which decodes the whole kit) and the same with
#      --occurrence=1 (which stops at the entry); tar's bytes are counted by
#      dd feeding it;
#   2. debuginfod lookups per second of a small .debug file (a gcc program's),
#      50 connections (wrk), from `offkit serve` and from elfutils'
#      `debuginfod -F` over the same file, both inside `unshare -n` (a network
#      namespace of its own with only loopback; elfutils 0.188 cannot bind to
#      loopback alone), wrk in the same namespace;
#   3. `offkit debug buildid` over the ELF files of /usr/bin against
#      `readelf -n` run once per file.
# The kit and its source (about 4 GB) are written under a temporary folder,
# DEBUG_BENCH_DIR (default $TMPDIR/offkit-bench-debug), removed at the end
# unless KEEP=1 (a kept kit is reused). RUNS runs of each timing, median.
# One run; the machine is shared and noisy: read ratios, not absolute times.
#
#   RUNS=3 DEBUG_FILES=200 bash scripts/bench-debug.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local COSIGN_PASSWORD=bench
RUNS=${RUNS:-3}
N=${DEBUG_FILES:-200}
SIZE=${DEBUG_SIZE:-10485760}
B=${DEBUG_BENCH_DIR:-${TMPDIR:-/tmp}/offkit-bench-debug}
OFFKIT=$PWD/bin/offkit
mkdir -p "$B"
[[ ${KEEP:-0} == 1 ]] || trap 'rm -rf "$B"' EXIT
go build -o "$OFFKIT" ./cmd/offkit
go build -o "$B/debugcorpus" ./tools/debugcorpus

now() { date +%s%N; }
# timed NAME CMD...: runs CMD, appending its wall time and CPU time (user +
# system, from GNU time when installed) in ms to $B/NAME.wall and $B/NAME.cpu.
# The CPU time tells more than the wall time on a loaded machine.
timed() {
	local name=$1 t0
	shift
	t0=$(now)
	if [[ -x /usr/bin/time ]]; then
		/usr/bin/time -f '%U %S' -o "$B/$name.time" "$@"
		tail -1 "$B/$name.time" | awk '{printf "%d\n", ($1 + $2) * 1000}' >>"$B/$name.cpu"
	else
		"$@"
	fi
	echo $(( ($(now) - t0) / 1000000 )) >>"$B/$name.wall"
}
# ms NAME: "W ms (CPU C ms)", medians
ms() {
	local w c=
	w=$(median <"$B/$1.wall")
	[[ -s $B/$1.cpu ]] && c=" (CPU $(median <"$B/$1.cpu") ms)"
	echo "$w ms$c"
}
# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
have() { command -v "$1" >/dev/null; }

# --- 1. one file out of a big kit -------------------------------------------
K=$B/debug-bench-1.0.0.kit.tar.zst
[[ -f $B/bench.key ]] || (cd "$B" && "$OFFKIT" key generate --output-key-prefix bench >/dev/null)
if [[ ! -f $K ]]; then
	echo "writing $N debug files of $SIZE bytes and building the kit under $B ..." >&2
	t0=$(now)
	ID=$("$B/debugcorpus" -o "$B/src/symbols" -n "$N" -size "$SIZE")
	printf 'name: debug-bench\nversion: 1.0.0\ncreatedAt: 2025-10-20T00:00:00Z\ndebug:\n  - src: symbols\n    kind: debug-file\n' >"$B/src/kit.yaml"
	"$OFFKIT" build -f "$B/src/kit.yaml" -o "$B" --key "$B/bench.key" >/dev/null 2>&1
	echo "$ID" >"$B/id"
	P=debug/.build-id/${ID:0:2}/${ID:2}.debug
	# Keep the target's bytes to compare with, drop the rest of the source.
	"$OFFKIT" debug buildid "$B"/src/symbols/*.debug | awk -v id="$ID" '$1 == id {print $2}' | xargs -I{} cp {} "$B/want.debug"
	rm -rf "$B/src"
	echo "  done in $(( ($(now) - t0) / 1000000000 )) s" >&2
fi
ID=$(cat "$B/id")
P=debug/.build-id/${ID:0:2}/${ID:2}.debug
KSIZE=$(stat -c %s "$K")

rm -f "$B"/*.wall "$B"/*.cpu
fetch_read=
for _ in $(seq "$RUNS"); do
	rm -f "$B/out.debug"
	timed fetch "$OFFKIT" debug fetch "$ID" -o "$B/out.debug" --from "$K" --key "$B/bench.pub" --json >"$B/fetch.json"
	cmp -s "$B/out.debug" "$B/want.debug" || { echo "bench-debug: fetched file differs" >&2; exit 1; }
	fetch_read=$(sed -n 's/.*"kitBytesRead": *\([0-9]*\).*/\1/p' "$B/fetch.json")
	# OUT on tmpfs: the fsync before the rename costs nothing there.
	if [[ -d /dev/shm && -w /dev/shm ]]; then
		timed fetchshm "$OFFKIT" debug fetch "$ID" -o /dev/shm/offkit-bench.debug --from "$K" --key "$B/bench.pub" >/dev/null
		rm -f /dev/shm/offkit-bench.debug
	fi
	timed start "$OFFKIT" version >/dev/null
done
FETCH=$(ms fetch)
[[ -s $B/fetchshm.wall ]] && FETCH="$FETCH; OUT on tmpfs: $(ms fetchshm)"
START=$(ms start)

mkdir -p "$B/x"
for _ in $(seq "$RUNS"); do
	rm -rf "$B/x"/*
	timed tar tar --zstd -xf "$K" -C "$B/x" "$P"
	cmp -s "$B/x/$P" "$B/want.debug" || { echo "bench-debug: tar's file differs" >&2; exit 1; }
	rm -rf "$B/x"/*
	timed occ tar --zstd -xf "$K" -C "$B/x" --occurrence=1 "$P"
done
TAR=$(ms tar) OCC=$(ms occ)
# Bytes tar's zstd reads: what dd feeds it before tar stops.
dd_bytes() { sed -n 's/^\([0-9]*\) bytes.*/\1/p' "$1" | tail -1; }
rm -rf "$B/x"/*
dd if="$K" bs=64K 2>"$B/dd.err" | tar --zstd -xf - -C "$B/x" "$P"
TAR_READ=$(dd_bytes "$B/dd.err")
rm -rf "$B/x"/*
# (dd ignores SIGPIPE, so that it reports what it read when tar stops.)
(trap '' PIPE; dd if="$K" bs=64K 2>"$B/dd.err" || true) | tar --zstd -xf - -C "$B/x" --occurrence=1 "$P"
OCC_READ=$(dd_bytes "$B/dd.err")
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f %%", 100 * a / b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.1f×", a / b; else print "-"}'; }

# --- 2. debuginfod lookups per second ---------------------------------------
DBG_ROW="| debuginfod lookups/s (small .debug, 50 connections) | skipped | skipped | | ≥ 2× |"
missing=()
for t in gcc objcopy debuginfod wrk unshare ip curl; do have "$t" || missing+=("$t"); done
if [[ ${#missing[@]} -gt 0 ]]; then
	DBG_ROW="| debuginfod lookups/s | skipped: ${missing[*]} not installed (scripts/install-interop-tools.sh) | | | ≥ 2× |"
else
	D=$B/debuginfod
	rm -rf "$D" && mkdir -p "$D/src/symbols" "$D/files"
	printf '#include <stdio.h>\nstatic int answer(int x) { return x * 6; }\nint main(void) { printf("%%d\\n", answer(7)); return 0; }\n' >"$D/prog.c"
	gcc -g -O0 -Wl,--build-id -o "$D/prog" "$D/prog.c"
	objcopy --only-keep-debug "$D/prog" "$D/src/symbols/prog.debug"
	cp "$D/src/symbols/prog.debug" "$D/files/"
	SID=$("$OFFKIT" debug buildid "$D/prog" | cut -d' ' -f1)
	printf 'name: debuginfod-bench\nversion: 1.0.0\ncreatedAt: 2025-10-20T00:00:00Z\ndebug:\n  - src: symbols\n    kind: debug-file\n' >"$D/src/kit.yaml"
	"$OFFKIT" build -f "$D/src/kit.yaml" -o "$D" --key "$B/bench.key" >/dev/null 2>&1
	"$OFFKIT" install "$D/debuginfod-bench-1.0.0.kit.tar.zst" --root "$D/site" --key "$B/bench.pub" >/dev/null
	# Everything below runs in a network namespace with loopback alone.
	unshare -n bash -s -- "$OFFKIT" "$D" "$SID" <<'NS'
set -euo pipefail
OFFKIT=$1 D=$2 SID=$3
ip link set lo up
"$OFFKIT" serve --root "$D/site" --listen 127.0.0.1:8091 2>"$D/serve.log" &
s1=$!
debuginfod -F "$D/files" -p 8092 -d "$D/debuginfod.sqlite" >"$D/debuginfod.log" 2>&1 &
s2=$!
trap 'kill $s1 $s2 2>/dev/null; wait 2>/dev/null || true' EXIT
for port in 8091 8092; do
	for _ in $(seq 300); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/buildid/$SID/debuginfo") == 200 ]] && break
		sleep 0.1
	done
	cmp -s <(curl -s "http://127.0.0.1:$port/buildid/$SID/debuginfo") "$D/files/prog.debug" || { echo "port $port does not serve the file" >&2; exit 1; }
done
for port in 8091 8092; do
	wrk -t2 -c50 -d10s "http://127.0.0.1:$port/buildid/$SID/debuginfo" >"$D/wrk-$port.txt"
done
NS
	rps() { awk '/^Requests\/sec:/ {printf "%d", $2}' "$1"; }
	lat() { awk '/^ +Latency/ {print $2}' "$1"; }
	O=$(rps "$D/wrk-8091.txt") E=$(rps "$D/wrk-8092.txt")
	DBG_ROW="| debuginfod lookups/s (gcc .debug of $(stat -c %s "$D/files/prog.debug") bytes, 50 connections, wrk 10 s) | $O/s (mean latency $(lat "$D/wrk-8091.txt")) | elfutils debuginfod -F: $E/s ($(lat "$D/wrk-8092.txt")) | $(ratio "$O" "$E") | ≥ 2× |"
fi

# --- 3. build ids over /usr/bin ---------------------------------------------
elfs=()
for f in /usr/bin/*; do
	[[ -f $f && ! -L $f ]] || continue
	[[ $(head -c4 "$f" 2>/dev/null | od -An -c | tr -d ' ') == '177ELF' ]] && elfs+=("$f")
done
readelf_loop() { for f in "$@"; do readelf -n "$f" >/dev/null 2>&1 || true; done; }
export -f readelf_loop
for _ in $(seq "$RUNS"); do
	timed buildid "$OFFKIT" debug buildid "${elfs[@]}" >/dev/null 2>&1 || true
	timed readelf bash -c 'readelf_loop "$@"' _ "${elfs[@]}"
done

GB=$(awk -v s="$KSIZE" 'BEGIN {printf "%.2f GB", s / 1e9}')
printf '\n| measure | offkit | baseline | ratio | goal |\n|---|---|---|---|---|\n'
printf '| rehydrate one %s-byte .debug from a %s kit (%s files), wall (CPU) | debug fetch --from K: %s; offkit version alone: %s | tar --zstd -xf K PATH: %s; with --occurrence=1: %s | %s faster than tar (%s than --occurrence=1), wall | < 100 ms |\n' \
	"$(stat -c %s "$B/want.debug")" "$GB" "$N" "$FETCH" "$START" "$TAR" "$OCC" "$(ratio "$(median <"$B/tar.wall")" "$(median <"$B/fetch.wall")")" "$(ratio "$(median <"$B/occ.wall")" "$(median <"$B/fetch.wall")")"
printf '| bytes of the kit file read | %s (%s) | tar: %s (%s); --occurrence=1: %s (%s) | | < 2 %% |\n' \
	"$fetch_read" "$(pct "$fetch_read" "$KSIZE")" "$TAR_READ" "$(pct "$TAR_READ" "$KSIZE")" "$OCC_READ" "$(pct "$OCC_READ" "$KSIZE")"
echo "$DBG_ROW"
printf '| build ids of the %d ELF files of /usr/bin, wall (CPU) | one offkit debug buildid: %s | readelf -n per file: %s | %s, wall | |\n' \
	"${#elfs[@]}" "$(ms buildid)" "$(ms readelf)" "$(ratio "$(median <"$B/readelf.wall")" "$(median <"$B/buildid.wall")")"
