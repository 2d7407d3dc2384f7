#!/usr/bin/env bash
# Builds the real helm from the Go module proxy (the version go.mod pins) into the cache the other
# upstream tools use: $HALB_UPSTREAM_CACHE (default ~/.cache/halb-upstream)/helm-<version>/helm.
# Rebuilt only when go.mod, go.sum or the Go version change. Prints "helm PATH".
#   test/upstream/helm/build.sh          build if needed
#   test/upstream/helm/build.sh --path   print the path if built; exit 1 otherwise
# Downloads run under the machine-wide lock /tmp/halb-netns.lock (HALB_NETNS_LOCK_HELD=1 if held).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${HALB_UPSTREAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/halb-upstream}"
version="$(awk '$1 == "helm.sh/helm/v4" { print $2; exit }' "$here/go.mod")"
binary="$cache/helm-$version/helm"
stamp="$cache/helm-$version/build.stamp"
export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
print="$( { go env GOVERSION GOOS GOARCH; cat "$here/go.mod" "$here/go.sum"; } | sha256sum | cut -c1-16)"
built() { [ -x "$binary" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$print" ]; }
if [ "${1:-}" = --path ]; then
  built || { echo "upstream: helm is not built (run test/upstream/helm/build.sh)" >&2; exit 1; }
  echo "helm $binary"; exit 0
fi
if ! built; then
  cd "$here"
  if ! GOPROXY=off go mod download 2>/dev/null; then
    echo "upstream: downloading helm's modules (under /tmp/halb-netns.lock)" >&2
    if [ "${HALB_NETNS_LOCK_HELD:-}" = 1 ]; then go mod download; else flock /tmp/halb-netns.lock go mod download; fi
  fi
  echo "upstream: building helm $version (go $(go env GOVERSION))" >&2
  t0=$SECONDS
  mkdir -p "$(dirname "$binary")"
  GOPROXY=off nice -n 10 go build -trimpath -ldflags="-s -w" -o "$binary.tmp" helm.sh/helm/v4/cmd/helm
  mv -f "$binary.tmp" "$binary"
  echo "$print" >"$stamp"
  echo "upstream: built helm in $((SECONDS - t0)) s" >&2
fi
echo "helm $binary"
