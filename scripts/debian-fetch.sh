#!/usr/bin/env bash
# Fetch Debian packages from another suite without touching the system's apt state.
#
#   debian-fetch.sh versions SUITE PKG...          print "PKG VERSION" for what SUITE publishes now
#   debian-fetch.sh extract SUITE DIR PKG[=VER]... download the .deb files and unpack them into DIR
#
# The apt sources are derived from this machine's own Debian sources (same mirror and keyring),
# with only the suite changed, so no mirror host is ever hard-coded. Nothing is installed: the
# packages are unpacked with `dpkg-deb -x`, so their dependency trees are never pulled in.
# Set DEBIAN_FETCH_CACHE to a directory to reuse the downloaded package lists between calls.
set -euo pipefail

die() { echo "debian-fetch: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 versions SUITE PKG... | extract SUITE DIR PKG[=VER]..."
mode=$1 suite=$2
shift 2

for tool in apt-get apt-cache dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool not found: this script needs a Debian system"
done

cache=${DEBIAN_FETCH_CACHE:-}
if [ -z "$cache" ]; then
  cache=$(mktemp -d)
  trap 'rm -rf "$cache"' EXIT
fi
mkdir -p "$cache/parts" "$cache/lists/partial" "$cache/cache/archives/partial" "$cache/debs"

# Write the deb822 sources for SUITE: every stanza of the machine's sources that names a plain
# release suite (no "-security"/"-updates" suffix), with Suites replaced.
sources="$cache/parts/fetch-$suite.sources"
if [ ! -s "$sources" ]; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    awk -v suite="$suite" '
      BEGIN { RS = ""; ORS = "\n\n" }
      {
        plain = 0; out = ""
        n = split($0, lines, "\n")
        for (i = 1; i <= n; i++) {
          line = lines[i]
          if (line ~ /^Suites:/) {
            m = split(substr(line, 8), words, /[ \t]+/)
            for (j = 1; j <= m; j++) if (words[j] != "" && words[j] !~ /-/) plain = 1
            line = "Suites: " suite
          }
          out = out line "\n"
        }
        if (plain && out !~ /debian-security/) printf "%s\n", out
      }' /etc/apt/sources.list.d/debian.sources >"$sources"
  elif [ -f /etc/apt/sources.list ]; then
    # One-line format: "deb [opts] URI SUITE COMPONENTS..."
    awk -v suite="$suite" '
      $1 == "deb" && $0 !~ /security/ {
        i = 2; opts = ""
        if ($2 ~ /^\[/) { while ($i !~ /\]$/) { opts = opts $i " "; i++ } opts = opts $i; i++ }
        if ($(i + 1) ~ /-/) next
        uri = $i; comps = ""
        for (k = i + 2; k <= NF; k++) comps = comps " " $k
        signed = ""
        if (match(opts, /signed-by=[^] ]+/)) signed = "Signed-By: " substr(opts, RSTART + 10, RLENGTH - 10) "\n"
        printf "Types: deb\nURIs: %s\nSuites: %s\nComponents:%s\n%s\n", uri, suite, comps, signed
        exit
      }' /etc/apt/sources.list >"$sources"
  fi
  [ -s "$sources" ] || die "found no Debian archive in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list"
fi

apt_opts=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$cache/parts"
  -o "Dir::State::Lists=$cache/lists"
  -o "Dir::Cache=$cache/cache"
  -o "Dir::State::Status=/dev/null"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
)

if [ ! -e "$cache/lists/.updated-$suite" ]; then
  apt-get -qq "${apt_opts[@]}" update >"$cache/update.log" 2>&1 ||
    { cat "$cache/update.log" >&2; die "apt-get update for suite $suite failed"; }
  touch "$cache/lists/.updated-$suite"
fi

case "$mode" in
  versions)
    for pkg in "$@"; do
      version=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$pkg" 2>/dev/null |
        awk '/^Version:/ { print $2; exit }')
      [ -n "$version" ] || die "suite $suite publishes no package named $pkg"
      echo "$pkg $version"
    done
    ;;
  extract)
    [ $# -ge 2 ] || die "usage: $0 extract SUITE DIR PKG[=VER]..."
    dest=$1
    shift
    mkdir -p "$dest"
    for spec in "$@"; do
      pkg=${spec%%=*}
      rm -f "$cache/debs/${pkg}_"*.deb
      (cd "$cache/debs" && apt-get -qq "${apt_opts[@]}" download "$spec" >/dev/null 2>"$cache/download.log") ||
        { cat "$cache/download.log" >&2; die "could not download $spec from suite $suite"; }
      deb=$(ls "$cache/debs/${pkg}_"*.deb)
      dpkg-deb -x "$deb" "$dest"
      echo "$pkg $(dpkg-deb -f "$deb" Version)"
    done
    ;;
  *)
    die "unknown mode $mode (versions or extract)"
    ;;
esac
