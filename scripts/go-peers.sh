#!/usr/bin/env bash
# Build the test peers Debian lacks, with the machine's Go, from the Go module proxy only
# (pinned versions; nothing of their source is committed):
#   go-peers.sh containerd VERSION DIR   containerd, ctr and containerd-shim-runc-v2 into DIR/usr/bin
#   go-peers.sh critest VERSION DIR      critest (cri-tools' conformance suite) into DIR/usr/bin
# Go's module and build caches (~/go/pkg/mod, ~/.cache/go-build) make a second build quick.
set -euo pipefail

die() { echo "go-peers: $*" >&2; exit 1; }
[ $# = 3 ] || die "usage: $0 containerd|critest VERSION DIR"
what=$1 version=$2 dir=$3

go=$(command -v go || true)
[ -n "$go" ] || { [ -x /usr/local/go/bin/go ] && go=/usr/local/go/bin/go; }
[ -n "$go" ] || die "no Go toolchain (go on PATH or /usr/local/go/bin/go) to build $what $version"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
export GOBIN="$work/bin" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

case "$what" in
  containerd)
    # no_btrfs: the btrfs snapshotter's cgo needs headers Debian ships in another package, and
    # no test here uses btrfs.
    module=github.com/containerd/containerd/v2
    "$go" install -tags no_btrfs "$module/cmd/containerd@$version" "$module/cmd/ctr@$version" \
      "$module/cmd/containerd-shim-runc-v2@$version"
    ;;
  critest)
    # critest is cri-tools' test binary (`go test -c`), so it is built inside a throwaway
    # module that requires the pinned cri-tools with its test dependencies.
    (
      cd "$work"
      "$go" mod init ctrd.invalid/critest-build >/dev/null 2>&1
      "$go" get -t "sigs.k8s.io/cri-tools/cmd/critest@$version" >/dev/null
      "$go" test -c -o "$work/bin/critest" sigs.k8s.io/cri-tools/cmd/critest
    )
    ;;
  *) die "unknown peer $what" ;;
esac

rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/usr/bin"
cp "$work"/bin/* "$dir.tmp/usr/bin/"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
