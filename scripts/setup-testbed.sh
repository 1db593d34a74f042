#!/usr/bin/env bash
# Install what the real test bed needs, on a Debian machine, as root:
#   - Debian's containerd (1.6.20 on bookworm), runc, busybox-static, criu and rsyslog (the
#     log driver's syslog tests start their own on loopback), from apt, starting no service;
#   - containerd 2.1.9 (with its ctr and Go shim) from Debian's sid suite, unpacked into
#     .testbed/containerd-2.1 without installing anything;
#   - containerd 2.4.2 (containerd, ctr, Go shim) and critest from cri-tools v1.37.0, built
#     with the machine's Go from the Go module proxy (scripts/go-peers.sh) into
#     .testbed/containerd-2.4 and .testbed/critest;
#   - with --with-1.7, containerd 1.7.24 from trixie into .testbed/containerd-1.7.
# Safe to run again: it skips what is already there.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
testbed="$repo/.testbed"
with_17=0
for arg in "$@"; do
  case "$arg" in
    --with-1.7) with_17=1 ;;
    *) echo "usage: $0 [--with-1.7]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "setup-testbed: must run as root (it installs Debian packages and runs containers)" >&2
  exit 1
fi

need=()
for pair in containerd:containerd runc:runc busybox:busybox-static criu:criu rsyslogd:rsyslog tmux:tmux docker-registry:docker-registry skopeo:skopeo \
    /usr/lib/cni/bridge:containernetworking-plugins ip:iproute2 mkfs.ext4:e2fsprogs iptables:iptables \
    ipcmk:util-linux cc:gcc; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
# The test images' small programs (the pods' pause, critest's probes) are C built with
# `cc -static`, which needs glibc's static library.
[ -e "$(cc -print-file-name=libc.a 2>/dev/null)" ] || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-testbed: installing ${need[*]}"
  apt-get update -qq
  # Packages must not start their services (a system rsyslogd, containerd): the tests start
  # their own. policy-rc.d answering 101 tells invoke-rc.d so; ours goes when we are done.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Debian's package enables a system containerd under systemd; tests run their own, so it is
# neither needed nor touched here.

fetch_containerd() { # SUITE DIR
  local suite=$1 dir=$2
  if [ -x "$dir/usr/bin/containerd" ]; then
    return
  fi
  echo "setup-testbed: fetching containerd from $suite into ${dir#"$repo"/}"
  rm -rf "$dir.tmp"
  DEBIAN_FETCH_CACHE="$testbed/apt-$suite" bash "$repo/scripts/debian-fetch.sh" extract "$suite" "$dir.tmp" containerd >/dev/null
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
}

build_peer() { # WHAT VERSION DIR BINARY
  local what=$1 version=$2 dir=$3 binary=$4
  if [ -x "$dir/usr/bin/$binary" ] && [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$version" ]; then
    return
  fi
  echo "setup-testbed: building $what $version with Go into ${dir#"$repo"/} (a few minutes the first time)"
  bash "$repo/scripts/go-peers.sh" "$what" "$version" "$dir"
  echo "$version" > "$dir/VERSION"
}

# cargo-fuzz, for the fuzz targets under fuzz/ (`cargo xtask fuzz`, and the short run in
# `cargo xtask test`). They build on stable Rust (`-s none`), so no nightly is needed.
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup-testbed: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked --quiet
fi

mkdir -p "$testbed"
fetch_containerd sid "$testbed/containerd-2.1"
build_peer containerd v2.4.2 "$testbed/containerd-2.4" containerd
build_peer critest v1.37.0 "$testbed/critest" critest
if [ $with_17 = 1 ]; then
  fetch_containerd trixie "$testbed/containerd-1.7"
fi
rm -rf "$testbed"/apt-*

echo "setup-testbed: containerd $(containerd --version | awk '{print $3}'), $("$testbed/containerd-2.1/usr/bin/containerd" --version | awk '{print $3}'), $("$testbed/containerd-2.4/usr/bin/containerd" --version | awk '{print $3}')$( [ $with_17 = 1 ] && echo ", $("$testbed/containerd-1.7/usr/bin/containerd" --version | awk '{print $3}')"), runc $(runc --version | awk 'NR==1 {print $3}')"
