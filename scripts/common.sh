# Shared by test.sh, demo.sh and bench/run.sh: install the Debian packages
# the project needs (only when something is missing) and build.

TSCB_ROOT=${TSCB_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TSCB_BUILD=${TSCB_BUILD:-$TSCB_ROOT/build}

TSCB_PACKAGES=(
  g++ cmake ninja-build ccache pkg-config git python3 curl openssl clang-format
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libssl-dev
  libpqxx-dev libyaml-cpp-dev libspdlog-dev libsystemd-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev postgresql-15 postgresql-client-15
)

log() { printf '\n== %s\n' "$*"; }

install_deps() {
  local missing=() p
  for p in "${TSCB_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages: all present"
    return 0
  fi
  log "Installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "need root to install packages (or install them yourself): ${missing[*]}" >&2
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's postgresql package tries to start a system cluster; we use our own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
  local type=${1:-RelWithDebInfo}
  shift || true
  log "Building ($type) in $TSCB_BUILD"
  export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
  # Paths below the checkout are hashed relative to it, so that a fresh
  # clone elsewhere (CI) finds what an earlier build compiled.
  export CCACHE_BASEDIR=$TSCB_ROOT CCACHE_NOHASHDIR=1
  cmake -S "$TSCB_ROOT" -B "$TSCB_BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
  cmake --build "$TSCB_BUILD" -j2
}

# Fails, listing the files, when a C++ file differs from .clang-format.
check_format() {
  log "clang-format check"
  local bad
  bad=$(cd "$TSCB_ROOT" && git ls-files '*.cpp' '*.hpp' | while read -r f; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "  $f"; done)
  if [ -n "$bad" ]; then
    printf 'not formatted per .clang-format (run clang-format -i on them):\n%s\n' "$bad" >&2
    return 1
  fi
  echo "all C++ files formatted"
}

# The systemd unit: `systemd-analyze verify` accepts it (ExecStart pointed
# at the built binary, which verify requires to exist) and its exposure
# score from `systemd-analyze security --offline` is 2.0 or lower.
check_unit() {
  log "systemd unit check"
  if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze not installed: unit not checked"
    return 0
  fi
  local dir score
  dir=$(mktemp -d /tmp/tscb-unit.XXXXXX)
  sed "s|/usr/bin/ts-callbackd|$TSCB_BUILD/daemon/ts-callbackd|g" \
    "$TSCB_ROOT/systemd/ts-callbackd.service" >"$dir/ts-callbackd.service"
  if ! systemd-analyze verify "$dir/ts-callbackd.service"; then
    rm -rf "$dir"
    echo "systemd-analyze verify rejected systemd/ts-callbackd.service" >&2
    return 1
  fi
  score=$(systemd-analyze security --offline=true "$dir/ts-callbackd.service" 2>/dev/null |
    sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p')
  rm -rf "$dir"
  echo "systemd-analyze verify: OK; exposure score ${score:-?}"
  if [ -z "$score" ] || ! awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }'; then
    echo "exposure score ${score:-unknown} is above 2.0" >&2
    return 1
  fi
}

# `cmake --install` into a scratch DESTDIR puts every file in its standard
# place, and `cpack` builds a .deb holding them with its maintainer scripts.
check_package() {
  log "install and .deb check"
  local dir missing=0 f
  dir=$(mktemp -d /tmp/tscb-install.XXXXXX)
  DESTDIR="$dir/root" cmake --install "$TSCB_BUILD" --prefix /usr >/dev/null
  for f in usr/bin/ts-callbackd usr/lib/systemd/system/ts-callbackd.service \
    usr/lib/sysusers.d/ts-callbackd.conf usr/lib/tmpfiles.d/ts-callbackd.conf \
    usr/share/ts-callbackd/config.example.yaml usr/share/ts-callbackd/grafana/ts-callbackd.json; do
    [ -f "$dir/root/$f" ] || { echo "cmake --install did not install /$f" >&2; missing=1; }
  done
  (cd "$dir" && cpack -G DEB -B "$dir/deb" --config "$TSCB_BUILD/CPackConfig.cmake" >"$dir/cpack.log" 2>&1) ||
    { cat "$dir/cpack.log" >&2; missing=1; }
  local deb
  deb=$(ls "$dir"/deb/*.deb 2>/dev/null | head -n 1)
  if [ -z "$deb" ]; then
    echo "cpack built no .deb" >&2
    missing=1
  else
    local contents
    contents=$(dpkg-deb --contents "$deb")
    grep -q './usr/bin/ts-callbackd$' <<<"$contents" || { echo ".deb lacks the binary" >&2; missing=1; }
    dpkg-deb --info "$deb" postinst >/dev/null || { echo ".deb lacks its postinst" >&2; missing=1; }
    echo "$(basename "$deb"): $(du -h "$deb" | cut -f1), $(grep -c '^-' <<<"$contents") files"
  fi
  rm -rf "$dir"
  return $missing
}

# A free port in 28200-28220: ThingSpace calls only ports of its list
# (spec 3.5), and the daemon checks its public URL against it.
# Any free loopback port (the kernel's choice).
free_port() {
  python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

thingspace_port() {
  local p
  for p in $(seq 28200 28220); do
    # Skip ports an e2e test holds (tests/e2e/sim_fixture.hpp: a lock per port).
    flock -n "/tmp/tscb-thingspace-port-$p.lock" true 2>/dev/null || continue
    if python3 -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$p" 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port in 28200-28220" >&2
  return 1
}

# Like thingspace_port, but claims the port for this shell and its children
# (fd 9 holds the port's lock), so that a test running alongside does not
# take it; sets TSCB_TS_PORT. Call it directly, not in $(...).
claim_thingspace_port() {
  local tries
  for tries in 1 2 3 4 5; do
    TSCB_TS_PORT=$(thingspace_port) || return 1
    exec 9>"/tmp/tscb-thingspace-port-$TSCB_TS_PORT.lock"
    flock -n 9 && return 0
    exec 9>&-
  done
  echo "could not claim a port in 28200-28220" >&2
  return 1
}

# A bench script's throwaway folder: sets `work` (a new folder under /tmp
# named after $1) and `pids` (empty), and on exit stops those PIDs and the
# script's PostgreSQL (scripts/pg.sh) and removes the folder.
bench_workdir() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap 'stop_pids; pg_stop; rm -rf "$work"' EXIT
}

# Prints the head of a bench daemon's config: log level $2, the database
# `tscb` of scripts/pg.sh, and a TLS listener on 127.0.0.1:$1 with the
# certificates of make_certs in tls/ (the config's folder). More listener
# keys may follow, indented by two spaces.
bench_config_head() {
  cat <<CONF
account: "0000123456-00001"
log: { level: $2 }
database: { host: 127.0.0.1, port: $TSCB_PG_PORT, name: tscb, user: postgres }
listener:
  address: 127.0.0.1
  port: $1
  tls: { certificate: tls/cert.pem, private_key: tls/key.pem }
  allow_from: [127.0.0.1/32]
CONF
}

# Stops the processes whose PIDs are in the array `pids` (SIGTERM, then
# waits for each).
stop_pids() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
