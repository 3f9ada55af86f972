#!/usr/bin/env bash
# Installs the stock tools `make interop` checks offkit against, at pinned
# versions, into ./bin: cosign and crane with `go install`, oras through the
# wrapper module in tools/oras (the proxy refuses its `go install`), and
# the OCI distribution-spec conformance suite (built from the Go module
# proxy at a pinned commit, as ./bin/oci-conformance), and
# skopeo, containerd (with ctr), debuginfod (elfutils' debuginfod-find) and gdb (and wrk, curl for `make bench`) from Debian's packages. Tools already present at the pinned version
# are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
BIN="$PWD/bin"
mkdir -p "$BIN"

COSIGN_VERSION=v2.6.5
CRANE_VERSION=v0.20.6
REGISTRY_VERSION=v3.0.0
# The conformance module has no release tags of its own (the repository's
# v1.1.x tags are the spec's, not this module's): pin its pseudo-version.
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111

have() { [ -x "$BIN/$1" ] && [ -f "$BIN/.$1-$2" ]; }
mark() { touch "$BIN/.$1-$2"; }

if ! have cosign "$COSIGN_VERSION"; then
  echo "installing cosign $COSIGN_VERSION"
  GOBIN="$BIN" go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION"
  mark cosign "$COSIGN_VERSION"
fi
if ! have crane "$CRANE_VERSION"; then
  echo "installing crane $CRANE_VERSION"
  GOBIN="$BIN" go install "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
  mark crane "$CRANE_VERSION"
fi
ORAS_VERSION=$(awk '{for (i = 1; i < NF; i++) if ($i == "oras.land/oras") print $(i+1)}' tools/oras/go.mod)
if ! have oras "$ORAS_VERSION"; then
  echo "installing oras $ORAS_VERSION"
  (cd tools/oras && go build -o "$BIN/oras" oras.land/oras/cmd/oras)
  mark oras "$ORAS_VERSION"
fi
if ! have registry "$REGISTRY_VERSION"; then
  echo "installing distribution registry $REGISTRY_VERSION"
  GOBIN="$BIN" go install "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
  mark registry "$REGISTRY_VERSION"
fi
if ! have oci-conformance "$CONFORMANCE_VERSION"; then
  echo "installing the distribution-spec conformance suite $CONFORMANCE_VERSION"
  gobin=$(mktemp -d)
  GOBIN="$gobin" go install "github.com/opencontainers/distribution-spec/conformance@$CONFORMANCE_VERSION"
  mv "$gobin/conformance" "$BIN/oci-conformance"
  rmdir "$gobin"
  mark oci-conformance "$CONFORMANCE_VERSION"
fi

apt_pkgs=()
command -v skopeo >/dev/null || apt_pkgs+=(skopeo)
{ command -v containerd && command -v ctr; } >/dev/null || apt_pkgs+=(containerd)  # ctr pulls from offkit serve
command -v zstd >/dev/null || apt_pkgs+=(zstd)
command -v wrk >/dev/null || apt_pkgs+=(wrk)     # make bench: HTTP load
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v debuginfod-find >/dev/null || apt_pkgs+=(debuginfod)  # elfutils' client, against offkit serve's /buildid
command -v gdb >/dev/null || apt_pkgs+=(gdb)
command -v jq >/dev/null || apt_pkgs+=(jq)                 # the mirror smoke test (runbook section 6)
command -v htpasswd >/dev/null || apt_pkgs+=(apache2-utils)  # htpasswd -B, the mirror gateway's format
command -v nginx >/dev/null || apt_pkgs+=(nginx-light)       # make bench: the mirror next to nginx
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "installing ${apt_pkgs[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi
