#!/usr/bin/env bash
# A private Docker engine for `npm run cross -- --docker` on a Debian 12 machine that has none:
# Debian 12's dockerd (docker.io 20.10) on its own containerd, with its own socket, pidfiles,
# data root and configuration, so it neither uses nor disturbs a system Docker or containerd.
# No container network: --bridge=none and --iptables=false leave the machine's firewall and
# interfaces alone; builds that need the network run with `--network host`.
#
#   scripts/docker-engine.sh install        apt-get install docker.io containerd runc mmdebstrap
#                                           (Debian 12) when missing, and fetch the buildx plugin
#   scripts/docker-engine.sh start          start the engine (idempotent); prints the env lines
#   scripts/docker-engine.sh env            print the `export …` lines for the docker CLI and
#                                           scripts/cross.mjs (DOCKER_HOST, DOCKER_CONFIG,
#                                           CIC_DOCKER_BASE_IMAGE, CIC_DOCKER_NETWORK)
#   scripts/docker-engine.sh status         exit 0 when the engine answers
#   scripts/docker-engine.sh base-image     build cic-build-base:bookworm with mmdebstrap (once)
#   scripts/docker-engine.sh stop [--purge] stop the engine; --purge also deletes its data root
#
# The buildx plugin: Debian 12 has none; Debian 13's docker-buildx (0.13, needs glibc ≥ 2.34,
# Debian 12 has 2.36) is downloaded with apt-get into a private apt state (the machine's own
# apt sources, lists and package state are untouched; nothing from Debian 13 is installed on
# the system), unpacked into the cache and offered to the docker CLI through DOCKER_CONFIG's
# cli-plugins. apt verifies the .deb against the signed index. With this daemon (20.10, no
# containerd image store) buildx builds one platform per call: scripts/cross.mjs makes one
# call per target.
#
# The base image: the Dockerfile's debian:12-slim would come from a container registry. Here
# it is made from Debian packages instead: mmdebstrap --variant=minbase bookworm, from the
# Debian mirror this machine's apt configuration names, imported as cic-build-base:bookworm.
#
# Paths (override with the environment): CIC_DOCKER_DATA (default /var/lib/cic-docker) holds
# images, build cache and the daemons' logs (log/) across runs; CIC_DOCKER_RUN (default
# /run/cic-docker) the sockets, pidfiles and the CLI configuration while the engine runs; the
# plugin is cached in node_modules/.cache/cic-docker/. Nothing lives under build/: a
# `node-gyp rebuild` (npm install) deletes build/ whole, also while the engine runs.
# Needs root (dockerd, mounts).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
DATA=${CIC_DOCKER_DATA:-/var/lib/cic-docker}
RUN=${CIC_DOCKER_RUN:-/run/cic-docker}
LOGS=$DATA/log
CONFIG=$RUN/config
CACHE=${CIC_DOCKER_CACHE:-$root/node_modules/.cache/cic-docker}
SOCK=$RUN/docker.sock
CTRD_SOCK=$RUN/containerd.sock
BASE_IMAGE=${CIC_DOCKER_BASE_IMAGE:-cic-build-base:bookworm}
START_TIMEOUT_S=${CIC_DOCKER_START_TIMEOUT:-90}
STOP_TIMEOUT_S=30
APT_PACKAGES=(docker.io containerd runc mmdebstrap)

say() { echo "docker-engine: $*" >&2; }
die() { echo "docker-engine: error: $*" >&2; exit 1; }
# Mirror host names stay out of logs: apt and mmdebstrap print full URLs.
mask() { sed -E 's#(https?://)[^/[:space:]]+#\1…#g'; }

need_root() { [ "$(id -u)" = 0 ] || die "needs root (dockerd, overlay mounts)"; }

# The Debian archive and security URIs of this machine's apt configuration (one-line and deb822
# formats). Comment lines are skipped: a comment may name a snapshot URL that is no source.
debian_uri() {
  local want=$1 files=() f
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 1
  grep -hvE '^[[:space:]]*#' "${files[@]}" | grep -oE 'https?://[^ ]+' | sed -E 's#/+$##' \
    | grep -E "/$want\$" | head -n1
}

# apt-get options for a private apt state under $1 for suite $2 (architecture amd64 = this
# machine's): own source list, lists, cache and an empty dpkg status.
private_apt_opts() {
  local dir=$1 suite=$2 archive security keyring=/usr/share/keyrings/debian-archive-keyring.gpg signed=
  archive=$(debian_uri debian || true)
  security=$(debian_uri debian-security || true)
  [ -n "$archive" ] || die "no Debian archive URI in /etc/apt/sources.list{,.d}"
  [ -f "$keyring" ] && signed=" [signed-by=$keyring]"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/etc" "$dir/state"
  : >"$dir/state/status"
  {
    echo "deb$signed $archive $suite main"
    [ -z "$security" ] || echo "deb$signed $security $suite-security main"
  } >"$dir/etc/sources.list"
  APT_OPTS=(-o "Dir::Etc::SourceList=$dir/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$dir/lists" -o "Dir::State::Status=$dir/state/status" -o "Dir::Cache=$dir/cache"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o Debug::NoLocking=1 -o Acquire::Retries=3 -o APT::Sandbox::User=root)
}

