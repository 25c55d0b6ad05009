#!/usr/bin/env bash
# Builds the Tether test cluster's binaries from the Go module proxy:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl
#   (one multicall binary, symlinked), etcd and helm.
# into ${TETHER_CACHE:-$HOME/.cache/tether}/k8s-<version>/bin, and
#   containerd 2.x (containerd, containerd-shim-runc-v2, ctr: the CDI-capable
#   runtime of the e2e's containerd-2 node)
# into ${TETHER_CACHE:-$HOME/.cache/tether}/containerd-<version>/bin (beside the directory
# k8s-<version> really is, when it is a symlink into the shared cache).
#
# Idempotent: each part is built once per pin. A stamp file per part records
# the pin (versions + a hash of the wrapper module files); when it matches,
# nothing is rebuilt. A cold build (empty Go caches) takes a long time on
# 2 cores, so CI should cache the output directory (and may cache GOMODCACHE).
#
# Usage: test/cluster/build.sh [--print-dir | --print-containerd-dir]
#   --print-dir             print the Kubernetes bin directory and exit (no build)
#   --print-containerd-dir  print the containerd 2 bin directory and exit (no build)
#
# TETHER_BUILD_PROGRESS=1 (set by cluster.ts, which draws a progress line from it): before each
# go build, "[build.sh] <part> <version>: compiling <N> packages" (N = the packages go list
# reports stale, i.e. not in the Go build cache, the main package included; 0 = unknown), then
# go build -v prints each package as it compiles it.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
HELM_VERSION=v3.22.0
# containerd 2 for the e2e's CDI node (Debian's containerd 1.6 has no CDI). Tags drop the
# snapshotters that need cgo or cannot work here; the result is one static binary.
CONTAINERD_VERSION=v2.4.2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${TETHER_CACHE:-$HOME/.cache/tether}"
out="$cache/k8s-$K8S_VERSION"
bin="$out/bin"

# Beside the real k8s-<version> dir: the e2e and faults caches symlink theirs to the shared
# one, so every control plane's build.sh run finds (or builds) the same containerd.
shared="$(readlink -f "$out" 2>/dev/null || true)"
containerd_out="$(dirname "${shared:-$out}")/containerd-$CONTAINERD_VERSION"
containerd_bin="$containerd_out/bin"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$bin"
  exit 0
fi
if [[ "${1:-}" == "--print-containerd-dir" ]]; then
  echo "$containerd_bin"
  exit 0
fi

# Static, reproducible-ish binaries; -s -w drops symbol tables (≈30% smaller).
export CGO_ENABLED=0
export GOFLAGS="-buildvcs=false -mod=readonly"

log() { echo "[build.sh] $*" >&2; }

progress=()
[[ "${TETHER_BUILD_PROGRESS:-}" == 1 ]] && progress=(-v)

