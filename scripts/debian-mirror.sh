# Sourced by the scripts that fetch Debian packages or sources (nghttp2.sh, wyoming-client.sh).
# The first configured Debian archive URI (not the security one), from either apt format: the
# machine's own mirror, so no host name is written into the project.
configured_mirror() {
  local files=() f
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 1
  grep -hoE '(https?://[^ ]+/debian)/?( |$)' "${files[@]}" 2>/dev/null \
    | sed -E 's#/?[[:space:]]*$##' | grep -v -- '-security' | head -n1
}
