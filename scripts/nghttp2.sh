#!/usr/bin/env bash
# Provides the private nghttp2 source tree that is compiled into the addon.
#
#   scripts/nghttp2.sh dir       prepare if needed, print the source directory
#   scripts/nghttp2.sh sources   prepare if needed, print lib/*.c (for binding.gyp)
#   scripts/nghttp2.sh version   print the nghttp2 version that is built in
#
# Source: Debian 13 (trixie) source package, fetched with apt-get from the Debian mirror this
# machine already has configured, with private state directories so the machine's own apt
# setup is untouched. The upstream tarball is pinned by SHA-256; the Debian tarball is checked
# against the checksums of the .dsc that apt verified through the signed Sources index.
# Overrides for machines without apt:
#   CIC_NGHTTP2_SRC=DIR          an already unpacked (and patched) nghttp2-1.64.0 tree
#   CIC_NGHTTP2_TARBALL=FILE     nghttp2-1.64.0 upstream tarball (checked against the pin);
#                                CIC_NGHTTP2_DEBIAN_TARBALL=FILE adds Debian's patches
#   CIC_NGHTTP2_MIRROR=URL       Debian mirror base (…/debian) instead of the configured one
#   CIC_NGHTTP2_CACHE=DIR        where the prepared tree is kept (default node_modules/.cache)
set -euo pipefail

NGHTTP2_VERSION=1.64.0
NGHTTP2_VERSION_NUM=0x014000
ORIG_SHA256=b452dc69a1fcbc9375389b8b154175d8b7b125cdd713fc426774c2b79a1ebd77
SUITE=trixie
# Fallback when the mirror's index names a revision whose files it does not (yet) serve: the
# trixie revision below, fetched straight from the pool and pinned by SHA-256.
FALLBACK_DEBIAN=1.64.0-1.1+deb13u1
FALLBACK_DEBIAN_SHA256=e16478701c5c007aa8761dc30c01090b2217199558bd1017b1d237db463d758c

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${CIC_NGHTTP2_CACHE:-$root/node_modules/.cache/cic-nghttp2}
tree=$cache/nghttp2-$NGHTTP2_VERSION

say() { echo "nghttp2: $*" >&2; }
die() { echo "nghttp2: error: $*" >&2; exit 1; }

. "$root/scripts/debian-mirror.sh"

generate_version_header() {
  local t=$1
  sed -e "s/@PACKAGE_VERSION@/$NGHTTP2_VERSION/" -e "s/@PACKAGE_VERSION_NUM@/$NGHTTP2_VERSION_NUM/" \
    "$t/lib/includes/nghttp2/nghttp2ver.h.in" >"$t/lib/includes/nghttp2/nghttp2ver.h"
}

check_tree() {
  local t=$1
  [ -f "$t/lib/nghttp2_session.c" ] || die "$t does not look like an nghttp2 source tree"
  grep -q 'nghttp2_session_mem_recv2' "$t/lib/includes/nghttp2/nghttp2.h" \
    || die "$t is older than nghttp2 1.59 (no nghttp2_session_mem_recv2)"
}

unpack_and_patch() {
  local orig=$1 debian=${2:-}
  local got
  got=$(sha256sum "$orig" | cut -d' ' -f1)
  [ "$got" = "$ORIG_SHA256" ] || die "checksum mismatch for $orig: $got (want $ORIG_SHA256)"
  local work=$cache/unpack.$$
  rm -rf "$work"; mkdir -p "$work"
  tar -xzf "$orig" -C "$work"
  local t=$work/nghttp2-$NGHTTP2_VERSION
  if [ -n "$debian" ]; then
    tar -xJf "$debian" -C "$t"
    if [ -f "$t/debian/patches/series" ]; then
      local p n=0
      while read -r p; do
        case "$p" in ''|'#'*) continue ;; esac
        patch -s -p1 -d "$t" <"$t/debian/patches/$p" || die "Debian patch $p does not apply"
        n=$((n + 1))
      done <"$t/debian/patches/series"
      say "applied $n Debian patches"
    fi
  fi
  check_tree "$t"
  generate_version_header "$t"
  rm -rf "$tree"; mv "$t" "$tree"; rm -rf "$work"
}

