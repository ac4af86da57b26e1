#!/usr/bin/env bash
# The performance benchmark (issues: foundation, performance). Starts its own
# PostgreSQL, ts-callbackd, nginx (TLS, answers 200, stores nothing: the HTTP
# ceiling) and a Node.js receiver (fastify + pg, one INSERT per callback: what
# users would write), all on 127.0.0.1, loads each with bench/load.cpp for
# BENCH_SECONDS per scenario (keep-alive, a new TLS connection per callback,
# and a new one resuming the TLS session), checks that every store holds
# exactly one row per 2xx, and runs pgbench (one row per transaction, and 32).
# Then bench/rules.sh (its own PostgreSQL, simulator and daemon): processing
# throughput and keep-up, end-to-end latency at 2,000/s, start-up, memory idle,
# with 10,000 idle TLS connections and over a soak. Prints both tables and the
# issue's targets with the figure and verdict of each; stops everything it
# started (by PID).
#   BENCH_SECONDS=10 BENCH_ROUNDS=5 bench/run.sh     (BENCH_DAEMON=0: ingest only)
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"
. "$TSCB_ROOT/scripts/pg.sh"
. "$TSCB_ROOT/scripts/certs.sh"

SECS=${BENCH_SECONDS:-10}
install_deps nginx-light
command -v npm >/dev/null || install_deps nodejs npm
build Release

bench_workdir tscb-bench
LOAD="$TSCB_BUILD/bench/tscb-load"
results="$work/results.jsonl"

pg_start "$work/pg"
psql "$PG_CONN" -qc "CREATE DATABASE tscb" -c "CREATE DATABASE node"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=node" -qc \
  "CREATE TABLE node_inbox (id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(),
                            service text NOT NULL, request_id text, body jsonb NOT NULL)"
make_certs "$work/tls"
q() { psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=$1" -tAc "$2"; }

# run NAME TARGET_KIND PORT CONNECTIONS [--new-connection]
run() {
  local name=$1 kind=$2 port=$3 conns=$4 extra=${5:-} out rows=null
  log "$name: $conns connection(s) ${extra:-keep-alive}, ${SECS}s"
  out=$("$LOAD" --port "$port" --ca "$work/tls/ca.pem" --connections "$conns" --seconds "$SECS" \
    --run-id "$name" --username bench --password "$(cat "$work/secret")" $extra)
  case $kind in
    tscb) rows=$(q tscb "SELECT count(*) FROM tscb.inbox WHERE request_id LIKE '$name-%'") ;;
    node) rows=$(q node "SELECT count(*) FROM node_inbox WHERE request_id LIKE '$name-%'") ;;
  esac
  echo "$out"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(name=sys.argv[2], kind=sys.argv[3], conns=int(sys.argv[4]), rows=json.loads(sys.argv[5]), mode=sys.argv[6]); print(json.dumps(d))' \
    "$out" "$name" "$kind" "$conns" "$rows" "${extra:-keepalive}" >>"$results"
}

# --- start the three receivers (each idle while another is measured)
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/secret"
tscb_port=$(free_port)
# Log level info, the production default: one line per callback.
{
  bench_config_head "$tscb_port" info
  cat <<CONF
services:
  CarrierService: { username: bench, password: { file: secret } }
admin: { port: 0 }
# The receive path only, like the baselines: processing (events, requests)
# is measured on its own by tscb-process-bench (bench/README.md).
processing: { workers: 0 }
CONF
} >"$work/tscb.yaml"
"$TSCB_BUILD/daemon/ts-callbackd" run --allow-root --config "$work/tscb.yaml" >"$work/tscb.log" 2>&1 &
tscb_pid=$!
pids+=("$tscb_pid")
for _ in $(seq 100); do grep -q ' ready' "$work/tscb.log" 2>/dev/null && break; sleep 0.1; done
grep -q ' ready' "$work/tscb.log" || { echo "ts-callbackd did not start"; cat "$work/tscb.log"; exit 1; }
idle_rss=$(awk '/VmRSS/{print $2}' "/proc/$tscb_pid/status")

nginx_port=$(free_port)
sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$nginx_port|" -e "s|@CERT@|$work/tls/cert.pem|" \
  -e "s|@KEY@|$work/tls/key.pem|" "$TSCB_ROOT/bench/nginx.conf.in" >"$work/nginx.conf"
nginx -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
nginx_pid=$!
pids+=("$nginx_pid")

(cd "$TSCB_ROOT/bench/node-receiver" && npm install --no-audit --no-fund --silent)
start_node() {  # start_node WORKERS -> sets node_port
  node_port=$(free_port)
  PORT=$node_port TLS_CERT="$work/tls/cert.pem" TLS_KEY="$work/tls/key.pem" WORKERS=$1 \
    PGHOST=127.0.0.1 PGPORT=$TSCB_PG_PORT PGUSER=postgres PGDATABASE=node \
    node "$TSCB_ROOT/bench/node-receiver/server.js" >"$work/node$1w.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do curl -sk -o /dev/null "https://localhost:$node_port/" && break; sleep 0.1; done
}
start_node 1
node1_port=$node_port
start_node 2
node2_port=$node_port
sleep 0.5

# --- 64 keep-alive connections: alternate the four, ROUNDS times (medians
# below; each Node.js worker count gets the same statistic as ts-callbackd)
ROUNDS=${BENCH_ROUNDS:-3}
for r in $(seq "$ROUNDS"); do
  run "tscb-ka64-r$r" tscb "$tscb_port" 64
  run "node1w-ka64-r$r" node "$node1_port" 64
  run "node2w-ka64-r$r" node "$node2_port" 64
  run "nginx-ka64-r$r" nginx "$nginx_port" 64
done
# --- the other scenarios, once each
run tscb-ka256 tscb "$tscb_port" 256
run nginx-ka256 nginx "$nginx_port" 256
run tscb-new64 tscb "$tscb_port" 64 --new-connection
run nginx-new64 nginx "$nginx_port" 64 --new-connection
run tscb-resume64 tscb "$tscb_port" 64 --resume
run nginx-resume64 nginx "$nginx_port" 64 --resume
peak_rss=$(awk '/VmHWM/{print $2}' "/proc/$tscb_pid/status")

# --- pgbench: the database alone, a callback-sized row per transaction, and 32
psql "$PG_CONN" -qc "CREATE DATABASE pgb"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=pgb" -qc \
  "CREATE TABLE pgb_inbox (id bigserial PRIMARY KEY, received_at timestamptz NOT NULL DEFAULT now(),
                           service text NOT NULL, request_id text, body jsonb NOT NULL)"
body=$("$LOAD" --print-body)
printf "INSERT INTO pgb_inbox (service, request_id, body) VALUES ('CarrierService', 'pgb1', '%s');\n" \
  "$body" >"$work/pgb1.sql"
printf "INSERT INTO pgb_inbox (service, request_id, body) SELECT 'CarrierService', 'pgb32', '%s' FROM generate_series(1, 32);\n" \
  "$body" >"$work/pgb32.sql"
pgbench_rows() {  # pgbench_rows FILE ROWS_PER_TX CLIENTS -> rows/s
  local tps
  tps=$("$(pg_bin)/pgbench" -n -h 127.0.0.1 -p "$TSCB_PG_PORT" -U postgres -c "$3" -j 2 -T "$SECS" \
    -f "$1" pgb | awk '/^tps = /{print $3}')
  python3 -c "print(round($tps * $2))"
}
log "pgbench: one row per transaction (64 clients), 32 rows per transaction (16 clients), ${SECS}s each"
pgb1=$(pgbench_rows "$work/pgb1.sql" 1 64)
pgb32=$(pgbench_rows "$work/pgb32.sql" 32 16)
echo "pgbench rows/s: $pgb1 (1 per transaction), $pgb32 (32 per transaction)"