buildx_plugin() { echo "$CACHE/docker-buildx/usr/libexec/docker/cli-plugins/docker-buildx"; }

fetch_buildx() {
  local plugin
  plugin=$(buildx_plugin)
  if [ ! -x "$plugin" ]; then
    say "fetching docker-buildx from Debian 13 (trixie) into ${CACHE#"$root"/} (private apt state)"
    local work=$CACHE/.fetch.$$
    rm -rf "$work"; mkdir -p "$work/get"
    private_apt_opts "$work/apt" trixie
    timeout 600 apt-get -qq "${APT_OPTS[@]}" update 2>&1 | mask >&2 || die "apt-get update (trixie, private state) failed"
    (cd "$work/get" && timeout 600 apt-get -qq "${APT_OPTS[@]}" download docker-buildx 2>&1 | mask >&2) \
      || die "apt-get download docker-buildx failed"
    local deb
    deb=$(ls "$work"/get/docker-buildx_*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download gave no docker-buildx .deb"
    rm -rf "$CACHE/docker-buildx"; mkdir -p "$CACHE/docker-buildx"
    # -x unpacks without maintainer scripts: nothing of the package runs or is registered.
    dpkg-deb -x "$deb" "$CACHE/docker-buildx"
    basename "$deb" >"$CACHE/docker-buildx/.deb"
    rm -rf "$work"
    [ -x "$plugin" ] || die "the docker-buildx package holds no $plugin"
  fi
}

link_buildx() {
  mkdir -p "$CONFIG/cli-plugins"
  ln -sfn "$(buildx_plugin)" "$CONFIG/cli-plugins/docker-buildx"
}

cmd_install() {
  need_root
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian 12)"
    # The packages' init scripts would start a system dockerd on /var/run/docker.sock where an
    # init system runs; this engine does not use it (and stops nothing it did not start).
    if ! { DEBIAN_FRONTEND=noninteractive timeout 900 apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}"; } 2>&1 \
        | mask >&2; then
      die "apt-get install ${missing[*]} failed"
    fi
  fi
  fetch_buildx
}

docker_cli() { DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$CONFIG timeout 20 docker "$@"; }

