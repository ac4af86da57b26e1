#!/usr/bin/env bash
# A quick ingest A/B (bench/README.md): one PostgreSQL and one daemon per
# call, 64 keep-alive TLS connections from tscb-load, then the rate and the
# CPU each part spent per stored callback (from /proc, so the machine's
# noise matters less than in callbacks/s). Compare cases by alternating calls.
#   AB_BIN=path/to/ts-callbackd  the daemon to measure (default: the Release build's)
#   AB_LOAD=path/to/tscb-load    the load generator (default: the Release build's)
#   AB_SECS=10 AB_CONNS=64 AB_ROUNDS=1 AB_THREADS=0 AB_LOG=info
#   AB_EXTRA='inbox: { batch_max: 16 }'  more config, appended as is
#   AB_SQL='...'  SQL run on the daemon's database once it is ready (a schema A/B)
#   AB_PGCONF='max_wal_size = 8GB'  lines added to postgresql.conf (reloaded)
#     before the daemon starts (a server-setting A/B; settings that need a
#     restart do not take)
# Needs a Release build (scripts/test.sh or bench/run.sh made one).
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"
. "$TSCB_ROOT/scripts/pg.sh"
. "$TSCB_ROOT/scripts/certs.sh"

BUILD=${TSCB_BUILD:-$TSCB_ROOT/build-release}
BIN=${AB_BIN:-$BUILD/daemon/ts-callbackd}
LOAD=${AB_LOAD:-$BUILD/bench/tscb-load}
SECS=${AB_SECS:-10}
CONNS=${AB_CONNS:-64}
if [ ! -x "$BIN" ] || [ ! -x "$LOAD" ]; then
  echo "no build in $BUILD (run bench/run.sh once)" >&2
  exit 1
fi

bench_workdir tscb-ab
pg_start "$work/pg" >/dev/null
psql "$PG_CONN" -qc "CREATE DATABASE tscb"
if [ -n "${AB_PGCONF:-}" ]; then
  printf '%s\n' "$AB_PGCONF" >>"$TSCB_PG_DIR/data/postgresql.conf"
  psql "$PG_CONN" -qtAc "SELECT pg_reload_conf()" >/dev/null
fi
make_certs "$work/tls" >/dev/null
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/secret"
port=$(free_port)
admin_port=$(free_port)
{
  bench_config_head "$port" "${AB_LOG:-info}"
  cat <<CONF
  threads: ${AB_THREADS:-0}
services:
  CarrierService: { username: bench, password: { file: secret } }
admin: { address: 127.0.0.1, port: $admin_port }
processing: { workers: 0 }
${AB_EXTRA:-}
CONF
} >"$work/tscb.yaml"
chmod go-rwx "$work/tscb.yaml" "$work/secret"
(cd "$work" && exec "$BIN" run --allow-root --config "$work/tscb.yaml" >"$work/tscb.log" 2>&1) &
daemon=$!
pids+=("$daemon")
# Ready when the admin listener says so (the log's "ready" line is info).
ready() { curl -sf -o /dev/null "http://127.0.0.1:$admin_port/readyz"; }
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { cat "$work/tscb.log"; exit 1; }
if [ -n "${AB_SQL:-}" ]; then psql "${PG_CONN/dbname=postgres/dbname=tscb}" -v ON_ERROR_STOP=1 -qc "$AB_SQL"; fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU of this shell's finished children (the load generator between two calls).
# (`times` in this shell, not in a command substitution's subshell.)
child_ticks() {
  times >"$work/times"
  awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
    printf "%d\n", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * 100 }' "$work/times"
}
# Backends that ended are counted in the postmaster's children's time.
pg_ticks() {
  local t=0 p
  for p in $(pgrep -u postgres); do
    t=$((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
wal_lsn() { psql "$PG_CONN" -tAc "SELECT pg_current_wal_lsn()"; }
batches() { curl -s "http://127.0.0.1:$admin_port/metrics" | awk '/^tscb_inbox_batches_total/{print $2}'; }
sleep 2
b0=$(batches)
for r in $(seq "${AB_ROUNDS:-1}"); do
  d0=$(ticks "$daemon")
  p0=$(pg_ticks)
  w0=$(wal_lsn)
  child_ticks >"$work/c0"
  out=$("$LOAD" --port "$port" --ca "$work/tls/ca.pem" --connections "$CONNS" --seconds "$SECS" \
    --run-id "ab$r" --username bench --password "$(cat "$work/secret")")
  child_ticks >"$work/c1"
  d1=$(ticks "$daemon")
  p1=$(pg_ticks)
  wal=$(psql "$PG_CONN" -tAc "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0')::bigint")
  checkpoints=$(psql "$PG_CONN" -tAc "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
  n=$(psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -tAc \
    "SELECT count(*) FROM tscb.inbox WHERE request_id LIKE 'ab$r-%'")
  b1=$(batches)
  python3 - "$out" "$n" "$((d1 - d0))" "$((p1 - p0))" "$b0" "$b1" "$(($(cat "$work/c1") - $(cat "$work/c0")))" \
    "$wal" "$checkpoints" <<'PY'
import json, sys
d = json.loads(sys.argv[1]); n = int(sys.argv[2])
hz = 100  # clock ticks per second (USER_HZ)
assert n == d["ok"], f"rows {n} != 2xx {d['ok']}"
print(f"callbacks/s {d['rps']}  p50/p99/p99.9 {d['p50_ms']}/{d['p99_ms']}/{d['p999_ms']} ms  rows {n} = 2xx  "
      f"daemon {int(sys.argv[3]) / hz / n * 1e6:.1f} us/callback  "
      f"postgres {int(sys.argv[4]) / hz / n * 1e6:.1f} us/callback  "
      f"load {int(sys.argv[7]) / hz / n * 1e6:.1f} us/callback  "
      f"batch {n / max(1, float(sys.argv[6]) - float(sys.argv[5])):.1f} callbacks  "
      f"WAL {int(sys.argv[8]) / n:.0f} bytes/callback  checkpoints {sys.argv[9]} since start")
PY
  b0=$b1
done