# --- everything else: the whole daemon with the simulator (bench/rules.sh)
stop_pids
pids=()
daemon_summary="$work/daemon.json"
if [ "${BENCH_DAEMON:-1}" = 1 ]; then
  BENCH_SUMMARY="$daemon_summary" BENCH_RATE=${BENCH_E2E_RATE:-2000} BENCH_SECONDS=${BENCH_E2E_SECONDS:-20} \
    "$TSCB_ROOT/bench/rules.sh"
fi

log "Results ($(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), ${SECS}s per scenario)"
python3 - "$results" "$idle_rss" "$peak_rss" "$pgb1" "$pgb32" "$daemon_summary" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {r["name"]: r for r in rows}
print(f'{"scenario":<14}{"conns":>6} {"mode":<17}{"callbacks/s":>12}{"p50 ms":>9}{"p99 ms":>9}{"p99.9 ms":>10}{"errors":>8}  rows check')
bad = False
for r in rows:
    check = "-"
    if r["rows"] is not None:
        ok = r["rows"] == r["ok"]
        bad |= not ok
        check = f'{r["rows"]} rows = {r["ok"]} 2xx' if ok else f'MISMATCH: {r["rows"]} rows, {r["ok"]} 2xx'
    print(f'{r["name"]:<14}{r["conns"]:>6} {r["mode"]:<17}{r["rps"]:>12.0f}{r["p50_ms"]:>9.2f}{r["p99_ms"]:>9.2f}{r["p999_ms"]:>10.2f}{r["errors"]+r["non_2xx"]:>8}  {check}')