engine_answers() { [ -S "$SOCK" ] && docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# The pid in $1 if that process is alive and was started by this script (its command line
# names our run directory): a stale pidfile may name a pid the system has since reused.
our_pid() {
  local pidfile=$1 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$RUN" || return 1
  echo "$pid"
}

# With these, a plain `npm run cross -- --docker` uses this engine, the local base image and
# the host network (this engine has no bridge).
cmd_env() {
  echo "export DOCKER_HOST=unix://$SOCK"
  echo "export DOCKER_CONFIG=$CONFIG"
  echo "export CIC_DOCKER_BASE_IMAGE=$BASE_IMAGE"
  echo "export CIC_DOCKER_NETWORK=host"
}

cmd_status() {
  if engine_answers; then
    say "running: dockerd $(docker_cli version --format '{{.Server.Version}}') on $SOCK"
    return 0
  fi
  say "not running"
  return 1
}

wait_for() { # wait_for SECONDS DESCRIPTION PID COMMAND… — COMMAND succeeds, or PID dies, or time runs out
  local limit=$1 what=$2 pid=$3; shift 3
  local deadline=$((SECONDS + limit))
  while [ $SECONDS -lt $deadline ]; do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || { say "$what exited during start-up"; return 1; }
    sleep 0.5
  done
  say "$what did not come up within ${limit} s"
  return 1
}

cmd_start() {
  need_root
  for b in dockerd containerd runc docker; do
    command -v "$b" >/dev/null || die "$b is missing: run scripts/docker-engine.sh install"
  done
  [ -x "$(buildx_plugin)" ] || die "the buildx plugin is missing: run scripts/docker-engine.sh install"
  if engine_answers; then
    link_buildx
    say "already running on $SOCK"
    cmd_env
    return 0
  fi
  # Whatever a failed or killed earlier run left behind (processes, mounts) goes first.
  cmd_stop >/dev/null 2>&1 || true
  mkdir -p "$RUN" "$DATA/containerd" "$DATA/docker" "$LOGS"
  link_buildx
  cat >"$RUN/containerd.toml" <<EOF
version = 2
root = "$DATA/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD_SOCK"
[ttrpc]
  address = "$CTRD_SOCK.ttrpc"
[debug]
  address = "$RUN/containerd-debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DATA/containerd-opt"
EOF
  # A daemon.json of our own: a system /etc/docker/daemon.json must not apply, and dockerd 20.10
  # would otherwise write its identity key to /etc/docker/key.json.
  printf '{ "deprecated-key-path": "%s" }\n' "$DATA/key.json" >"$RUN/daemon.json"
  say "starting containerd ($(containerd --version | awk '{print $3}'))"
  setsid containerd --config "$RUN/containerd.toml" >"$LOGS/containerd.log" 2>&1 </dev/null &
  echo $! >"$RUN/containerd.pid"
  if ! wait_for 30 containerd "$(cat "$RUN/containerd.pid")" test -S "$CTRD_SOCK"; then
    tail -n 20 "$LOGS/containerd.log" >&2; cmd_stop >/dev/null 2>&1 || true; exit 1
  fi
  say "starting dockerd ($(dockerd --version | awk '{print $3}' | tr -d ,)), data root $DATA/docker"
  setsid dockerd --config-file "$RUN/daemon.json" --containerd "$CTRD_SOCK" \
    --data-root "$DATA/docker" --exec-root "$RUN/exec" --pidfile "$RUN/dockerd.pid" \
    -H "unix://$SOCK" --iptables=false --ip-masq=false --bridge=none --storage-driver=overlay2 \
    >"$LOGS/dockerd.log" 2>&1 </dev/null &
  local pid=$!
  if ! wait_for "$START_TIMEOUT_S" dockerd "$pid" engine_answers; then
    tail -n 30 "$LOGS/dockerd.log" >&2; cmd_stop >/dev/null 2>&1 || true; exit 1
  fi
  say "running: $(docker_cli info --format 'dockerd {{.ServerVersion}}, storage {{.Driver}}, cgroup {{.CgroupDriver}} v{{.CgroupVersion}}' 2>/dev/null)"
  cmd_env
}

stop_one() { # stop_one NAME PIDFILE
  local name=$1 pidfile=$2 pid
  pid=$(our_pid "$pidfile") || { rm -f "$pidfile"; return 0; }
  say "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT_S))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not exit within ${STOP_TIMEOUT_S} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$pidfile"
}

cmd_stop() {
  need_root
  local purge=${1:-}
  stop_one dockerd "$RUN/dockerd.pid"
  # dockerd writes its own pidfile; when start-up failed before that, find it by its socket.
  local pid
  for pid in $(pgrep -f -- "-H unix://$SOCK" 2>/dev/null || true); do
    echo "$pid" >"$RUN/dockerd.pid"; stop_one dockerd "$RUN/dockerd.pid"
  done
  stop_one containerd "$RUN/containerd.pid"
  # Container shims outlive containerd by design; ours name our socket on their command line.
  for pid in $(pgrep -f -- "$CTRD_SOCK" 2>/dev/null || true); do
    say "stopping leftover shim (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Mounts the engine left (overlay layers, shm, the private bind of its storage directory),
  # deepest first; lazily when still busy.
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
  done < <(awk -v d="$DATA" -v r="$RUN" 'index($2, d) == 1 || index($2, r) == 1 { print $2 }' /proc/mounts | sort -r)
  rm -rf "$RUN"
  # dockerd creates its plugin discovery directory at a fixed place; it is removed only when
  # empty and no system Docker runs (then it would be that one's).
  [ -e /var/run/docker.sock ] || rmdir /run/docker/plugins /run/docker 2>/dev/null || true
  if [ "$purge" = --purge ]; then
    say "deleting $DATA"
    rm -rf "$DATA"
  fi
  say "stopped"
}

cmd_base_image() {
  need_root
  engine_answers || die "the engine is not running: scripts/docker-engine.sh start"
  if docker_cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    say "$BASE_IMAGE exists ($(docker_cli image inspect -f '{{.Created}}' "$BASE_IMAGE"))"
    return 0
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap is missing: run scripts/docker-engine.sh install"
  local archive security
  archive=$(debian_uri debian || true)
  security=$(debian_uri debian-security || true)
  [ -n "$archive" ] || die "no Debian archive URI in /etc/apt/sources.list{,.d}"
  local sources=("deb $archive bookworm main" "deb $archive bookworm-updates main")
  [ -z "$security" ] || sources+=("deb $security bookworm-security main")
  say "building $BASE_IMAGE: mmdebstrap --variant=minbase bookworm from the configured Debian mirror"
  local started=$SECONDS
  # The image keeps these sources in its /etc/apt/sources.list: the Dockerfile's apt-get and
  # scripts/nghttp2.sh inside it use the same mirror as this machine.
  if ! timeout 1200 mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm - "${sources[@]}" 2> >(mask >&2) \
      | DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$CONFIG timeout 1200 docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null; then
    die "mmdebstrap | docker import failed"
  fi
  say "$BASE_IMAGE built in $((SECONDS - started)) s ($(docker_cli image inspect -f '{{.Size}}' "$BASE_IMAGE") bytes)"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  base-image) cmd_base_image ;;
  *) die "usage: $0 install|start|stop [--purge]|status|env|base-image" ;;
esac
