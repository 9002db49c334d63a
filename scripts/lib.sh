# Shared by the scripts in this folder. Source it; do not run it.
# Settings (environment):
#   FSCONF_PG_DIR   where the throwaway cluster lives (default: .pg in the repo, or
#                   /tmp/fsconf-pg-<hash> when the postgres user cannot reach the repo)
#   FSCONF_PG_PORT  its port (default 54329); it listens on 127.0.0.1 and a unix socket
#   FSCONF_SHARED   the shared folder with fixtures (default: ../shared next to the repo)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FSCONF_SHARED=${FSCONF_SHARED:-$(cd "$REPO/.." && pwd)/shared}
FSCONF_PG_PORT=${FSCONF_PG_PORT:-54329}

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the project needs (and any given as arguments); installs whatever is missing.
ensure_packages() {
    local want=(postgresql libpq-dev libpcre2-dev liblz4-dev pkg-config lua5.3 liblua5.3-dev gcc make "$@")
    local missing=()
    for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        [ -x /opt/swift/usr/bin/swift ] && export PATH=/opt/swift/usr/bin:$PATH
    fi
    command -v swift >/dev/null 2>&1 || die "swift not found (expected on PATH or in /opt/swift/usr/bin)"
}

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] || die "PostgreSQL server binaries not found under /usr/lib/postgresql"
    echo "$d"
}

# Runs a command as the cluster's owner: postgres when we are root.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_dir() {
    if [ -n "${FSCONF_PG_DIR:-}" ]; then echo "$FSCONF_PG_DIR"; return; fi
    if [ "$(id -u)" -ne 0 ] || runuser -u postgres -- test -x "$REPO" 2>/dev/null; then
        echo "$REPO/.pg"
    else
        echo "/tmp/fsconf-pg-$(printf '%s' "$REPO" | cksum | cut -d' ' -f1)"
    fi
}

# Environment that points libpq (psql, fsconf, tests) at the local cluster.
pg_env() {
    local dir; dir=$(pg_dir)
    export PGHOST="$dir/socket" PGPORT="$FSCONF_PG_PORT" PGDATABASE=fsconf
    if [ "$(id -u)" -eq 0 ]; then export PGUSER=postgres; else export PGUSER=$(id -un); fi
}

pg_start() {
    local dir bin; dir=$(pg_dir); bin=$(pg_bindir)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        log "initdb $dir/data"
        as_owner mkdir -p "$dir/data" "$dir/socket"
        as_owner "$bin/initdb" -D "$dir/data" -U "$( [ "$(id -u)" -eq 0 ] && echo postgres || id -un )" \
            --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    as_owner mkdir -p "$dir/socket"
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        log "PostgreSQL already running ($dir, port $FSCONF_PG_PORT)"
    else
        log "starting PostgreSQL ($dir, port $FSCONF_PG_PORT)"
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $FSCONF_PG_PORT -k $dir/socket -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" \
            start >/dev/null || { tail -n 20 "$dir/server.log" >&2; die "PostgreSQL did not start"; }
    fi
    pg_env
    psql -qAtc "SELECT 1 FROM pg_database WHERE datname = 'fsconf'" postgres | grep -q 1 \
        || psql -qc "CREATE DATABASE fsconf" postgres
}

pg_stop() {
    local dir bin; dir=$(pg_dir); bin=$(pg_bindir)
    [ -f "$dir/data/PG_VERSION" ] || return 0
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
}

build_all() {   # [swift build arguments]: progress lines left out, a failure is fatal
    ensure_swift
    log "swift build${*:+ $*}"
    (cd "$REPO" && swift build "$@" 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' >&2) || die "swift build${*:+ $*} failed"
}

# The release build every artefact comes from: the CLI and the node library with
# the Swift runtime linked in, so that a node needs no Swift toolchain.
build_release() {
    build_all -c release --static-swift-stdlib
}

# The checks FreeSWITCH depends on (../shared/docs/freeswitch-contract.md).
# Outputs are read whole first: `tool | grep -q` under pipefail fails when grep quits
# before the tool has written everything (the tool gets SIGPIPE).
check_node_library() {   # FILE
    local dynamic symbols sym
    dynamic=$(readelf -d "$1") symbols=$(nm -D --defined-only "$1")
    grep -q NODELETE <<< "$dynamic" || die "$1 lacks -z nodelete"
    grep -Eq 'NEEDED.*(liblua|libswift|libFoundation|libdispatch)' <<< "$dynamic" \
        && die "$1 links liblua or the dynamic Swift runtime"
    for sym in luaopen_fsconf fsconf_xml_handler; do
        grep -q " $sym$" <<< "$symbols" || die "$1 exports no $sym"
    done
}

check_cli() {   # FILE
    local dynamic
    dynamic=$(readelf -d "$1")
    grep -Eq 'NEEDED.*(libswift|libFoundation|libdispatch|libBlocksRuntime)' <<< "$dynamic" \
        && die "$1 links the Swift runtime dynamically (build it with --static-swift-stdlib)"
    return 0
}
