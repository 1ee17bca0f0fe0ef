#!/usr/bin/env bash
# Provides the reference Wyoming client library (Debian 13's python3-wyoming, pure Python) for
# the test that drives the device socket with a client this repository did not write.
#
#   scripts/wyoming-client.sh          prepare if needed, print the directory for PYTHONPATH
#
# The .deb comes from the Debian mirror this machine already has configured, through a private
# trixie binary list and private apt state directories (the machine's own apt setup is
# untouched); apt verifies it against the signed Release/Packages index. It is unpacked with
# dpkg-deb into build/ and cached there: a second run prints the path without touching the
# network. Overrides:
#   CIC_WYOMING_DEB=FILE     a python3-wyoming .deb already at hand (checked to be 1.6.x)
#   CIC_WYOMING_MIRROR=URL   Debian mirror base (…/debian) instead of the configured one
set -euo pipefail

SUITE=trixie
PACKAGE=python3-wyoming
WANT_VERSION_PREFIX=1.6.

root=$(cd "$(dirname "$0")/.." && pwd)
cache=$root/build/wyoming
tree=$cache/root
pythonpath=$tree/usr/lib/python3/dist-packages

say() { echo "wyoming: $*" >&2; }
die() { echo "wyoming: error: $*" >&2; exit 1; }

. "$root/scripts/debian-mirror.sh"

unpack() {
  local deb=$1 version
  command -v dpkg-deb >/dev/null || die "dpkg-deb is not available"
  version=$(dpkg-deb -f "$deb" Version)
  [ "$(dpkg-deb -f "$deb" Package)" = "$PACKAGE" ] || die "$deb is not a $PACKAGE package"
  case "$version" in $WANT_VERSION_PREFIX*) ;; *) die "$deb is $PACKAGE $version, not ${WANT_VERSION_PREFIX}x" ;; esac
  local work=$cache/unpack.$$
  rm -rf "$work"; mkdir -p "$work"
  dpkg-deb -x "$deb" "$work"
  [ -f "$work/usr/lib/python3/dist-packages/wyoming/event.py" ] || die "$deb holds no wyoming/event.py"
  echo "$version" >"$work/.version"
  rm -rf "$tree"; mv "$work" "$tree"
  say "$PACKAGE $version unpacked into $tree"
}

fetch_with_apt() {
  command -v apt-get >/dev/null || die "apt-get is not available; set CIC_WYOMING_DEB"
  local mirror=${CIC_WYOMING_MIRROR:-$(configured_mirror || true)}
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt; set CIC_WYOMING_MIRROR"
  local apt=$cache/apt
  rm -rf "$apt"; mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc" "$apt/get"
  echo "deb $mirror $SUITE main" >"$apt/etc/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::Status=/dev/null"
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o Acquire::Retries=3
    -o "APT::Architectures::=$(dpkg --print-architecture)" -o Acquire::Languages=none)
  [ "$(id -u)" = 0 ] || opts=("${opts[@]/APT::Sandbox::User=root/APT::Sandbox::User=$(id -un)}")
  say "fetching the $SUITE package index from the configured Debian mirror"
  apt-get -qq "${opts[@]}" update >&2 || die "apt-get update for the $SUITE list failed"
  (cd "$apt/get" && apt-get -qq "${opts[@]}" download "$PACKAGE" >&2) || die "apt-get download $PACKAGE failed"
  local deb
  deb=$(ls "$apt"/get/"$PACKAGE"_*.deb 2>/dev/null | head -n1)
  [ -n "$deb" ] || die "apt-get download left no .deb"
  unpack "$deb"
  rm -rf "$apt"
}

if [ ! -f "$tree/.version" ]; then
  mkdir -p "$cache"
  if [ -n "${CIC_WYOMING_DEB:-}" ]; then unpack "$CIC_WYOMING_DEB"; else fetch_with_apt; fi
fi
echo "$pythonpath"
