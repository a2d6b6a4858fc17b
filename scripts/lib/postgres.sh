# shellcheck shell=bash
# Makes sure a PostgreSQL server is available to scripts/run and scripts/test. Source this file,
# then call:
#
#   pg_ensure           DATABASE_URL set: use it, nothing else. Else (unless MASH_PG_THROWAWAY=1,
#                       which goes straight to the throwaway cluster) a Postgres answering on
#                       127.0.0.1:${MASH_PG_PROBE_PORT:-5432}: use it as user postgres (trust auth),
#                       creating database mash if missing. Else start a throwaway cluster (installing
#                       Debian's postgresql with apt-get when no server binaries are found) on
#                       127.0.0.1:${MASH_PG_PORT:-25432}, or reuse the one an earlier run left running.
#                       Exports DATABASE_URL, PG_DATA_DIR (throwaway data directory, else empty) and
#                       PG_BIN; sets (not exported) PG_STARTED_BY_US=1 only if this shell started
#                       the server (0 when it reuses one an earlier run left).
#   pg_stop_if_started  Stops the throwaway cluster if this shell started it; quiet, never fails.
#   pg_where            One line on stderr: where the cluster lives, how to stop it, DATABASE_URL.
#
# PG_BIN is the bin directory of the highest installed PostgreSQL (/usr/lib/postgresql/N/bin on
# Debian: initdb, pg_ctl, pgbench, pg_test_fsync live there, not on PATH). It is exported whenever
# a local installation exists, even when DATABASE_URL points elsewhere.
#
# Knobs: MASH_PG_PORT (25432), MASH_PG_PROBE_PORT (5432), MASH_PG_THROWAWAY, MASH_PG_DB (mash),
# MASH_ROOT (repository root; default: two levels above this file).
#
# Where the throwaway cluster lives. PostgreSQL refuses to run as root, so when the scripts run as
# root the cluster belongs to the unprivileged system user postgres (created if missing), and that
# user must be able to traverse every parent of the data directory.
#   - If postgres can reach the repository (e.g. /work/x, /home/me/x with the usual 755 modes), the
#     cluster lives in <repo>/.local/postgres (mode 700, owned by postgres): data/ is the data
#     directory (with the unix socket), postgres.log the server log. .local gets o+x if needed; that
#     folder is ours, inside the repository.
#   - If it cannot (repository under /root, or any 700 parent), we do not loosen permissions of
#     directories outside the repository. The cluster then lives in
#     /var/tmp/mash-postgres-<first 12 hex of sha256(repo path)> (700, owned by postgres) and
#     <repo>/.local/postgres is a symlink to it, so the project-local path still leads there and
#     pg_where prints the real place. /var/tmp rather than /tmp: it is disk-backed (fsync means
#     something; /tmp is often tmpfs), survives reboots and Debian does not age it.
#   The choice is made once per checkout: an existing directory or symlink is kept.
# Running as a normal user, the cluster is that user's and always lives in <repo>/.local/postgres.
# Delete it with: pg_ctl stop (see pg_where), then rm -rf <repo>/.local/postgres (and the /var/tmp
# folder it points to, if it is a symlink).

_PG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)

# PG_STARTED_BY_US belongs to the shell that sourced this file and is never exported: a script run
# from a script that started the cluster must not stop it from under its parent.
export -n PG_STARTED_BY_US 2>/dev/null || true
PG_STARTED_BY_US=0

_pg_log() { printf 'postgres: %s\n' "$*" >&2; }

# Prints the repository root (physical path).
_pg_repo_root() {
  (cd "${MASH_ROOT:-$_PG_LIB_DIR/../..}" && pwd -P)
}

# Sets and exports PG_BIN to the bin directory of the highest installed PostgreSQL; 1 if none.
_pg_find_bin() {
  local best="" cfg
  if [[ -n ${PG_BIN:-} && -x ${PG_BIN}/pg_ctl && -x ${PG_BIN}/initdb ]]; then
    export PG_BIN
    return 0
  fi
  best=$(for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/pg_ctl && -x $d/initdb ]] && printf '%s\n' "$d"
  done | sort -V | tail -n 1)
  if [[ -z $best ]] && command -v pg_config >/dev/null 2>&1; then
    cfg=$(pg_config --bindir 2>/dev/null || true)
    [[ -n $cfg && -x $cfg/pg_ctl && -x $cfg/initdb ]] && best=$cfg
  fi
  if [[ -z $best ]] && command -v pg_ctl >/dev/null 2>&1; then
    cfg=$(dirname "$(command -v pg_ctl)")
    [[ -x $cfg/initdb ]] && best=$cfg
  fi
  [[ -n $best ]] || return 1
  PG_BIN=$best
  export PG_BIN
}

