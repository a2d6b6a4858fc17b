#!/usr/bin/env bash
# Self-test for scripts/lib/postgres.sh. Starts throwaway clusters for fake repositories in a
# temporary folder (nothing is left in the real repository), on free ports, with
# MASH_PG_PROBE_PORT=1 so the local server is never picked by mistake; checks the DATABASE_URL
# passthrough and, if a server answers on 127.0.0.1:5432, the local-server path (with a scratch
# database it drops afterwards). Prints "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail

LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/postgres.sh
TMP=$(mktemp -d)
chmod 755 "$TMP" # the project-local case needs a repository the postgres user can reach
RESULTS=$TMP/results
: >"$RESULTS"
SCRATCH_DB=mash_pgtest_$$
VARTMP_DIRS=()

ok() { echo "ok   $*" | tee -a "$RESULTS"; }
bad() { echo "FAIL $*" | tee -a "$RESULTS"; }
# check DESCRIPTION COMMAND...: records ok/FAIL for the command's success.
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
eq() { [[ $1 == "$2" ]] || { echo "     got '$1', want '$2'" >&2; return 1; }; }
has() { [[ $1 == *"$2"* ]] || { echo "     '$2' not in: $1" >&2; return 1; }; }

# shellcheck source=scripts/lib/postgres.sh
source "$LIB"

# Ports below Linux's ephemeral range (32768-60999): a port in it can be taken, between this
# check and the server's start, as the local end of any outgoing connection on the machine.
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if _pg_port_free "$p"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

new_repo() { # new_repo NAME PARENT: a fake repository with this library in scripts/lib
  mkdir -p "$2/$1/scripts/lib"
  cp "$LIB" "$2/$1/scripts/lib/postgres.sh"
  printf '%s\n' "$2/$1"
}

sql() { "$(_pg_tool psql)" -X -q -tA -d "$1" -c "$2" 2>&1; }
pm_pid() { head -n 1 "$1/postmaster.pid" 2>/dev/null; }

# hold_port HOW PORT: holds 127.0.0.1:PORT from a background process until release_port:
# HOW=listen with a listening server, HOW=connect with the local end of a connection, the way
# an outgoing connection holds a port. Sets HOLDER to the process's pid.
hold_port() {
  rm -f "$TMP/hold.out"
  python3 -c '
import socket, sys, time
port = int(sys.argv[2])
if sys.argv[1] == "listen":
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(1)
else:
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
    c = socket.socket(); c.bind(("127.0.0.1", port)); c.connect(srv.getsockname())
print("ready", flush=True); time.sleep(60)' "$1" "$2" >"$TMP/hold.out" 2>&1 &
  HOLDER=$!
  local deadline=$((SECONDS + 10))
  until grep -q ready "$TMP/hold.out" 2>/dev/null || ((SECONDS > deadline)); do sleep 0.1; done
}
release_port() {
  kill "$HOLDER" 2>/dev/null || true
  wait "$HOLDER" 2>/dev/null || true
}

