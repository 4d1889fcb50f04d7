#!/usr/bin/env bash
# Installs the database servers privfence's sandbox runs (see src/sandbox/).
# Idempotent: installs only what is missing.
#
#   scripts/install-servers.sh [mariadb|mysql|all|percona] ...   (default: all)
#
#   mariadb  MariaDB 10.11 server and client from the machine's own Debian archive (apt).
#            The system service is never used (policy-rc.d may forbid starting it; fine).
#   mysql    MySQL 9.x from Debian unstable, unpacked (not installed) into a private ROOT:
#            ${PRIVFENCE_CACHE:-$HOME/.cache/privfence}/mysql/root. Run it through ROOT's own
#            dynamic loader (ROOT/usr/lib/<triplet>/ld-linux-*.so.*).
#   all      mariadb and mysql.
#   percona  percona-toolkit (apt), used by the benchmarks only.
#
# Environment: PRIVFENCE_CACHE (default ~/.cache/privfence); PRIVFENCE_DEBIAN_MIRROR, the archive
# MySQL's packages come from (default: the machine's own Debian archive, the first `URIs:` of
# /etc/apt/sources.list.d/debian.sources or the first `deb` line of /etc/apt/sources.list that
# is not a security archive).
#
# Progress goes to stderr. On success stdout gets one line per requested server:
#   mariadb_bin=DIR     (the folder holding mariadbd)
#   mysql_root=ROOT     (the private MySQL root)
#   percona_bin=DIR     (the folder holding pt-show-grants)
set -euo pipefail

log() { printf 'install-servers: %s\n' "$*" >&2; }
die() { printf 'install-servers: %s\n' "$*" >&2; exit 1; }

CACHE="${PRIVFENCE_CACHE:-$HOME/.cache/privfence}"
# The machine's own Debian archive: never a host name written here.
own_archive() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")"
        [ -n "$uri" ] && break
    done
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /:\/\// && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)"
    fi
    printf '%s' "$uri"
}
MIRROR="${PRIVFENCE_DEBIAN_MIRROR:-$(own_archive)}"
APT_UPDATED=0

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Runs `apt-get update` on the system lists at most once per invocation.
apt_update_once() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        as_root apt-get update >&2 || die "apt-get update failed; check the machine's apt sources and network"
        APT_UPDATED=1
    fi
}

apt_install() {
    apt_update_once
    log "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 \
        || die "apt-get install $* failed"
}

find_mariadbd() {
    local p
    p="$(command -v mariadbd 2>/dev/null || true)"
    if [ -z "$p" ] && [ -x /usr/sbin/mariadbd ]; then p=/usr/sbin/mariadbd; fi
    printf '%s' "$p"
}

install_mariadb() {
    local bin
    bin="$(find_mariadbd)"
    if [ -z "$bin" ] || ! command -v mariadb >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; then
        log "MariaDB not found; installing it from the Debian archive"
        apt_install mariadb-server mariadb-client
        bin="$(find_mariadbd)"
        [ -n "$bin" ] || die "mariadb-server was installed but mariadbd is still missing"
    else
        log "MariaDB already installed: $bin"
    fi
    echo "mariadb_bin=$(dirname "$bin")"
}

# Prints `mysqld --version` of an unpacked ROOT, run through ROOT's own loader.
mysql_version() {
    local root="$1" libdir ld
    libdir="$(echo "$root"/usr/lib/*-linux-gnu)"
    ld="$(echo "$libdir"/ld-linux*.so.*)"
    "$ld" --library-path "$libdir" "$root/usr/sbin/mysqld" --version 2>/dev/null || echo 'version unknown'
}