# Prints the path of a client tool (psql, pg_isready): PG_BIN first, then PATH.
_pg_tool() {
  if [[ -n ${PG_BIN:-} && -x ${PG_BIN}/$1 ]]; then
    printf '%s\n' "$PG_BIN/$1"
  else
    command -v "$1" 2>/dev/null
  fi
}

# 0 if a PostgreSQL server accepts connections on 127.0.0.1:$1.
_pg_answers() {
  local isready
  if isready=$(_pg_tool pg_isready); then
    "$isready" -q -h 127.0.0.1 -p "$1" -t 3 >/dev/null 2>&1
  else
    _pg_accepts "$1"
  fi
}

# Succeeds when something accepts TCP connections on 127.0.0.1:$1.
_pg_accepts() { timeout 3 bash -c ': >"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1; }

# Succeeds when no TCP socket on this machine uses local port $1: not a server, and not the
# local end of a connection either. The kernel hands out ports in ip_local_port_range (Linux:
# 32768-60999) as the local end of outgoing connections, and PostgreSQL cannot listen on a port
# a connection holds ("Address already in use"), so asking whether something answers is not
# enough. TIME-WAIT sockets are left out: a server closing its connections leaves them on its
# own port, and PostgreSQL listens with SO_REUSEADDR, which binds over them (a restart right
# after a stop would otherwise be refused). Without ss, only listening servers are seen.
_pg_port_free() {
  if command -v ss >/dev/null 2>&1; then
    [[ -z $(ss -Htan exclude time-wait "sport = :$1" 2>/dev/null) ]]
  else
    ! _pg_accepts "$1"
  fi
}

# Waits up to $2 seconds for 127.0.0.1:$1 to accept connections.
_pg_wait_ready() {
  local deadline=$((SECONDS + $2))
  while ! _pg_answers "$1"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# Owner of the throwaway cluster: postgres when root (the server refuses root), else ourselves.
_pg_owner() {
  if ((EUID == 0)); then echo postgres; else id -un; fi
}

# Runs a command as the cluster owner, from / (root's cwd may be unreadable to postgres), with
# only stdin/stdout/stderr open: a postmaster inheriting our flock descriptor would hold the lock
# forever, and one inheriting a caller's pipe would keep its reader waiting for EOF.
_pg_as_owner() {
  (
    local f n
    for f in /proc/"$BASHPID"/fd/*; do
      n=${f##*/}
      if [[ $n =~ ^[0-9]+$ ]] && ((n > 2)); then exec {n}>&-; fi
    done
    cd / || exit 1
    if ((EUID != 0)); then
      exec "$@"
    elif command -v runuser >/dev/null 2>&1; then
      exec runuser -u postgres -- "$@"
    else
      exec su -s /bin/sh -c 'exec "$0" "$@"' postgres -- "$@"
    fi
  )
}

# Makes sure the postgres system user exists (Debian's package creates it; a source install may not).
_pg_ensure_os_user() {
  ((EUID == 0)) || return 0
  getent passwd postgres >/dev/null 2>&1 && return 0
  _pg_log "creating system user postgres to own the throwaway cluster"
  useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql \
    --shell /bin/bash --comment "PostgreSQL administrator" postgres || {
    _pg_log "could not create user postgres; create it or set DATABASE_URL"
    return 1
  }
}

# Installs Debian's postgresql with apt-get (root only).
_pg_install() {
  if ((EUID != 0)); then
    _pg_log "no PostgreSQL server found; install it (sudo apt-get install postgresql) or set DATABASE_URL"
    return 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    _pg_log "no PostgreSQL server found and no apt-get to install it; install PostgreSQL or set DATABASE_URL"
    return 1
  fi
  _pg_log "no PostgreSQL server found; installing Debian's postgresql with apt-get (takes a minute)"
  # Keep the package from creating and starting its own "main" cluster on port 5432: a system
  # service nobody asked for, which the next run would find answering on 5432 but not usable with
  # trust auth. postgresql-common reads createcluster.d/ drop-ins; ours is removed after the
  # install so later installs by hand behave as usual.
  local dropin=/etc/postgresql-common/createcluster.d/zz-mash-no-main-cluster.conf made=0 rc=0
  local before after c
  before=$(ls -d /etc/postgresql/*/main 2>/dev/null || true)
  if [[ ! -e $dropin ]] && mkdir -p "${dropin%/*}" &&
    printf '# Temporary, written by mash scripts/lib/postgres.sh during apt-get install.\ncreate_main_cluster = false\n' >"$dropin"; then
    made=1
  fi
  {
    apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
  } </dev/null >&2 || rc=$?
  if ((made)); then rm -f "$dropin"; fi
  if ((rc != 0)); then
    _pg_log "apt-get install postgresql failed (exit $rc); install PostgreSQL or set DATABASE_URL"
    return 1
  fi
  # Older postgresql-common without createcluster.d: drop the main cluster this install made.
  after=$(ls -d /etc/postgresql/*/main 2>/dev/null || true)
  for c in $after; do
    if ! grep -qxF "$c" <<<"$before" && command -v pg_dropcluster >/dev/null 2>&1; then
      c=${c#/etc/postgresql/}
      _pg_log "removing the default cluster ${c%/main}/main the package created"
      pg_dropcluster --stop "${c%/main}" main >/dev/null 2>&1 || true
    fi
  done
}

# 0 if database $2 exists on 127.0.0.1:$1 (creating it when missing), 1 if it could not be
# checked or created (error on stderr), 2 if there is no psql to check with.
_pg_ensure_db() {
  local port=$1 db=$2 psql out
  local admin="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable&connect_timeout=5"
  psql=$(_pg_tool psql) || return 2
  local q="select 1 from pg_database where datname = '$db'"
  out=$("$psql" -X -q -tA -v ON_ERROR_STOP=1 -d "$admin" -c "$q" 2>&1) || {
    printf '  %s\n' "$out" >&2
    return 1
  }
  [[ $out == 1 ]] && return 0
  if out=$("$psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" -c "create database \"$db\"" 2>&1); then
    _pg_log "created database $db on 127.0.0.1:$port"
    return 0
  fi
  # Another script may have created it at the same moment.
  [[ $("$psql" -X -q -tA -d "$admin" -c "$q" 2>/dev/null) == 1 ]] && return 0
  printf '  %s\n' "$out" >&2
  return 1
}

# Decides where the cluster lives (see the top of this file) and prints that directory.
_pg_cluster_dir() {
  local repo=$1 link=$1/.local/postgres owner target hash
  owner=$(_pg_owner)
  mkdir -p "$repo/.local" || return 1
  if [[ -L $link ]]; then
    target=$(readlink "$link")
  elif [[ -d $link ]]; then
    if _pg_as_owner test -w "$link" -a -x "$link"; then
      printf '%s\n' "$link"
      return 0
    fi
    if [[ -n $(ls -A "$link" 2>/dev/null) ]]; then
      _pg_log "$link is not reachable by user $owner (a parent directory is not traversable);"
      _pg_log "stop and remove it (rm -rf $link) to move the cluster to /var/tmp, or set DATABASE_URL"
      return 1
    fi
    rmdir "$link" || return 1
  fi
  if [[ -z ${target:-} ]]; then
    if ((EUID != 0)) || _pg_as_owner test -x "$repo"; then
      _pg_as_owner test -x "$repo/.local" || chmod o+x "$repo/.local" || return 1
      mkdir -m 700 "$link" && chown "$owner": "$link" || return 1
      printf '%s\n' "$link"
      return 0
    fi
    hash=$(printf '%s' "$repo" | sha256sum | cut -c1-12)
    target=/var/tmp/mash-postgres-$hash
    ln -s "$target" "$link" || return 1
  fi
  # The symlinked place: create it if missing; refuse one that is not ours (it is in a shared dir).
  if [[ ! -e $target && ! -L $target ]]; then
    mkdir -m 700 "$target" && chown "$owner": "$target" || return 1
  fi
  if [[ -L $target || ! -d $target || $(stat -c %U "$target") != "$owner" ]]; then
    _pg_log "$target (where $link points) is not a directory owned by $owner; remove it or set DATABASE_URL"
    return 1
  fi
  printf '%s\n' "$target"
}

pg_ensure() {
  _pg_find_bin || true
  PG_STARTED_BY_US=${PG_STARTED_BY_US:-0}
  export PG_DATA_DIR=${PG_DATA_DIR:-}
  if [[ -n ${DATABASE_URL:-} ]]; then
    return 0
  fi
  local probe=${MASH_PG_PROBE_PORT:-5432} db=${MASH_PG_DB:-mash} rc=0
  if [[ ! $db =~ ^[a-z_][a-z0-9_]*$ ]]; then
    _pg_log "MASH_PG_DB must be a plain lowercase name, not '$db'"
    return 1
  fi
  if [[ ${MASH_PG_THROWAWAY:-} != 1 ]] && _pg_answers "$probe"; then
    _pg_ensure_db "$probe" "$db" || rc=$?
    if ((rc == 1)); then
      _pg_log "a server answers on 127.0.0.1:$probe but database $db could not be checked or created as user postgres;"
      _pg_log "point DATABASE_URL at a database you can use, e.g."
      _pg_log "  export DATABASE_URL='postgres://USER:PASSWORD@127.0.0.1:$probe/$db?sslmode=disable'"
      return 1
    elif ((rc == 2)); then
      _pg_log "no psql to check that database $db exists on 127.0.0.1:$probe; assuming it does"
    fi
    export DATABASE_URL="postgres://postgres@127.0.0.1:$probe/$db?sslmode=disable"
    PG_STARTED_BY_US=0 PG_DATA_DIR=
    _pg_log "using the PostgreSQL server already running on 127.0.0.1:$probe (database $db)"
    return 0
  fi
  _pg_start_throwaway "$db"
}

_pg_start_throwaway() {
  # The default lies below Linux's ephemeral range (32768-60999), so an outgoing connection
  # cannot be holding it when the cluster starts.
  local db=$1 port=${MASH_PG_PORT:-25432} repo rc=0
  if [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    _pg_log "MASH_PG_PORT must be a port number, not '$port'"
    return 1
  fi
  repo=$(_pg_repo_root) || {
    _pg_log "cannot find the repository root (MASH_ROOT=${MASH_ROOT:-})"
    return 1
  }
  if ! _pg_find_bin; then
    _pg_install || return 1
    _pg_find_bin || {
      _pg_log "PostgreSQL installed but initdb/pg_ctl not found under /usr/lib/postgresql/*/bin"
      return 1
    }
  fi
  _pg_ensure_os_user || return 1
  mkdir -p "$repo/.local" || return 1
  # One pg_ensure at a time per checkout (scripts/run and scripts/test started together).
  local _PG_LOCK_FD
  exec {_PG_LOCK_FD}>>"$repo/.local/postgres.lock"
  if command -v flock >/dev/null 2>&1 && ! flock -w 120 "$_PG_LOCK_FD"; then
    exec {_PG_LOCK_FD}>&-
    _pg_log "timed out waiting for another script starting the throwaway cluster ($repo/.local/postgres.lock)"
    return 1
  fi
  _pg_start_locked "$repo" "$port" "$db" || rc=$?
  exec {_PG_LOCK_FD}>&-
  return "$rc"
}

_pg_start_locked() {
  local repo=$1 port=$2 db=$3 dir data log bin ver running_port out locale conf sock
  dir=$(_pg_cluster_dir "$repo") || return 1
  data=$dir/data
  log=$dir/postgres.log
  bin=$PG_BIN
  # A cluster made by another major version needs that version's server.
  if [[ -s $data/PG_VERSION ]]; then
    ver=$(<"$data/PG_VERSION")
    if [[ $("$bin/pg_ctl" --version 2>/dev/null | sed -E 's/^[^0-9]*([0-9]+).*/\1/') != "$ver" ]]; then
      if [[ -x /usr/lib/postgresql/$ver/bin/pg_ctl ]]; then
        bin=/usr/lib/postgresql/$ver/bin
      else
        _pg_log "$data was made by PostgreSQL $ver, which is not installed; remove it (rm -rf $data) or set DATABASE_URL"
        return 1
      fi
    fi
  fi

  if [[ -f $data/postmaster.pid ]] && _pg_as_owner "$bin/pg_ctl" status -D "$data" >/dev/null 2>&1; then
    running_port=$(sed -n 4p "$data/postmaster.pid")
    if ! _pg_wait_ready "$running_port" 30; then
      _pg_log "the throwaway cluster in $data runs but does not answer on 127.0.0.1:$running_port; last lines of $log:"
      tail -n 20 "$log" 2>/dev/null | sed 's/^/  /' >&2
      return 1
    fi
    if [[ $running_port != "$port" ]]; then
      _pg_log "the throwaway cluster already runs on port $running_port, not $port; reusing it (stop it to change port)"
      port=$running_port
    else
      _pg_log "reusing the throwaway cluster already running on 127.0.0.1:$port ($data)"
    fi
    # Still ours to stop only if this shell started it earlier.
    [[ ${PG_STARTED_BY_US:-0} == 1 && ${PG_DATA_DIR:-} == "$data" ]] || PG_STARTED_BY_US=0
  else
    if _pg_answers "$port"; then
      _pg_log "port $port on 127.0.0.1 is used by another server (another checkout's cluster?); set MASH_PG_PORT to a free port"
      return 1
    fi
    if ! _pg_port_free "$port"; then
      _pg_log "port $port on 127.0.0.1 is held by another socket (ss -tanp 'sport = :$port' shows which); set MASH_PG_PORT to a free port"
      return 1
    fi
    if [[ ! -s $data/PG_VERSION ]]; then
      if [[ -e $data ]]; then
        _pg_log "removing the unfinished data directory $data"
        rm -rf "$data" || return 1
      fi
      locale=C
      if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then locale=C.UTF-8; fi
      if ! out=$(_pg_as_owner "$bin/initdb" -D "$data" --auth=trust -U postgres --encoding=UTF8 \
        --locale="$locale" 2>&1); then
        _pg_log "initdb failed:"
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/  /' >&2
        return 1
      fi
      printf "\n# Settings for the mash throwaway cluster, rewritten at every start.\ninclude_if_exists = 'mash.conf'\n" \
        >>"$data/postgresql.conf" || return 1
      _pg_log "initialised a throwaway cluster in $data"
    fi
    # The unix socket lives in the data directory, unless that path is too long for a socket
    # (108 bytes); then only TCP, which is all DATABASE_URL uses.
    sock=$data
    if ((${#data} + 16 > 107)); then sock=""; fi
    conf=$data/mash.conf
    {
      echo "# Written by scripts/lib/postgres.sh before each start; edits are overwritten."
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '${sock//\'/\'\'}'"
      echo "fsync = on"
      echo "synchronous_commit = on"
      echo "full_page_writes = on"
    } >"$conf" && chown "$(_pg_owner)": "$conf" && chmod 600 "$conf" || return 1
    if ! out=$(_pg_as_owner "$bin/pg_ctl" start -D "$data" -l "$log" -w -t 30 -s 2>&1) ||
      ! _pg_wait_ready "$port" 5; then
      out=${out//$'\n'/ }
      _pg_log "the throwaway server did not start${out:+ ($out)}; last lines of $log:"
      tail -n 20 "$log" 2>/dev/null | sed 's/^/  /' >&2
      _pg_as_owner "$bin/pg_ctl" stop -D "$data" -m immediate >/dev/null 2>&1 || true
      return 1
    fi
    PG_STARTED_BY_US=1
    _pg_log "started a throwaway PostgreSQL $("$bin/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$port ($data)"
  fi

  PG_DATA_DIR=$data
  _PG_LINK=$repo/.local/postgres
  _PG_CTL=$bin/pg_ctl
  if ! _pg_ensure_db "$port" "$db"; then
    _pg_log "could not create database $db in the throwaway cluster (log: $log)"
    return 1
  fi
  export PG_DATA_DIR
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$db?sslmode=disable"
}

pg_stop_if_started() {
  [[ ${PG_STARTED_BY_US:-0} == 1 && -n ${PG_DATA_DIR:-} ]] || return 0
  local ctl=${_PG_CTL:-${PG_BIN:-}/pg_ctl}
  _pg_as_owner "$ctl" stop -D "$PG_DATA_DIR" -m fast -w -t 30 >/dev/null 2>&1 || true
  PG_STARTED_BY_US=0
  return 0
}

# DATABASE_URL without its password.
_pg_redact() {
  printf '%s' "$1" | sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#'
}

pg_where() {
  local url stop where
  url=$(_pg_redact "${DATABASE_URL:-}")
  if [[ -n ${PG_DATA_DIR:-} ]]; then
    stop=$(printf '%q stop -D %q -m fast' "${_PG_CTL:-${PG_BIN:-}/pg_ctl}" "$PG_DATA_DIR")
    ((EUID == 0)) && stop="runuser -u postgres -- $stop"
    where=$PG_DATA_DIR
    if [[ -n ${_PG_LINK:-} && -L $_PG_LINK ]]; then where="$where (linked from $_PG_LINK)"; fi
    _pg_log "throwaway cluster in $where, log ${PG_DATA_DIR%/data}/postgres.log; stop it with: $stop; DATABASE_URL=$url"
  elif [[ -n $url ]]; then
    _pg_log "using a server these scripts do not manage; DATABASE_URL=$url"
  else
    _pg_log "no server chosen yet (pg_ensure has not run); DATABASE_URL is unset"
  fi
}
