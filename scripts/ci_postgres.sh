#!/usr/bin/env bash
# A throw-away PostgreSQL server on 127.0.0.1 for the @pytest.mark.postgres tests (several
# `fpga-ft optimize` workers sharing one Optuna study).
#
#   eval "$(bash scripts/ci_postgres.sh)"        # install if needed, start, export the URL
#   python -m pytest -m postgres tests/test_optimize.py
#   bash scripts/ci_postgres.sh stop             # stop the server (data kept; "purge" removes it)
#
# Start prints exactly one line on stdout:
#   export FPGA_FT_TEST_POSTGRES_URL=postgresql://fpgaft:fpgaft@127.0.0.1:PORT/fpgaft_test
# Everything else goes to stderr. Idempotent: a running server is reused, a stopped one
# restarted, the role and database created only when missing. On any failure it prints why
# (on stderr) and exits non-zero, so CI can go on without the postgres tests.
#
# Settings (environment): FPGA_FT_PG_DIR (data directory, default /tmp/fpga-ft-postgres),
# FPGA_FT_PG_PORT (default 5432, or the next free port up to 5499 when taken).
# The server listens on 127.0.0.1 only; its socket lives in the data directory.
set -u

DATA_DIR=${FPGA_FT_PG_DIR:-/tmp/fpga-ft-postgres}
WANT_PORT=${FPGA_FT_PG_PORT:-5432}
DB=fpgaft_test
ROLE=fpgaft
PASSWORD=fpgaft

say() { echo "ci_postgres: $*" >&2; }
fail() { say "$*"; exit 1; }

find_bin() {  # the PostgreSQL server binaries directory (newest version), or nothing
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return 0
    fi
    return 1
}

as_owner() {  # run a command as the data directory's owner (postgres when we are root)
    if [ "$(id -u)" = 0 ]; then
        if command -v runuser >/dev/null 2>&1; then runuser -u postgres -- "$@"
        else su -s /bin/sh postgres -c "$(printf '%q ' "$@")"; fi
    else
        "$@"
    fi
}

port_free() {  # nothing listens on 127.0.0.1:$1
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

BIN=$(find_bin) || BIN=""

if [ "${1:-start}" = "stop" ] || [ "${1:-}" = "purge" ]; then
    [ -n "$BIN" ] || fail "PostgreSQL is not installed: nothing to stop"
    if [ -f "$DATA_DIR/PG_VERSION" ]; then
        as_owner "$BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1 \
            && { as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2 || fail "pg_ctl stop failed"; }
        say "stopped (data in $DATA_DIR)"
    else
        say "no server data in $DATA_DIR"
    fi
    if [ "${1:-}" = "purge" ]; then rm -rf "$DATA_DIR" && say "removed $DATA_DIR"; fi
    exit 0
fi

# ---- install --------------------------------------------------------------------------------
if [ -z "$BIN" ]; then
    [ "$(id -u)" = 0 ] || fail "PostgreSQL is not installed and we are not root (apt-get install postgresql)"
    command -v apt-get >/dev/null 2>&1 || fail "PostgreSQL is not installed and there is no apt-get"
    say "installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q postgresql >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1; } \
        || fail "apt-get install postgresql failed"
    BIN=$(find_bin) || fail "postgresql installed but initdb/pg_ctl not found"
fi
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || fail "no 'postgres' system user to run the server as (root cannot)"
fi

# ---- initialise ------------------------------------------------------------------------------
if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
    mkdir -p "$DATA_DIR" || fail "cannot create $DATA_DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$DATA_DIR"
    chmod 700 "$DATA_DIR"
    PWFILE="$DATA_DIR.pw"
    echo "$PASSWORD" > "$PWFILE" && chmod 644 "$PWFILE"
    as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --pwfile="$PWFILE" --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 >"$DATA_DIR.initdb.log" 2>&1 \
        || { rm -f "$PWFILE"; fail "initdb failed (see $DATA_DIR.initdb.log)"; }
    rm -f "$PWFILE"
    say "initialised $DATA_DIR"
fi

# ---- start -----------------------------------------------------------------------------------
if as_owner "$BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1; then
    PORT=$(cat "$DATA_DIR/fpgaft_port" 2>/dev/null) || PORT=""
    [ -n "$PORT" ] || PORT=$(sed -n 4p "$DATA_DIR/postmaster.pid" 2>/dev/null)
    [ -n "$PORT" ] || fail "server in $DATA_DIR is running but its port is unknown"
    say "server already running on 127.0.0.1:$PORT"
else
    PORT=$WANT_PORT
    while ! port_free "$PORT"; do
        PORT=$((PORT + 1))
        [ "$PORT" -le 5499 ] || fail "no free port in $WANT_PORT..5499"
    done
    as_owner sh -c "echo $PORT > '$DATA_DIR/fpgaft_port'"
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA_DIR" start >/dev/null 2>&1 \
        || fail "pg_ctl start failed (see $DATA_DIR/server.log)"
    say "started on 127.0.0.1:$PORT (log $DATA_DIR/server.log)"
fi

# ---- role and database -----------------------------------------------------------------------
PSQL="$BIN/psql"
[ -x "$PSQL" ] || PSQL=$(command -v psql) || fail "psql not found"
sql() { as_owner "$PSQL" -h "$DATA_DIR" -p "$PORT" -U postgres -d postgres -tAq -v ON_ERROR_STOP=1 -c "$1"; }
if [ "$(sql "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    sql "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" >&2 || fail "cannot create role $ROLE"
fi
if [ "$(sql "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    sql "CREATE DATABASE $DB OWNER $ROLE" >&2 || fail "cannot create database $DB"
fi
echo "export FPGA_FT_TEST_POSTGRES_URL=postgresql://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