cleanup() {
  local d
  for d in "$TMP"/*/repo/.local/postgres/data "${VARTMP_DIRS[@]/%//data}"; do
    if [[ -f $d/postmaster.pid ]]; then
      _pg_as_owner "$PG_BIN/pg_ctl" stop -D "$d" -m immediate >/dev/null 2>&1 || true
    fi
  done
  if _pg_answers 5432 && [[ -n $(_pg_tool psql) ]]; then
    "$(_pg_tool psql)" -X -q -d "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable" \
      -c "drop database if exists $SCRATCH_DB" >/dev/null 2>&1 || true
  fi
  rm -rf "$TMP" "${VARTMP_DIRS[@]}"
}
trap cleanup EXIT

# scenario NAME FUNCTION: runs FUNCTION in a subshell with errexit really on (not suspended as it
# would be under `if` or `||`); an unexpected failure is recorded instead of ending the test.
scenario() {
  local rc
  set +e
  (
    set -e
    "$2"
  )
  rc=$?
  set -e
  ((rc == 0)) || bad "$1: aborted (exit $rc)"
}

unset DATABASE_URL
_pg_find_bin || true
opts_before=$-
source "$LIB"
check "sourcing the library changes no shell options" eq "$-" "$opts_before"

# --- DATABASE_URL set: pg_ensure does nothing -------------------------------------------------
t_passthrough() {
  repo=$(new_repo repo "$TMP/passthrough")
  export MASH_ROOT=$repo DATABASE_URL='postgres://alice:s3cret@db.invalid:6543/x?sslmode=require'
  rc=0
  pg_ensure >"$TMP/out" 2>"$TMP/err" || rc=$?
  check "DATABASE_URL set: pg_ensure succeeds" eq "$rc" 0
  check "DATABASE_URL set: URL untouched" eq "$DATABASE_URL" 'postgres://alice:s3cret@db.invalid:6543/x?sslmode=require'
  check "DATABASE_URL set: nothing started" eq "$PG_STARTED_BY_US" 0
  check "DATABASE_URL set: no output" eq "$(cat "$TMP/out" "$TMP/err")" ""
  check "DATABASE_URL set: no .local folder made" test ! -e "$repo/.local"
  where=$(pg_where 2>&1)
  check "pg_where hides the password" has "$where" 'postgres://alice:***@db.invalid:6543/x'
  check "pg_where never prints the password" eq "${where/s3cret/}" "$where"
}
scenario passthrough t_passthrough

# --- A Postgres answering on 127.0.0.1:5432 is used --------------------------------------------
t_local() {
  repo=$(new_repo repo "$TMP/local")
  unset DATABASE_URL MASH_PG_PROBE_PORT
  export MASH_ROOT=$repo MASH_PG_DB=$SCRATCH_DB MASH_PG_PORT=1
  rc=0
  pg_ensure >"$TMP/out" 2>"$TMP/err" || rc=$?
  check "local server: pg_ensure succeeds" eq "$rc" 0
  check "local server: DATABASE_URL points at 5432" \
    eq "${DATABASE_URL:-}" "postgres://postgres@127.0.0.1:5432/$SCRATCH_DB?sslmode=disable"
  check "local server: database created and usable" eq "$(sql "${DATABASE_URL:-x}" 'select current_database()')" "$SCRATCH_DB"
  check "local server: not started by us" eq "$PG_STARTED_BY_US/$PG_DATA_DIR" "0/"
  check "local server: says which server" has "$(cat "$TMP/err")" "postgres: using the PostgreSQL server already running on 127.0.0.1:5432"
  check "local server: nothing on stdout" eq "$(cat "$TMP/out")" ""
  check "local server: no throwaway cluster made" test ! -e "$repo/.local/postgres"
  check "PG_BIN has pgbench and pg_test_fsync" test -x "${PG_BIN:-}/pgbench" -a -x "${PG_BIN:-}/pg_test_fsync"
  pg_stop_if_started
  check "local server: pg_stop_if_started leaves it alone" _pg_answers 5432
}
if _pg_answers 5432; then
  scenario "local server" t_local
else
  echo "skip nothing answers on 127.0.0.1:5432; local-server path not tested"
fi

# --- Throwaway cluster under <repo>/.local/postgres ---------------------------------------------
t_throwaway() {
  repo=$(new_repo repo "$TMP/throwaway")
  port=$(free_port 25490)
  unset DATABASE_URL MASH_PG_DB
  export MASH_ROOT=$repo MASH_PG_PROBE_PORT=1 MASH_PG_PORT=$port
  url="postgres://postgres@127.0.0.1:$port/mash?sslmode=disable"
  rc=0
  pg_ensure >"$TMP/out" 2>"$TMP/err" || rc=$?
  check "throwaway: pg_ensure succeeds" eq "$rc" 0
  [[ $rc == 0 ]] || sed 's/^/     /' "$TMP/err"
  check "throwaway: DATABASE_URL" eq "${DATABASE_URL:-}" "$url"
  check "throwaway: PG_STARTED_BY_US=1" eq "$PG_STARTED_BY_US" 1
  check "throwaway: PG_STARTED_BY_US not exported" eq "$(bash -c 'echo "${PG_STARTED_BY_US:-unset}"')" unset
  check "throwaway: data in <repo>/.local/postgres/data" eq "$PG_DATA_DIR" "$repo/.local/postgres/data"
  check "throwaway: <repo>/.local/postgres is a real folder" test -d "$repo/.local/postgres" -a ! -L "$repo/.local/postgres"
  check "throwaway: nothing on stdout" eq "$(cat "$TMP/out")" ""
  check "throwaway: select 1" eq "$(sql "$url" 'select 1')" 1
  check "throwaway: fsync is on" eq "$(sql "$url" 'show fsync')" on
  check "throwaway: synchronous_commit is on" eq "$(sql "$url" 'show synchronous_commit')" on
  check "throwaway: listens on 127.0.0.1 only" eq "$(sql "$url" 'show listen_addresses')" 127.0.0.1
  check "throwaway: unix socket in the data folder" test -S "$PG_DATA_DIR/.s.PGSQL.$port"
  check "throwaway: log in the folder" test -s "$repo/.local/postgres/postgres.log"
  pid=$(pm_pid "$PG_DATA_DIR")
  check "throwaway: server runs as $(_pg_owner)" eq "$(ps -o user= -p "$pid" | tr -d ' ')" "$(_pg_owner)"
  check "throwaway: PG_BIN has pgbench and pg_test_fsync" test -x "$PG_BIN/pgbench" -a -x "$PG_BIN/pg_test_fsync"
  where=$(pg_where 2>&1)
  check "pg_where: one line with place, stop command and URL" \
    eval '[[ $(wc -l <<<"$where") == 1 && $where == *"$PG_DATA_DIR"*"pg_ctl stop"*"$url"* ]]'
  sql "$url" 'create table kept (x int); insert into kept values (42)' >/dev/null

  # Same shell again: reused, still ours to stop.
  unset DATABASE_URL
  pg_ensure 2>"$TMP/err"
  check "reuse (same shell): same URL" eq "${DATABASE_URL:-}" "$url"
  check "reuse (same shell): same server" eq "$(pm_pid "$PG_DATA_DIR")" "$pid"
  check "reuse (same shell): still ours to stop" eq "$PG_STARTED_BY_US" 1
  check "reuse (same shell): says so" has "$(cat "$TMP/err")" "reusing the throwaway cluster"

  # Another script (say scripts/test while scripts/run is up): reuses, does not stop it.
  child=$(env -u DATABASE_URL bash -c 'set -euo pipefail; source "$1"; pg_ensure 2>/dev/null
    echo "$DATABASE_URL $PG_STARTED_BY_US"; pg_stop_if_started' _ "$repo/scripts/lib/postgres.sh")
  check "reuse (other script): same URL, not started by it" eq "$child" "$url 0"
  check "reuse (other script): its pg_stop_if_started leaves the server" eq "$(pm_pid "$PG_DATA_DIR")" "$pid"

  # A second checkout asking for the same port is refused with a clear message.
  other=$(new_repo repo "$TMP/busy")
  rc=0
  (unset DATABASE_URL; MASH_ROOT=$other pg_ensure) 2>"$TMP/err" || rc=$?
  check "busy port: refused" eq "$rc" 1
  check "busy port: says to set MASH_PG_PORT" has "$(cat "$TMP/err")" "set MASH_PG_PORT"

  pg_stop_if_started
  check "stop: server gone" eval '! _pg_answers "$port"'
  check "stop: no postmaster.pid" test ! -e "$PG_DATA_DIR/postmaster.pid"
  check "stop: PG_STARTED_BY_US=0" eq "$PG_STARTED_BY_US" 0
  pg_stop_if_started
  ok "stop: a second pg_stop_if_started is harmless"

  # Next run: starts the existing cluster again, data kept, no initdb.
  unset DATABASE_URL
  pg_ensure 2>"$TMP/err"
  check "restart: data kept" eq "$(sql "$url" 'select x from kept')" 42
  check "restart: no second initdb" eval '[[ $(cat "$TMP/err") != *initialised* ]]'
  pg_stop_if_started
  check "restart: stopped again" eval '! _pg_answers "$port"'
}
scenario throwaway t_throwaway

# --- A port held by the local end of a connection, not by a server -----------------------------
# pg_isready sees nothing there, yet PostgreSQL could not listen on it.
if command -v python3 >/dev/null 2>&1 && command -v ss >/dev/null 2>&1; then
  t_held() {
    local held
    repo=$(new_repo repo "$TMP/held")
    held=$(free_port 25900)
    hold_port connect "$held"
    unset DATABASE_URL
    export MASH_ROOT=$repo MASH_PG_PROBE_PORT=1 MASH_PG_PORT=$held
    rc=0
    pg_ensure 2>"$TMP/err" || rc=$?
    release_port
    check "held port: refused" eq "$rc" 1
    check "held port: names the socket and MASH_PG_PORT" has "$(cat "$TMP/err")" "port $held on 127.0.0.1 is held by another socket"
    check "held port: no server started" eval '[[ ! -f $repo/.local/postgres/data/postmaster.pid ]]'
  }
  scenario "held port" t_held

  # A port left in TIME-WAIT by a server that closed its connections (as PostgreSQL does on
  # stop) is not held: the restart right after a stop must not be refused.
  t_time_wait() {
    local port
    repo=$(new_repo repo "$TMP/timewait")
    port=$(free_port 25950)
    python3 -c '
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(1)
c = socket.create_connection(srv.getsockname())
a, _ = srv.accept(); a.close(); c.recv(1); c.close(); srv.close()' "$port"
    check "time-wait port: left in TIME-WAIT" eval '[[ -n $(ss -Htan state time-wait "sport = :$port") ]]'
    unset DATABASE_URL
    export MASH_ROOT=$repo MASH_PG_PROBE_PORT=1 MASH_PG_PORT=$port
    rc=0
    pg_ensure 2>"$TMP/err" || rc=$?
    check "time-wait port: pg_ensure succeeds" eq "$rc" 0
    [[ $rc == 0 ]] || sed 's/^/     /' "$TMP/err"
    pg_stop_if_started
  }
  scenario "time-wait port" t_time_wait
else
  echo "skip no python3 or ss; held-port refusal not tested"
fi

# --- Without ss: only a listening server makes a port busy -------------------------------------
# The fallback sees listeners only (a connection's local end goes unseen, as the library says).
if command -v python3 >/dev/null 2>&1; then
  t_no_ss() {
    local port
    mkdir -p "$TMP/no-ss-bin"
    ln -sf "$(command -v timeout)" "$(command -v bash)" "$TMP/no-ss-bin/"
    port=$(free_port 26100)
    # Assigning PATH also empties bash's table of commands found, so ss cannot be found there.
    check "no ss: ss is out of reach" eval '(PATH=$TMP/no-ss-bin; ! command -v ss >/dev/null)'
    check "no ss: a free port is free" eval '(PATH=$TMP/no-ss-bin; _pg_port_free "$port")'
    hold_port listen "$port"
    check "no ss: a port a server listens on is busy" eval '(PATH=$TMP/no-ss-bin; ! _pg_port_free "$port")'
    release_port
  }
  scenario "no ss" t_no_ss
fi

# --- Repository the postgres user cannot reach: cluster in /var/tmp ----------------------------
if ((EUID == 0)); then
  private=$(mktemp -d) # mode 700: postgres cannot traverse it
  repo=$(new_repo repo "$private")
  VARTMP_DIRS+=("/var/tmp/mash-postgres-$(printf '%s' "$repo" | sha256sum | cut -c1-12)" "$private")
  t_private() {
    port=$(free_port 25700)
    unset DATABASE_URL
    export MASH_ROOT=$repo MASH_PG_PROBE_PORT=1 MASH_PG_PORT=$port
    rc=0
    pg_ensure 2>"$TMP/err" || rc=$?
    check "private repo: pg_ensure succeeds" eq "$rc" 0
    [[ $rc == 0 ]] || sed 's/^/     /' "$TMP/err"
    check "private repo: data under /var/tmp/mash-postgres-<hash>" eq "$PG_DATA_DIR" "${VARTMP_DIRS[0]}/data"
    check "private repo: <repo>/.local/postgres links there" eq "$(readlink "$repo/.local/postgres")" "${VARTMP_DIRS[0]}"
    check "private repo: no permission loosened outside the repo" eq "$(stat -c %a "$private")" 700
    check "private repo: select 1" eq "$(sql "${DATABASE_URL:-x}" 'select 1')" 1
    check "private repo: pg_where names the real place" has "$(pg_where 2>&1)" "${VARTMP_DIRS[0]}/data (linked from $repo/.local/postgres)"
    pg_stop_if_started
    check "private repo: stopped" eval '! _pg_answers "$port"'
  }
  scenario "private repo" t_private
fi

passed=$(grep -c '^ok' "$RESULTS" || true)
failed=$(grep -c '^FAIL' "$RESULTS" || true)
echo "$passed passed, $failed failed"
((failed == 0))