fetch_with_apt() {
  command -v apt-get >/dev/null || die "apt-get is not available; set CIC_NGHTTP2_SRC or CIC_NGHTTP2_TARBALL"
  local mirror=${CIC_NGHTTP2_MIRROR:-$(configured_mirror || true)}
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt; set CIC_NGHTTP2_MIRROR"
  local apt=$cache/apt
  rm -rf "$apt"; mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc" "$apt/get"
  echo "deb-src $mirror $SUITE main" >"$apt/etc/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1
    -o APT::Sandbox::User=root -o Acquire::Retries=3)
  [ "$(id -u)" = 0 ] || opts=("${opts[@]/APT::Sandbox::User=root/APT::Sandbox::User=$(id -un)}")
  say "fetching the $SUITE source index from the configured Debian mirror"
  apt-get -qq "${opts[@]}" update >&2 || die "apt-get update for the $SUITE sources failed"
  if ! (cd "$apt/get" && apt-get -qq "${opts[@]}" source --download-only nghttp2 >&2); then
    say "apt-get source failed; falling back to the pinned $FALLBACK_DEBIAN files from the pool"
    fetch_pinned "$mirror" "$apt/pinned"; rm -rf "$apt"
    return
  fi
  local dsc
  dsc=$(ls "$apt"/get/nghttp2_"$NGHTTP2_VERSION"-*.dsc 2>/dev/null | head -n1)
  [ -n "$dsc" ] || die "the $SUITE source package is not nghttp2 $NGHTTP2_VERSION: $(ls "$apt/get")"
  # Every file the .dsc lists must match its SHA-256 (apt checked the .dsc via Sources/InRelease).
  local line sum size name
  while read -r sum size name; do
    [ -f "$apt/get/$name" ] || die "missing $name"
    [ "$(sha256sum "$apt/get/$name" | cut -d' ' -f1)" = "$sum" ] || die "checksum mismatch for $name"
  done < <(awk '/^Checksums-Sha256:/{f=1;next} /^[^ ]/{f=0} f&&NF==3{print}' "$dsc")
  say "verified $(basename "$dsc")"
  unpack_and_patch "$apt/get/nghttp2_$NGHTTP2_VERSION.orig.tar.gz" \
    "$(ls "$apt"/get/nghttp2_"$NGHTTP2_VERSION"-*.debian.tar.xz | head -n1)"
  basename "$dsc" .dsc | sed 's/^nghttp2_//' >"$tree/.debian-version"
  rm -rf "$apt"
}

# Downloads URL to FILE with whichever client the machine has (Node.js is always there).
download() {
  local url=$1 out=$2
  if command -v curl >/dev/null; then curl -fsS --retry 3 -o "$out" "$url"
  elif command -v wget >/dev/null; then wget -q -O "$out" "$url"
  else node -e 'fetch(process.argv[1]).then(async (r) => { if (!r.ok) throw new Error(`HTTP ${r.status}`);
      require("fs").writeFileSync(process.argv[2], Buffer.from(await r.arrayBuffer())); })
      .catch((e) => { console.error(e.message); process.exit(1); })' "$url" "$out"
  fi
}

fetch_pinned() {
  local mirror=$1 dir=$2 pool=$1/pool/main/n/nghttp2
  mkdir -p "$dir"
  download "$pool/nghttp2_$NGHTTP2_VERSION.orig.tar.gz" "$dir/orig.tar.gz" || die "cannot download the upstream tarball"
  download "$pool/nghttp2_$FALLBACK_DEBIAN.debian.tar.xz" "$dir/debian.tar.xz" || die "cannot download the Debian tarball"
  [ "$(sha256sum "$dir/debian.tar.xz" | cut -d' ' -f1)" = "$FALLBACK_DEBIAN_SHA256" ] \
    || die "checksum mismatch for nghttp2_$FALLBACK_DEBIAN.debian.tar.xz"
  unpack_and_patch "$dir/orig.tar.gz" "$dir/debian.tar.xz"
  echo "$FALLBACK_DEBIAN" >"$tree/.debian-version"
  rm -rf "$dir"
}

prepare() {
  if [ -n "${CIC_NGHTTP2_SRC:-}" ]; then
    check_tree "$CIC_NGHTTP2_SRC"
    [ -f "$CIC_NGHTTP2_SRC/lib/includes/nghttp2/nghttp2ver.h" ] || generate_version_header "$CIC_NGHTTP2_SRC"
    tree=$(cd "$CIC_NGHTTP2_SRC" && pwd)
    return
  fi
  [ -f "$tree/.prepared" ] && return
  mkdir -p "$cache"
  if [ -n "${CIC_NGHTTP2_TARBALL:-}" ]; then
    unpack_and_patch "$CIC_NGHTTP2_TARBALL" "${CIC_NGHTTP2_DEBIAN_TARBALL:-}"
  else
    fetch_with_apt
  fi
  touch "$tree/.prepared"
  say "source ready in $tree"
}

# gyp's make generator mangles absolute source paths: print paths relative to the project.
relative() { realpath -m --relative-to="$root" "$1"; }

case "${1:-dir}" in
  dir) prepare; relative "$tree" ;;
  abs-dir) prepare; echo "$tree" ;;
  sources) prepare; for f in "$tree"/lib/*.c; do relative "$f"; done ;;
  version) echo "$NGHTTP2_VERSION" ;;
  *) die "usage: $0 dir|abs-dir|sources|version" ;;
esac
