#!/usr/bin/env bash
# The operator's day of the README, run for real (`make walkthrough`): make a
# key, build releases 1.4.2 and 1.4.3 of the example kit
# (examples/zastava-runtime; the image tag and the kit version both change),
# verify, install both, serve (images, rules, the feed mirror: 1.4.3
# carries a newer export), refuse a version that is not newer, roll back,
# roll forward, refuse a kit damaged in transit. Each command is printed
# after "$ " with its output (standard output; the log lines a command writes
# on standard error go to WORKDIR/log, and are shown when a step fails; a
# refusal's error message is shown). No network; the server listens on a free
# loopback port.
#
#   scripts/walkthrough.sh [--readme | --check README.md] OFFKIT [WORKDIR]
#
# --readme prints what the README shows, as Markdown: the same output with
# what depends on the generated key (the key id, the manifest digests, which
# commit to it, and the kit sizes, which hold its signature) and on the clock
# (a kit's age: "age …") marked as such. --check README.md compares that
# with the README's copy (between the "walkthrough" comment lines) and
# prints the difference. WORKDIR (default _walkthrough) is emptied first.
set -euo pipefail

readme=false check=
case ${1:-} in
--readme)
	readme=true
	shift
	;;
--check)
	check=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
	shift 2
	;;
esac
if [[ $# -lt 1 || $# -gt 2 ]]; then
	echo "usage: scripts/walkthrough.sh [--readme | --check README.md] OFFKIT [WORKDIR]" >&2
	exit 2
fi
if [[ -n $check ]]; then
	want=$(mktemp) have=$(mktemp)
	trap 'rm -f "$want" "$have"' EXIT
	"$0" --readme "$@" >"$want"
	sed -n '/^<!-- walkthrough: begin/,/^<!-- walkthrough: end/{//!p}' "$check" >"$have"
	if ! diff -u --label "$check" --label "scripts/walkthrough.sh --readme" "$have" "$want"; then
		echo "walkthrough: $check is out of date: paste the output of scripts/walkthrough.sh --readme between its walkthrough lines" >&2
		exit 1
	fi
	echo "walkthrough: $check shows what the walkthrough prints"
	exit 0
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
offkit=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=${2:-$repo/_walkthrough}
example=$repo/examples/zastava-runtime

rm -rf "$work"
mkdir -p "$work/bin"
work=$(cd "$work" && pwd)
ln -s "$offkit" "$work/bin/offkit"
export PATH=$work/bin:$PATH COSIGN_PASSWORD=walkthrough
cd "$work"

serve_pid=
cleanup() {
	if [[ -n $serve_pid ]]; then
		kill "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT

# Values that depend on the key or the clock, and what --readme shows
# instead. Filled in as they appear.
masks=()
mask() { masks+=("$1" "$2"); }
filter() {
	local line i
	while IFS= read -r line || [[ -n $line ]]; do
		line=${line%$'\r'} # HTTP header lines end in CR LF
		if $readme; then
			for ((i = 0; i < ${#masks[@]}; i += 2)); do
				line=${line//"${masks[i]}"/"${masks[i + 1]}"}
			done
			# status: the age of a kit depends on today's date.
			# (status pads it to 10 columns: so does "…" here.)
			if [[ $line =~ ^(.*\ age\ )([^ ]+( [^ ]+)?)\ +((fresh|STALE|EXPIRED)\ .*)$ ]]; then
				line="${BASH_REMATCH[1]}…          ${BASH_REMATCH[4]}"
			fi
			# status: so does the age of a feed-mirror export.
			if [[ $line =~ ^(\ \ (concelier|excititor)\ [^ ]+\ +age\ )([^ ]+( [^ ]+)?)\ +(.*)$ ]]; then
				line="${BASH_REMATCH[1]}…          ${BASH_REMATCH[5]}"
			fi
		fi
		printf '%s\n' "$line"
	done
}

out=$work/.out errs=$work/.err
# run CMD [HOOK]: print CMD and its output; a failure stops the walkthrough
# with the cause. HOOK, a function, runs before the output is printed (to
# learn the values to mask from it).
run() {
	printf '$ %s\n' "$1"
	local rc=0
	eval "$1" >"$out" 2>"$errs" || rc=$?
	{ printf '$ %s\n' "$1"; cat "$errs"; } >>"$work/log"
	if [[ $rc != 0 ]]; then
		cat "$out" "$errs" >&2
		echo "walkthrough: \"$1\" exited $rc (expected 0)" >&2
		exit 1
	fi
	${2:-:}
	filter <"$out"
}
# refused CODE CMD: CMD must fail with exit CODE; print it, its output and
# the code.
refused() {
	printf '$ %s\n' "$2"
	local rc=0
	eval "$2" >"$out" 2>&1 || rc=$?
	filter <"$out"
	printf '$ echo $?\n%s\n' "$rc"
	if [[ $rc != "$1" ]]; then
		echo "walkthrough: \"$2\" exited $rc (expected $1); its output is above" >&2
		exit 1
	fi
}
# say TEXT: a new part of the day; in the README, prose before a code block.
fence=false
say() {
	if ! $readme; then
		printf '\n# %s\n' "$*"
		return
	fi
	if $fence; then
		printf '```\n\n'
	fi
	printf '%s\n\n```\n' "$*"
	fence=true
}

# The two releases' sources: the example as it is (1.4.2), and a copy whose
# version, image tag and createdAt move on (1.4.3). Not shown: this is what
# a release engineer's repository would hold.
for v in 1.4.2 1.4.3; do
	src=$work/zastava-runtime-$v
	mkdir -p "$src"
	cp -R "$example/kit.yaml" "$example/rules" "$example/dashboards" "$example/values" "$example/mirror" "$example/debug" "$src/"
	(cd "$repo" && go run ./examples/zastava-runtime/mkimage -o "$src/_image" -src "$example/image" -version "$v") >/dev/null
done
# 1.4.3 carries a newer feed-mirror export (the same TEST signing keys).
(cd "$repo" && go run ./examples/zastava-runtime/mkmirror -o "$work/zastava-runtime-1.4.3/mirror" \
	-export-id 20261127T000000Z -at 2026-11-27T00:00:00Z)
sed -i -e 's/^version: 1\.4\.2$/version: 1.4.3/' \
	-e 's/zastava-observer:1\.4\.2$/zastava-observer:1.4.3/' \
	-e 's/^createdAt: 2026-11-20T/createdAt: 2026-11-27T/' \
	"$work/zastava-runtime-1.4.3/kit.yaml"
grep -q '^version: 1.4.3$' "$work/zastava-runtime-1.4.3/kit.yaml"
grep -q 'zastava-observer:1.4.3$' "$work/zastava-runtime-1.4.3/kit.yaml"

say "Connected side: a key, made once, and two releases of the kit."
mask_key() {
	local id
	id=$(grep -o 'sha256:[0-9a-f]\{64\}' "$out" | head -1)
	mask "$id" "sha256:… (depends on the key)"
	mask "${id:0:19}…" "sha256:…"
}
mask_kit() {
	local md size
	md=$(sed -n 's/^manifest \(sha256:[0-9a-f]\{64\}\).*/\1/p' "$out")
	size=$(sed -n 's/^built .* (\([0-9]*\) bytes, .*/\1/p' "$out")
	mask "$md" "sha256:… (depends on the key)"
	mask "${md:0:19}" "sha256:…"
	mask "($size bytes," "(… bytes, depends on the key;"
}
run "offkit key generate --output-key-prefix cosign" mask_key
for v in 1.4.2 1.4.3; do
	run "offkit build -f zastava-runtime-$v/kit.yaml -o out --key cosign.key" mask_kit
done

say "On site: check a kit, install both releases, look at the site."
run "offkit verify out/zastava-runtime-1.4.2.kit.tar.zst --key cosign.pub"
run "offkit install out/zastava-runtime-1.4.2.kit.tar.zst --root site --key cosign.pub"
run "offkit install out/zastava-runtime-1.4.3.kit.tar.zst --root site --key cosign.pub"
run "offkit status --root site"

say "Serve the site (port 0: any free port; the address is logged)."
printf '$ %s\n' "offkit serve --root site --listen 127.0.0.1:0 2>serve.log &"
offkit serve --root site --listen 127.0.0.1:0 2>serve.log &
serve_pid=$!
for _ in $(seq 100); do
	grep -q '127\.0\.0\.1:[0-9]' serve.log 2>/dev/null && break
	kill -0 "$serve_pid" 2>/dev/null || { cat serve.log >&2; echo "walkthrough: offkit serve exited" >&2; exit 1; }
	sleep 0.1
done
run "addr=\$(grep -o '127\.0\.0\.1:[0-9]*' serve.log | head -1)"
for _ in $(seq 50); do curl -fs "http://$addr/readyz" >/dev/null && break; sleep 0.1; done
run "curl -fsS http://\$addr/readyz"
run "curl -fsS http://\$addr/v2/stellaops/zastava-observer/tags/list; echo"
run "curl -fsSI http://\$addr/v2/stellaops/zastava-observer/manifests/1.4.3 | grep -i -e content-type -e docker-content-digest"
run "curl -fsS http://\$addr/rules/index.json"

say "The site is the feed mirror its Concelier and Excititor instances read: the newest export (1.4.3's) is served, 1.4.2's is retained; every file has a strong ETag, the payloads are immutable."
run "curl -fsSI http://\$addr/concelier/exports/index.json | grep -i -e cache-control -e etag"
run "curl -fsSI http://\$addr/concelier/exports/mirror/primary/bundle.json | grep -i -e cache-control -e content-type -e etag"
run "etag=\$(curl -fsSI http://\$addr/concelier/exports/mirror/primary/bundle.json | sed -n 's/^etag: //Ip' | tr -d '\\r')"
run "curl -sS -o /dev/null -w '%{http_code}\\n' -H \"If-None-Match: \$etag\" http://\$addr/concelier/exports/mirror/primary/bundle.json"
run "curl -fsS http://\$addr/excititor/mirror/community/index | grep -e exportKey -e format"
run "offkit mirror verify --root site --key mirror-p256=zastava-runtime-1.4.3/mirror/keys/mirror-key.pub --key zastava-runtime-1.4.3/mirror/keys/mirror-ed25519.jwk"

say "Versions only move forward: installing 1.4.2 over 1.4.3 is refused."
refused 8 "offkit install out/zastava-runtime-1.4.2.kit.tar.zst --root site --key cosign.pub"

say "Something wrong with 1.4.3? Roll back; the server follows without a restart."
run "offkit rollback --root site"
run "offkit status --root site"
run "curl -fsS http://\$addr/v2/stellaops/zastava-observer/tags/list; echo"
run "curl -fsS http://\$addr/concelier/exports/mirror/primary/bundle.json | grep generatedAt"

say "Fixed after all? The kit that set the high-water mark (same manifest digest) may return without force."
run "offkit install out/zastava-runtime-1.4.3.kit.tar.zst --root site --key cosign.pub"
run "curl -fsS http://\$addr/v2/stellaops/zastava-observer/tags/list; echo"
run "curl -fsS http://\$addr/concelier/exports/mirror/primary/bundle.json | grep generatedAt"

say "A kit damaged in transit never reaches the site."
run "cp out/zastava-runtime-1.4.3.kit.tar.zst damaged.kit.tar.zst"
# A byte in the content frame, counted from the end so that it does not
# depend on the key (the head frame before it holds the key id and the
# signatures).
run "printf '\\x00' | dd of=damaged.kit.tar.zst bs=1 seek=\$((\$(wc -c <damaged.kit.tar.zst) - 1000)) conv=notrunc status=none"
code=0
offkit verify damaged.kit.tar.zst --key cosign.pub >/dev/null 2>&1 || code=$?
if [[ $code == 0 ]]; then
	echo "walkthrough: the damaged kit verified" >&2
	exit 1
fi
refused "$code" "offkit verify damaged.kit.tar.zst --key cosign.pub"
if $fence; then
	printf '```\n'
fi
