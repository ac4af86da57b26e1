# Throwaway PostgreSQL cluster helpers, sourced by test.sh, demo.sh and bench.
# The cluster runs as the `postgres` user in a temporary folder, listens on
# 127.0.0.1 and a Unix socket in that folder, on a free port, with trust
# authentication (loopback only, deleted afterwards).
#   pg_start DIR   -> exports TSCB_PG_PORT, TSCB_PG_HOST, TSCB_PG_DIR, PG_CONN
#   pg_stop        -> stops it (by its postmaster PID) and removes DIR

# Every `return` here names its status: a bare one inside an EXIT trap (a
# failed run's cleanup) returns the failing command's status instead.
pg_bin() {
  local v
  for v in 15 16 17; do
    if [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then echo "/usr/lib/postgresql/$v/bin"; return 0; fi
  done
  echo "pg.sh: PostgreSQL server binaries not found (apt-get install postgresql-15)" >&2
  return 1
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

pg_start() {
  local dir=$1 bin
  bin=$(pg_bin) || return 1
  mkdir -p "$dir"
  chmod o+x "$(dirname "$dir")"  # the postgres user must reach its folder
  chown postgres:postgres "$dir"
  chmod 700 "$dir"
  TSCB_PG_PORT=$(free_port)
  TSCB_PG_DIR=$dir
  TSCB_PG_HOST=127.0.0.1
  runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $TSCB_PG_PORT
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
CONF
  # Diagnostics only (bench/README.md), e.g. pg_stat_statements.
  if [ -n "${TSCB_PG_EXTRA_CONF:-}" ]; then printf '%s\n' "$TSCB_PG_EXTRA_CONF" >>"$dir/data/postgresql.conf"; fi
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  PG_CONN="host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=postgres"
  export TSCB_PG_PORT TSCB_PG_DIR TSCB_PG_HOST PG_CONN
  echo "PostgreSQL started on 127.0.0.1:$TSCB_PG_PORT (data in $dir/data)"
}

pg_stop() {
  [ -n "${TSCB_PG_DIR:-}" ] && [ -d "$TSCB_PG_DIR/data" ] || return 0
  local bin pid
  bin=$(pg_bin) || return 0
  pid=$(head -1 "$TSCB_PG_DIR/data/postmaster.pid" 2>/dev/null || true)
  runuser -u postgres -- "$bin/pg_ctl" -D "$TSCB_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; }
  rm -rf "$TSCB_PG_DIR"
  TSCB_PG_DIR=
}
