#!/usr/bin/env bash
# Builds the upstream programs the tests hold halb to, from the Go module proxy only, into a cache
# outside the repository: $HALB_UPSTREAM_CACHE (default ~/.cache/halb-upstream)/<tool>-<version>/.
# A tool whose binary is already there for the same go.mod, go.sum, sources, flags and Go version
# is not rebuilt, so a second run takes well under a second.
#
#   test/upstream/build.sh TOOL...          build what is missing; print "TOOL PATH" per tool
#   test/upstream/build.sh --path TOOL...   print the paths of built tools, never build; exit 1
#                                           naming the tools that are not built (yet)
#   test/upstream/build.sh --list           the tools, their versions and whether they are built
#
# Downloads (go mod download) run under the machine-wide lock /tmp/halb-netns.lock, as every
# download on the project's machines does; the compilation does not hold it. Do not wrap this
# script in that lock yourself (it would wait for itself), unless you set HALB_NETNS_LOCK_HELD=1.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${HALB_UPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/halb-upstream}"
lock=/tmp/halb-netns.lock

# One line per tool: name, module folder (here), package to build, the module whose version
# names the build, extra -ldflags. A new tool is a new line (and a folder with its go.mod).
tools() {
  local kube_version
  kube_version="$(module_version kube k8s.io/kubernetes)"
  local kube_minor="${kube_version#v1.}"
  kube_minor="${kube_minor%%.*}"
  # What `kubectl version` and /version report; upstream's own build sets these the same way.
  local kube_ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
  done
  echo "kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes|$kube_ldflags"
  echo "kube-controller-manager|kube|k8s.io/kubernetes/cmd/kube-controller-manager|k8s.io/kubernetes|$kube_ldflags"
  echo "etcd|etcd|halb.dev/test/upstream/etcd|go.etcd.io/etcd/server/v3|"
  echo "halb-argocd|argocd|halb.dev/test/upstream/argocd|github.com/argoproj/argo-cd/v3|"
}

say() { echo "upstream: $*" >&2; }

# The version a module folder's go.mod requires of a module.
module_version() {
  awk -v m="$2" '$1 != "//" { for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) { print $(i + 1); exit } }' "$here/$1/go.mod"
}

tool_line() {
  local line
  line="$(tools | awk -F'|' -v t="$1" '$1 == t')"
  if [ -z "$line" ]; then
    say "unknown tool '$1'; known: $(tools | cut -d'|' -f1 | tr '\n' ' ')$(own_scripts | sed 's/^/ /' | tr -d '\n')"
    exit 2
  fi
  echo "$line"
}