def med(prefix, key="rps"):
    vals = sorted(r[key] for r in rows if r["name"].startswith(prefix + "-r"))
    return vals[len(vals) // 2]
t64, n64, g64 = med("tscb-ka64"), med("node1w-ka64"), med("nginx-ka64")
node2 = med("node2w-ka64")
node_best, node_name = (n64, "1 worker, median") if n64 >= node2 else (node2, "2 workers, median")
print()
print(f'medians of {len([r for r in rows if r["name"].startswith("tscb-ka64-r")])} alternated rounds at 64 keep-alive: '
      f'ts-callbackd {t64:.0f}/s, Node.js {n64:.0f}/s (1 worker) and {node2:.0f}/s (2 workers), nginx {g64:.0f}/s')
print(f'ts-callbackd / Node.js ({node_name}), 64 keep-alive: {t64/node_best:.2f}x   (target >= 3x)')
print(f'ts-callbackd / nginx, 64 keep-alive:  {t64/g64:.2f}')
print(f'ts-callbackd / nginx, 256 keep-alive: {by["tscb-ka256"]["rps"]/by["nginx-ka256"]["rps"]:.2f}')
print(f'ts-callbackd / nginx, new TLS connection per callback: {by["tscb-new64"]["rps"]/by["nginx-new64"]["rps"]:.2f}')
print(f'ts-callbackd p99 at 64 keep-alive (median of rounds): {med("tscb-ka64", "p99_ms"):.2f} ms   (target < 15 ms)')
print(f'ts-callbackd RSS: idle {int(sys.argv[2])/1024:.1f} MiB, peak {int(sys.argv[3])/1024:.1f} MiB')
pgb1, pgb32 = int(sys.argv[4]), int(sys.argv[5])
print(f'pgbench rows/s: {pgb1} (one per transaction, 64 clients), {pgb32} (32 per transaction, 16 clients); '
      f'ts-callbackd stores {t64/pgb1:.2f}x and {t64/pgb32:.2f}x of them')

d = json.load(open(sys.argv[6])) if os.path.exists(sys.argv[6]) else None
def row(target, figure, ok):
    print(f'| {target} | {figure} | {"met" if ok else "MISSED"} |')
print()
print('| target | figure | verdict |')
print('|---|---|---|')
k256 = by["tscb-ka256"]
new, nnew = by["tscb-new64"], by["nginx-new64"]
res, nres = by["tscb-resume64"], by["nginx-resume64"]
row('1. 64 keep-alive: >= 4x Node.js', f'{t64/node_best:.2f}x ({t64:.0f}/s vs {node_best:.0f}/s)', t64 >= 4 * node_best)
row('1. 64 keep-alive: >= 50 % of nginx', f'{t64/g64*100:.0f} % ({g64:.0f}/s)', t64 >= 0.5 * g64)
row('1. 64 keep-alive: p99 < 10 ms', f'{med("tscb-ka64", "p99_ms"):.1f} ms', med("tscb-ka64", "p99_ms") < 10)
row('1. 256 keep-alive: p99 < 30 ms', f'{k256["p99_ms"]:.1f} ms', k256["p99_ms"] < 30)
row('1. zero lost or duplicated rows', 'rows = 2xx in every scenario' if not bad else 'MISMATCH (above)', not bad)
row('2. new TLS connection each: >= 70 % of nginx', f'{new["rps"]/nnew["rps"]*100:.0f} % ({new["rps"]:.0f}/s vs {nnew["rps"]:.0f}/s)', new["rps"] >= 0.7 * nnew["rps"])
row('2. resumed TLS session each: >= 70 % of nginx', f'{res["rps"]/nres["rps"]*100:.0f} % ({res["rps"]:.0f}/s vs {nres["rps"]:.0f}/s), {res["resumed"]} of {res["connects"]} resumed', res["rps"] >= 0.7 * nres["rps"] and res["resumed"] > 0)
if d:
    row('3. backlog drained <= 60 s after 60 s of full-speed ingest', f'{d["keepup_drain_s"]} s (ingest {d["keepup_rps"]:.0f}/s, backlog {d["keepup_backlog"]})', d["keepup_drain_s"] is not None and d["keepup_drain_s"] <= 60)
    row('3. classify + correlate + 100 rules + outbox >= ingest rate', f'{d["process_rules"]:.0f} events/s vs {t64:.0f} callbacks/s', d["process_rules"] >= t64)
    # Steady: the callbacks sent after the load's first seconds (the daemon
    # had just started); the whole run's figures beside them.
    row(f'4. {d["e2e_rate"]}/s steady: callback -> follow-up p99 < 50 ms', f'p99 {d["e2e_steady_p99_ms"]:.0f} ms, p50 {d["e2e_steady_p50_ms"]:.0f} ms after the first {d["e2e_warm_up_ms"] / 1000:g} s; whole run p99 {d["e2e_p99_ms"]:.0f} ms, p50 {d["e2e_p50_ms"]:.0f} ms (sent {d["e2e_sent_per_s"]:.0f}/s)', d["e2e_steady_p99_ms"] < 50)
    row('5. resident memory idle < 64 MiB', f'{d["idle_rss_kib"]/1024:.1f} MiB', d["idle_rss_kib"] < 64 * 1024)
    row(f'5. with {d["held"]} idle TLS connections < 256 MiB', f'{d["held_rss_kib"]/1024:.1f} MiB', 0 < d["held_rss_kib"] < 256 * 1024)
    row('5. flat within 5 % over the soak', f'{d["soak_flat"]*100:.1f} % ({d["soak_rss_first_kib"]/1024:.1f} -> {d["soak_rss_last_kib"]/1024:.1f} MiB at {d["soak_rate"]:.0f}/s)', d["soak_flat"] <= 0.05)
    row('6. start-up to READY < 200 ms', f'{d["startup_ms"]:.0f} ms', d["startup_ms"] < 200)
    bad |= not d["counts_ok"]
sys.exit(1 if bad else 0)
PY