# announce_packages <part> <module dir or empty> <package>: the total the progress line counts towards.
announce_packages() {
  [[ ${#progress[@]} -gt 0 ]] || return 0
  local total=0
  # Same -trimpath as the build, or every package counts as stale.
  if [[ -n "$2" ]]; then
    total="$(cd "$2" && go list -trimpath -deps -f '{{if .Stale}}{{.ImportPath}}{{end}}' "$3" 2>/dev/null | grep -c .)" || total=0
  fi
  log "$1: compiling $total packages"
}

# pin_of <dir-or-empty> <versions...>: what a stamp must contain for a part to be current.
pin_of() {
  local dir="$1"; shift
  local files=""
  if [[ -n "$dir" ]]; then
    files="$(cd "$dir" && sha256sum go.mod go.sum main.go | sha256sum | cut -c1-16)"
  fi
  echo "$* $files"
}

is_current() { [[ -x "$bin/$1" && -f "$out/.stamp-$1" && "$(cat "$out/.stamp-$1")" == "$2" ]]; }

mark_current() { echo "$2" > "$out/.stamp-$1"; }

# module_time <module dir> <module path>: release time of a dependency, used as
# buildDate so two builds of one pin report the same version info.
module_time() {
  (cd "$1" && go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "$2")
}

# module_sum <module dir> <module path> <version>: the proxy's content hash,
# standing in for a git commit (the proxy does not tell the commit).
module_sum() {
  grep -m1 "^$2 $3 h1:" "$1/go.sum" | awk '{print $3}'
}

build_kubernetes() {
  local dir="$here/k8s" pin
  pin="$(pin_of "$dir" "k8s=$K8S_VERSION")"
  if is_current k8s "$pin"; then log "kubernetes $K8S_VERSION: cached"; return; fi
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local date commit ldflags="-s -w" pkg
  date="$(module_time "$dir" k8s.io/kubernetes)"
  commit="$(module_sum "$dir" k8s.io/kubernetes "$K8S_VERSION")"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date -X $pkg.gitCommit=$commit"
  done
  log "kubernetes $K8S_VERSION: building (long on a cold cache)…"
  announce_packages "kubernetes $K8S_VERSION" "$dir" .
  (cd "$dir" && go build "${progress[@]}" -trimpath -ldflags "$ldflags" -o "$bin/k8s.tmp" .)
  mv -f "$bin/k8s.tmp" "$bin/k8s"
  local name
  for name in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    ln -sfn k8s "$bin/$name"
  done
  mark_current k8s "$pin"
}

build_etcd() {
  local dir="$here/etcd" pin
  pin="$(pin_of "$dir" "etcd=$ETCD_VERSION")"
  if is_current etcd "$pin"; then log "etcd $ETCD_VERSION: cached"; return; fi
  local commit
  commit="$(module_sum "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION")"
  log "etcd $ETCD_VERSION: building…"
  announce_packages "etcd $ETCD_VERSION" "$dir" .
  (cd "$dir" && go build "${progress[@]}" -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$commit" \
    -o "$bin/etcd.tmp" .)
  mv -f "$bin/etcd.tmp" "$bin/etcd"
  mark_current etcd "$pin"
}

build_helm() {
  local pin
  pin="$(pin_of "" "helm=$HELM_VERSION k8s=$K8S_VERSION")"
  if is_current helm "$pin"; then log "helm $HELM_VERSION: cached"; return; fi
  # Helm reports this as the cluster version when it has no cluster (helm template, lint).
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local v=helm.sh/helm/v3
  local ldflags="-s -w -X $v/internal/version.version=$HELM_VERSION -X $v/internal/version.gitTreeState=clean"
  ldflags+=" -X $v/pkg/chartutil.k8sVersionMajor=1 -X $v/pkg/chartutil.k8sVersionMinor=$minor"
  ldflags+=" -X $v/pkg/lint/rules.k8sVersionMajor=1 -X $v/pkg/lint/rules.k8sVersionMinor=$minor"
  log "helm $HELM_VERSION: building…"
  # go list cannot take path@version outside a module: the total stays unknown.
  announce_packages "helm $HELM_VERSION" "" ""
  local tmp="$out/helm-gobin"
  rm -rf "$tmp"
  # helm has no replace directives, so `go install …@version` works outside any module.
  (cd "$out" && GOBIN="$tmp" GOFLAGS=-buildvcs=false \
    go install "${progress[@]}" -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  mv -f "$tmp/helm" "$bin/helm"
  rm -rf "$tmp"
  mark_current helm "$pin"
}

build_containerd() {
  local pin commands=(containerd containerd-shim-runc-v2 ctr)
  pin="$(pin_of "" "containerd=$CONTAINERD_VERSION tags=no_btrfs,no_devmapper,no_zfs")"
  local current=1 name
  for name in "${commands[@]}"; do [[ -x "$containerd_bin/$name" ]] || current=0; done
  if [[ $current == 1 && -f "$containerd_out/.stamp" && "$(cat "$containerd_out/.stamp")" == "$pin" ]]; then
    log "containerd $CONTAINERD_VERSION: cached"
    return
  fi
  local m=github.com/containerd/containerd/v2
  local ldflags="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Revision=$(echo "$pin" | sha256sum | cut -c1-12)"
  log "containerd $CONTAINERD_VERSION: building…"
  # go list cannot take path@version outside a module: the total stays unknown.
  announce_packages "containerd $CONTAINERD_VERSION" "" ""
  local tmp="$containerd_out/gobin" pkgs=()
  for name in "${commands[@]}"; do pkgs+=("$m/cmd/$name@$CONTAINERD_VERSION"); done
  rm -rf "$tmp"
  mkdir -p "$containerd_bin"
  # No replace directives in containerd's go.mod: `go install …@version` works outside any module.
  (cd "$containerd_out" && GOBIN="$tmp" GOFLAGS=-buildvcs=false \
    go install "${progress[@]}" -trimpath -tags "no_btrfs no_devmapper no_zfs" -ldflags "$ldflags" "${pkgs[@]}")
  for name in "${commands[@]}"; do mv -f "$tmp/$name" "$containerd_bin/$name"; done
  rm -rf "$tmp"
  echo "$pin" > "$containerd_out/.stamp"
}

# Tether's wasmtime containerd shim (Rust, crates.io) for the e2e's containerd 1.6 node: its own
# script, cached by a hash of the crate, in the same shared cache as containerd 2.
build_wasm_shim() {
  TETHER_CACHE="$(dirname "$containerd_out")" TETHER_LOG_PREFIX=build.sh "$here/build-wasm-shim.sh"
}

main() {
  mkdir -p "$bin"
  # Two `cluster:up`s at once must not build twice into the same files.
  exec 9>"$out/.lock"
  flock 9
  local start=$SECONDS
  build_kubernetes
  build_etcd
  build_helm
  build_containerd
  build_wasm_shim
  log "done in $((SECONDS - start))s: $bin, $containerd_bin"
}

main "$@"
