#!/usr/bin/env bash
# Builds Tether's wasmtime containerd shim (deploy/wasm-shim: runwasi's containerd-shim-wasm +
# wasmtime, from crates.io) into
#   ${TETHER_CACHE:-$HOME/.cache/tether}/wasm-shim-<hash>/bin/containerd-shim-wasmtime-v1
# where <hash> covers Cargo.toml, Cargo.lock, src/ and the rustc version: a present output is
# reused as is. Cargo's target directory stays in the cache too (wasm-shim-target), so a change
# rebuilds incrementally. Prints how long the build took.
#
# test/cluster/build.sh runs it (with TETHER_CACHE set to the shared cache beside containerd 2's),
# so the e2e setup builds it before the nodes start; test/e2e/containerd.ts then gives node 1's
# containerd 1.6 the `wasmtime` runtime.
#
# Usage: test/cluster/build-wasm-shim.sh [--print-dir]
#   --print-dir  print the bin directory and exit (no build)
#
# Needs cargo (rustup), libseccomp-dev + pkg-config (youki's libcontainer links libseccomp) and
# protobuf-compiler (containerd-client generates its gRPC code with protoc).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(cd "$here/../../deploy/wasm-shim" && pwd)"
cache="${TETHER_CACHE:-$HOME/.cache/tether}"

# build.sh sets TETHER_LOG_PREFIX=build.sh: test/cluster/cluster.ts turns its lines into the progress line.
log() { echo "[${TETHER_LOG_PREFIX:-build-wasm-shim.sh}] $*" >&2; }

command -v cargo >/dev/null || { log "cargo not found: install Rust with rustup"; exit 1; }

hash="$( (cd "$crate" && cat Cargo.toml Cargo.lock $(find src -type f | LC_ALL=C sort); rustc --version) | sha256sum | cut -c1-16)"
out="$cache/wasm-shim-$hash"
bin="$out/bin"
name=containerd-shim-wasmtime-v1

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.wasm-shim.lock"
flock 9
if [[ -x "$bin/$name" ]]; then
  log "wasm shim $hash: cached"
  exit 0
fi
missing=()
pkg-config --exists libseccomp 2>/dev/null || missing+=(libseccomp-dev pkg-config)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if [[ ${#missing[@]} -gt 0 ]]; then
  log "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
  exit 1
fi
start=$SECONDS
log "wasm shim $hash: building (cold: several minutes on 2 cores)…"
log "wasm shim $hash: compiling 0 packages"
export CARGO_TARGET_DIR="$cache/wasm-shim-target"
(cd "$crate" && cargo build --release --locked --bin "$name")
mkdir -p "$bin"
cp -f "$CARGO_TARGET_DIR/release/$name" "$bin/$name.tmp"
mv -f "$bin/$name.tmp" "$bin/$name"
# Earlier builds' outputs (other hashes) are never used again.
find "$cache" -maxdepth 1 -name 'wasm-shim-*' -not -name "wasm-shim-$hash" -not -name wasm-shim-target -exec rm -rf {} +
log "wasm shim $hash: built in $((SECONDS - start))s: $bin/$name ($(du -h "$bin/$name" | cut -f1))"