# Unpacks mysql-server-core and mysql-client-core from Debian sid, with their whole dependency
# closure, into $CACHE/mysql/root. Builds in a temporary folder next to it and renames it into
# place, so an interrupted run never leaves a ROOT that looks complete.
install_mysql() {
    local base="$CACHE/mysql" root="$CACHE/mysql/root"
    if [ -x "$root/usr/sbin/mysqld" ]; then
        log "MySQL already unpacked: $root"
        echo "mysql_root=$root"
        return
    fi
    command -v dpkg >/dev/null || die "could not install MySQL: dpkg is missing; needs a Debian machine"
    local work
    mkdir -p "$base" && work="$(mktemp -d "$base/.build.XXXXXX")" \
        || die "could not install MySQL: cannot create a folder in $base; set PRIVFENCE_CACHE to a writable folder"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/debs" "$work/root"
    [ -n "$MIRROR" ] || die "could not install MySQL: no Debian archive in this machine's apt sources (set PRIVFENCE_DEBIAN_MIRROR)"
    echo "deb $MIRROR sid main" >"$work/apt/sources.list"
    : >"$work/apt/status"
    # A private apt: its own sources, lists, cache and an empty dpkg status, so the system's
    # apt state is neither read nor changed.
    local o=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
        -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache"
        -o "Dir::State::status=$work/apt/status" -o "Acquire::Languages=none"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "APT::Sandbox::User=root")
    log "reading Debian unstable's package lists (private apt state in $work/apt)"
    apt-get "${o[@]}" --error-on=any update >&2 \
        || die "could not install MySQL: apt-get update for Debian sid failed; needs access to Debian's package archive ($MIRROR)"
    local pkgs
    pkgs="$(apt-cache "${o[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
        --no-breaks --no-replaces --no-enhances --no-pre-depends mysql-server-core mysql-client-core \
        | grep -v '^[ <]' | grep -v '^perl' | sort -u)" \
        || die "could not install MySQL: resolving the dependencies of mysql-server-core failed; needs access to Debian's package archive ($MIRROR)"
    [ -n "$pkgs" ] || die "could not install MySQL: Debian sid lists no mysql-server-core"
    log "downloading $(echo "$pkgs" | wc -l) packages: $(echo "$pkgs" | tr '\n' ' ')"
    # shellcheck disable=SC2086
    (cd "$work/debs" && apt-get "${o[@]}" download $pkgs >&2) \
        || die "could not install MySQL: downloading packages from Debian sid failed; needs access to Debian's package archive ($MIRROR)"
    local deb
    for deb in "$work"/debs/*.deb; do
        dpkg -x "$deb" "$work/root" || die "could not install MySQL: dpkg -x $deb failed"
    done
    rm -rf "$work/root/usr/share/doc" "$work/root/usr/share/man"   # 20 MB nobody reads here
    [ -x "$work/root/usr/sbin/mysqld" ] || die "could not install MySQL: the unpacked packages hold no usr/sbin/mysqld"
    # If another run finished first, keep its ROOT and drop ours.
    if mv -T "$work/root" "$root" 2>/dev/null; then
        log "MySQL unpacked into $root: $(mysql_version "$root")"
    else
        [ -x "$root/usr/sbin/mysqld" ] \
            || die "could not install MySQL: $root exists but holds no usr/sbin/mysqld; remove it and retry"
        log "another install finished first; using $root"
    fi
    rm -rf "$work"
    trap - EXIT
    echo "mysql_root=$root"
}

install_percona() {
    if ! command -v pt-show-grants >/dev/null 2>&1; then
        log "percona-toolkit not found; installing it"
        apt_install percona-toolkit
    else
        log "percona-toolkit already installed"
    fi
    echo "percona_bin=$(dirname "$(command -v pt-show-grants)")"
}

[ "$#" -gt 0 ] || set -- all
for what in "$@"; do
    case "$what" in
        mariadb) install_mariadb ;;
        mysql) install_mysql ;;
        all) install_mariadb; install_mysql ;;
        percona) install_percona ;;
        -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown target '$what' (expected mariadb, mysql, all or percona)" ;;
    esac
done