# Tools whose folder has a build.sh of its own (helm): this script hands them over to it.
own_scripts() {
  local f
  for f in "$here"/*/build.sh; do [ -f "$f" ] && basename "$(dirname "$f")"; done
}
has_own_script() { [ -f "$here/$1/build.sh" ]; }

# Everything that decides the binary: when it changes, the tool is rebuilt.
fingerprint() {
  local dir="$1" ldflags="$2"
  {
    go env GOVERSION GOOS GOARCH
    echo "$ldflags"
    cat "$here/$dir"/go.mod "$here/$dir"/go.sum "$here/$dir"/*.go 2>/dev/null || true
  } | sha256sum | cut -c1-16
}

# go for these builds: no cgo, no workspace, no toolchain download, go.mod as written.
export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"

tool_path() {
  local name="$1" dir="$2" version_module="$3" ldflags="$4"
  local version
  version="$(module_version "$dir" "$version_module")"
  echo "$cache/$name-$version/$name|$cache/$name-$version/build.stamp|$(fingerprint "$dir" "$ldflags")"
}

is_built() {
  local binary="$1" stamp="$2" print="$3"
  [ -x "$binary" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$print" ]
}

download() {
  local dir="$1"
  # Already in the module cache: no network, no lock.
  if (cd "$here/$dir" && GOPROXY=off go mod download 2>/dev/null); then return 0; fi
  say "downloading the modules of test/upstream/$dir (under $lock)"
  if [ "${HALB_NETNS_LOCK_HELD:-}" = 1 ]; then
    (cd "$here/$dir" && go mod download)
  else
    (cd "$here/$dir" && flock "$lock" go mod download)
  fi
}

build() {
  local names=("$@") started=$SECONDS
  declare -A by_dir=()
  local name dir pkg version_module ldflags
  for name in "${names[@]}"; do
    IFS='|' read -r name dir pkg version_module ldflags <<<"$(tool_line "$name")"
    IFS='|' read -r binary stamp print <<<"$(tool_path "$name" "$dir" "$version_module" "$ldflags")"
    if is_built "$binary" "$stamp" "$print"; then continue; fi
    by_dir[$dir]+="$name "
  done
  for dir in "${!by_dir[@]}"; do
    download "$dir"
    # Tools of one module build in one go build: they share most packages.
    local out
    out="$(mktemp -d "$cache/.build-XXXXXX")"
    local pkgs=() first_ldflags=""
    for name in ${by_dir[$dir]}; do
      IFS='|' read -r name _ pkg version_module ldflags <<<"$(tool_line "$name")"
      pkgs+=("$pkg")
      first_ldflags="$ldflags"
    done
    say "building ${by_dir[$dir]}from test/upstream/$dir (go $(go env GOVERSION), -trimpath, CGO_ENABLED=0)"
    local t0=$SECONDS
    (cd "$here/$dir" && GOPROXY=off nice -n 10 go build -trimpath -ldflags="-s -w$first_ldflags" -o "$out/" "${pkgs[@]}")
    for name in ${by_dir[$dir]}; do
      IFS='|' read -r name _ pkg version_module ldflags <<<"$(tool_line "$name")"
      IFS='|' read -r binary stamp print <<<"$(tool_path "$name" "$dir" "$version_module" "$ldflags")"
      mkdir -p "$(dirname "$binary")"
      # The package's last path element names go build's output; the wrapper modules' do not.
      local built="$out/$(basename "$pkg")"
      mv -f "$built" "$binary"
      echo "$print" >"$stamp"
    done
    rmdir "$out" 2>/dev/null || rm -rf "$out"
    say "built ${by_dir[$dir]}in $((SECONDS - t0)) s"
  done
  [ "${#by_dir[@]}" -gt 0 ] && say "done in $((SECONDS - started)) s"
  return 0
}

print_paths() {
  local missing=() name dir pkg version_module ldflags
  for name in "$@"; do
    IFS='|' read -r name dir pkg version_module ldflags <<<"$(tool_line "$name")"
    IFS='|' read -r binary stamp print <<<"$(tool_path "$name" "$dir" "$version_module" "$ldflags")"
    if is_built "$binary" "$stamp" "$print"; then echo "$name $binary"; else missing+=("$name"); fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "not built: ${missing[*]} (run test/upstream/build.sh ${missing[*]})"
    return 1
  fi
}

command -v go >/dev/null || { say "go is not installed (Go 1.24 or later builds these tools)"; exit 1; }
mkdir -p "$cache"
case "${1:-}" in
  ""|-h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --list)
    tools | while IFS='|' read -r name dir pkg version_module ldflags; do
      IFS='|' read -r binary stamp print <<<"$(tool_path "$name" "$dir" "$version_module" "$ldflags")"
      state="not built"; is_built "$binary" "$stamp" "$print" && state="built: $binary"
      echo "$name $(module_version "$dir" "$version_module") ($pkg) $state"
    done
    for name in $(own_scripts); do echo "$name (its own test/upstream/$name/build.sh)"; done
    exit 0 ;;
  --path|"") ;;
  -*) say "unknown option $1"; exit 2 ;;
esac
mode=build
if [ "$1" = --path ]; then mode=path; shift; fi
# Tools with their own script first, then the ones in tools().
mine=() status=0
for name in "$@"; do
  if has_own_script "$name"; then
    if [ "$mode" = path ]; then bash "$here/$name/build.sh" --path || status=1; else bash "$here/$name/build.sh" || status=1; fi
  else
    mine+=("$name")
  fi
done
if [ "${#mine[@]}" -gt 0 ]; then
  [ "$mode" = build ] && build "${mine[@]}"
  print_paths "${mine[@]}" || status=1
fi
exit "$status"
