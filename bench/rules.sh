#!/usr/bin/env bash
# Rules benchmark (issue: rules and follow-up actions). Starts its own
# PostgreSQL, on 127.0.0.1 only, and measures:
#  1. events/s through classify + correlate + 100 rules + outbox insert, on a
#     backlog of BENCH_ROWS inbox rows (tscb-process-bench with the rules of
#     bench/make_rules.py), against the same backlog without rules, in
#     alternating rounds (the ratio is the figure; the machine is shared);
#  2. at a steady BENCH_RATE callbacks/s for BENCH_SECONDS, sent by the
#     carrier simulator to the real daemon with the same 100 rules, the time
#     from a callback leaving the simulator to its follow-up request reaching
#     the simulator (one clock), p50/p99/max; and that every callback was
#     stored once and every follow-up sent once;
#  3. the same daemon's start-up to READY (sd_notify) against its migrated
#     database, 5 times;
#  4. its resident memory idle, and with BENCH_IDLE_CONNS (10,000) open idle
#     TLS connections that each sent one callback;
#  5. processing keeping up: tscb-load at full speed for BENCH_KEEPUP_SECONDS
#     (60), then how long the inbox backlog takes to drain (the actions it
#     plans are held by pausing their rule, then cancelled);
#  6. a soak at BENCH_SOAK_RATE (1,000/s) for BENCH_SOAK_SECONDS (600): the
#     resident memory every 5 s, flat within 5 % after the first minute.
# BENCH_SUMMARY=FILE also writes the figures there as JSON (bench/run.sh).
# BENCH_EXTRA_CONFIG='processing: { linger: 0ms }' is appended to the
# daemon's configuration as is (an A/B of a setting).
# Stops everything it started, by PID.
#   BENCH_ROWS=100000 BENCH_ROUNDS=3 BENCH_RATE=1000 BENCH_SECONDS=20 bench/rules.sh
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"
. "$TSCB_ROOT/scripts/pg.sh"
. "$TSCB_ROOT/scripts/certs.sh"

ROWS=${BENCH_ROWS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
RATE=${BENCH_RATE:-1000}
SECS=${BENCH_SECONDS:-20}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
KEEPUP_SECS=${BENCH_KEEPUP_SECONDS:-60}
SOAK_RATE=${BENCH_SOAK_RATE:-1000}
SOAK_SECS=${BENCH_SOAK_SECONDS:-600}
IN_FLIGHT=${BENCH_ACTION_CONCURRENCY:-256}  # actions in flight in phase 2; 64 after
# Phase 2's steady figures leave out the follow-ups of the callbacks sent in
# its first BENCH_WARM_UP_MS (the daemon has just started: its pools fill);
# the whole run's figures are printed too.
WARM_UP_MS=${BENCH_WARM_UP_MS:-2000}
# The idle-connection client holds one descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -gt $((IDLE_CONNS + 100)) ] ||
  { echo "BENCH_IDLE_CONNS=$IDLE_CONNS needs more open files than this shell's limit ($(ulimit -Hn))"; exit 1; }
install_deps
build Release

bench_workdir tscb-rules-bench

pg_start "$work/pg"
psql "$PG_CONN" -qc "CREATE DATABASE pbench" -c "CREATE DATABASE tscb"
python3 "$TSCB_ROOT/bench/make_rules.py" 100 >"$work/rules100.yaml"
python3 "$TSCB_ROOT/bench/make_rules.py" 100 sync >"$work/rules100-sync.yaml"
"$TSCB_BUILD/daemon/ts-callbackd" rules check "$work/rules100.yaml"

# --- 1. processing throughput, with and without rules
pconn="host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=pbench"
: >"$work/process.jsonl"
for round in $(seq "$ROUNDS"); do
  for mode in none rules; do
    log "processing round $round/$ROUNDS, $ROWS rows, rules: $mode"
    args=("$pconn" "$ROWS" 2 500)
    [ "$mode" = rules ] && args+=("$work/rules100.yaml")
    "$TSCB_BUILD/bench/tscb-process-bench" "${args[@]}" | tee -a "$work/process.jsonl"
  done
done

# --- 2. steady rate through the real daemon and the simulator
make_certs "$work/tls"
mkdir -p "$work/secrets"
for s in app-key app-secret uws; do printf 'bench-%s\n' "$s" >"$work/secrets/$s"; done
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/secrets/carrier"
chmod -R go-rwx "$work/secrets"
"$TSCB_BUILD/tests/tscb-sim" --cert "$work/tls/cert.pem" --key "$work/tls/key.pem" \
  --ca "$work/tls/ca.pem" --app-key bench-app-key --app-secret bench-app-secret \
  --uws-user bench --uws-password bench-uws >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'simulator bound on' "$work/sim.log" && break; sleep 0.1; done
sim="https://localhost:$(grep -o 'simulator bound on [^ ]*' "$work/sim.log" | sed 's/.*://')"
simctl() {
  curl -s --max-time $((SOAK_SECS + 600)) --cacert "$work/tls/ca.pem" -H 'Content-Type: application/json' \
    --data-binary "$2" "$sim$1"
}
port=$(thingspace_port)
admin_port=$(free_port)
{
  bench_config_head "$port" "${BENCH_LOG_LEVEL:-info}"
  cat <<CONF
  limits: { max_connections: $((IDLE_CONNS + 2000)) }
services:
  CarrierService: { username: bench, password: { file: secrets/carrier } }
admin: { address: 127.0.0.1, port: $admin_port }
thingspace:
  oauth_url: $sim/api/ts/v1/oauth2/token
  m2m_url: $sim/api/m2m/v1
  ca_file: tls/ca.pem
  app_key: { file: secrets/app-key }
  app_secret: { file: secrets/app-secret }
  username: bench
  password: { file: secrets/uws }
  # ThingSpace's real limits are far lower; here the daemon's own path is measured.
  default_limit: { rate: 10000, burst: 10000, concurrency: $IN_FLIGHT }
registration:
  public_url: https://localhost:$port/callbacks
rules: { file: rules100-sync.yaml }
# Actions in flight: an action is claimed in one round, called, and recorded
# in a later round; with the rounds at 10-20 ms on the saturated 2 cores, 64
# in flight cap the dispatcher near 1,500 actions/s, under the 2,000/s sent.
actions: { concurrency: $IN_FLIGHT }
${BENCH_EXTRA_CONFIG:-}
CONF
} >"$work/config.yaml"
chmod go-rwx "$work/config.yaml"
"$TSCB_BUILD/daemon/ts-callbackd" run --allow-root --config "$work/config.yaml" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")
registered() {
  curl -s --cacert "$work/tls/ca.pem" "$sim/_sim/registrations" | grep -q CarrierService
}
for _ in $(seq 150); do registered && break; sleep 0.1; done
registered || { cat "$work/daemon.log"; exit 1; }
count=$((RATE * SECS))
log "steady load: $count CarrierService activations at $RATE/s, each followed by devices.list"
simctl /_sim/load "{\"account\": \"0000123456-00001\", \"service\": \"CarrierService\", \"count\": $count,
  \"rate\": $RATE, \"concurrency\": 32, \"follow_up\": \"/devices/actions/list\",
  \"follow_up_wait_ms\": 30000, \"warm_up_ms\": $WARM_UP_MS}" | tee "$work/latency.json"
echo
python3 -c 'import json,sys; print("follow-up p99 ms by second of the load:", " ".join(str(x) for x in json.load(open(sys.argv[1])).get("follow_up_p99_ms_by_second", [])))' "$work/latency.json"
q() { psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -tAc "$1"; }
for _ in $(seq 300); do
  [ "$(q "SELECT count(*) FROM tscb.actions WHERE state IN ('queued', 'in_flight')")" = 0 ] && break
  sleep 0.1
done
# Where the time goes (database clock): stored -> processed (events.created_at
# is the processing transaction's start) -> action answered.
q "SELECT 'breakdown p50/p99 ms: stored->processed ' ||
          round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s1)::numeric, 1) || '/' ||
          round(percentile_cont(0.99) WITHIN GROUP (ORDER BY s1)::numeric, 1) ||
          ', processed->answered ' ||
          round(percentile_cont(0.5) WITHIN GROUP (ORDER BY s2)::numeric, 1) || '/' ||
          round(percentile_cont(0.99) WITHIN GROUP (ORDER BY s2)::numeric, 1)
   FROM (SELECT extract(epoch FROM e.created_at - i.received_at) * 1000 AS s1,
                extract(epoch FROM a.completed_at - a.created_at) * 1000 AS s2
         FROM tscb.inbox i JOIN tscb.events e ON e.inbox_id = i.id
         JOIN tscb.actions a ON a.cause_event_id = e.id) t"
cp "$work/daemon.log" /tmp/bench-daemon.log 2>/dev/null || true
stored=$(q "SELECT count(*) FROM tscb.inbox")
succeeded=$(q "SELECT count(*) FROM tscb.actions WHERE state = 'succeeded'")
actions=$(q "SELECT count(*) FROM tscb.actions")
rss() { awk '/VmRSS/{print $2}' "/proc/$daemon_pid/status"; }  # KiB

# --- 3. start-up to READY, against the database migrated by the run above
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
# From here on the production default of 64 actions in flight: with 256 the
# soak's memory rose and fell with the answers held in flight (malloc's
# bytes in use 7-27 MiB at 1,000/s), bounded but not flat.
sed -i "s/concurrency: $IN_FLIGHT }/concurrency: 64 }/" "$work/config.yaml"
log "start-up to READY (sd_notify), 5 times"
python3 - "$TSCB_BUILD/daemon/ts-callbackd" "$work" >"$work/startup.json" <<'PY'
import json, os, socket, statistics, subprocess, sys, time
binary, work = sys.argv[1], sys.argv[2]
path = os.path.join(work, "notify.sock")
times = []
for _ in range(5):
    if os.path.exists(path):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    start = time.monotonic()
    proc = subprocess.Popen([binary, "run", "--allow-root", "--config", "config.yaml"], cwd=work,
                            env=dict(os.environ, NOTIFY_SOCKET=path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while b"READY=1" not in sock.recv(4096):
            pass
        times.append((time.monotonic() - start) * 1000)
    finally:
        proc.terminate()
        proc.wait(30)
        sock.close()
print(json.dumps({"startup_ms": times, "startup_median_ms": statistics.median(times)}))
PY
cat "$work/startup.json"
"$TSCB_BUILD/daemon/ts-callbackd" run --allow-root --config "$work/config.yaml" >>"$work/daemon.log" 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")
for _ in $(seq 100); do [ "$(grep -c ' ready' "$work/daemon.log")" -ge 2 ] && break; sleep 0.1; done
sleep 2
idle_rss=$(rss)

# --- 4. memory with IDLE_CONNS idle TLS connections
LOAD="$TSCB_BUILD/bench/tscb-load"
load_auth=(--ca "$work/tls/ca.pem" --username bench --password "$(cat "$work/secrets/carrier")")
log "memory: $IDLE_CONNS idle TLS connections (each sent one callback)"
"$LOAD" --port "$port" "${load_auth[@]}" --hold --connections "$IDLE_CONNS" --seconds 60 \
  --run-id idle >"$work/hold.json" 2>"$work/hold.log" &
hold_pid=$!
pids+=("$hold_pid")
for _ in $(seq 500); do grep -q holding "$work/hold.log" && break; sleep 0.1; done
sleep 6  # the daemon returns free memory every 5 s
held_rss=$(rss)
grep -q holding "$work/hold.log" || held_rss=0  # not all answered: reported, not measured
wait "$hold_pid" || true
cat "$work/hold.json"

# --- 5. processing keeps up with ingest at full speed
log "keep-up: tscb-load at 64 connections for ${KEEPUP_SECS}s, rule activated-fields paused"
ctl() { "$TSCB_BUILD/daemon/ts-callbackd" "$@" --config "$work/config.yaml" >/dev/null; }
ctl rules pause activated-fields
"$LOAD" --port "$port" "${load_auth[@]}" --connections 64 --seconds "$KEEPUP_SECS" \
  --run-id keepup >"$work/keepup.json"
stopped=$(date +%s.%N)
backlog_at_stop=$(q "SELECT count(*) FROM tscb.inbox WHERE state = 'pending'")
drain_s=null
for _ in $(seq 1200); do
  if [ "$(q "SELECT count(*) FROM tscb.inbox WHERE state = 'pending'")" = 0 ]; then
    drain_s=$(python3 -c "import time; print(round(time.time() - $stopped, 1))")
    break
  fi
  sleep 0.25
done
keepup_rows=$(q "SELECT count(*) FROM tscb.inbox WHERE request_id LIKE 'keepup-%'")
q "UPDATE tscb.actions SET state = 'cancelled', completed_at = now() WHERE state = 'queued'" >/dev/null
ctl rules resume activated-fields
cat "$work/keepup.json"
echo "backlog when the load stopped: $backlog_at_stop; drained after ${drain_s}s"

# --- 6. soak: memory at a steady rate
log "soak: $SOAK_RATE callbacks/s for ${SOAK_SECS}s, resident memory every 5 s"
: >"$work/soak-rss.txt"
# RSS in KiB, and malloc's bytes in use (the daemon's tscb_heap_bytes, sampled every 5 s too)
heap_in_use() { curl -s "http://127.0.0.1:$admin_port/metrics" | awk '/^tscb_heap_bytes\{kind="in_use"\}/{printf "%d", $2}'; }
( while kill -0 "$daemon_pid" 2>/dev/null; do
    echo "$(rss) $(heap_in_use)" >>"$work/soak-rss.txt"; sleep 5
  done ) &
sampler_pid=$!
pids+=("$sampler_pid")
simctl /_sim/load "{\"account\": \"0000123456-00001\", \"service\": \"CarrierService\",
  \"count\": $((SOAK_RATE * SOAK_SECS)), \"rate\": $SOAK_RATE, \"concurrency\": 32}" >"$work/soak.json"
kill "$sampler_pid" 2>/dev/null || true
cat "$work/soak.json"; echo

python3 - "$work/process.jsonl" "$work/latency.json" "$count" "$stored" "$actions" "$succeeded" \
  "$RATE" "$ROWS" "$work" "$idle_rss" "$held_rss" "$IDLE_CONNS" "$backlog_at_stop" "$drain_s" \
  "$keepup_rows" "${BENCH_SUMMARY:-}" "$WARM_UP_MS" <<'PY'
import json, os, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
lat = json.load(open(sys.argv[2]))
count, stored, actions, succeeded, rate, rows = map(int, sys.argv[3:9])
work = sys.argv[9]
idle_rss, held_rss, idle_conns, backlog = map(int, sys.argv[10:14])
drain = json.loads(sys.argv[14])
keepup_rows = int(sys.argv[15])
summary_file = sys.argv[16]
warm_up_ms = int(sys.argv[17])
startup = json.load(open(os.path.join(work, "startup.json")))
hold = json.load(open(os.path.join(work, "hold.json")))
keepup = json.load(open(os.path.join(work, "keepup.json")))
soak = json.load(open(os.path.join(work, "soak.json")))
soak_rows = [l.split() for l in open(os.path.join(work, "soak-rss.txt")) if l.strip()]
soak_rss = [int(r[0]) for r in soak_rows]
soak_heap = [int(r[1]) for r in soak_rows if len(r) > 1]
base = [r["rows_per_s"] for r in runs if r["rules"] == 0]
rules = [r["rows_per_s"] for r in runs if r["rules"] > 0]
planned = [r["actions"] for r in runs if r["rules"] > 0]
mb, mr = statistics.median(base), statistics.median(rules)
print()
print("| measure | figure |")
print("|---|---|")
print(f"| backlog of {rows} rows, classify + correlate, no rules | {mb:,.0f} events/s (runs: {base}) |")
print(f"| same + 100 rules + outbox insert | {mr:,.0f} events/s (runs: {rules}); {planned[0]:,} actions planned per run |")
print(f"| ratio with rules / without | {mr / mb:.2f} |")
print(f"| steady {rate}/s for {count:,} callbacks: sent rate | {lat['per_second']:,.0f}/s, ack p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms |")
print(f"| callback sent -> follow-up request at the simulator | p50 {lat['follow_up_p50_ms']:.1f} ms, p99 {lat['follow_up_p99_ms']:.1f} ms, max {lat['follow_up_max_ms']:.1f} ms ({lat['follow_ups']:,} follow-ups) |")
if "follow_up_steady_p99_ms" in lat:
    print(f"| the same after the first {warm_up_ms / 1000:g} s of the load | p50 {lat['follow_up_steady_p50_ms']:.1f} ms, p99 {lat['follow_up_steady_p99_ms']:.1f} ms ({lat['follow_ups_steady']:,} follow-ups) |")
print(f"| rows stored / actions planned / succeeded | {stored:,} / {actions:,} / {succeeded:,} (expected {count:,} each) |")
print(f"| start-up to READY, migrated database (5 runs) | median {startup['startup_median_ms']:.0f} ms (runs: {', '.join(f'{t:.0f}' for t in startup['startup_ms'])}) |")
print(f"| resident memory idle | {idle_rss / 1024:.1f} MiB |")
print(f"| resident memory, {hold['ok']:,} of {idle_conns:,} idle TLS connections open | "
      + (f"{held_rss / 1024:.1f} MiB ({(held_rss - idle_rss) / max(hold['ok'], 1):.1f} KiB each) |" if held_rss else "not measured: not all connections were answered |"))
print(f"| keep-up: ingest at full speed for {keepup['seconds']:.0f} s | {keepup['rps']:,.0f} callbacks/s; backlog at stop {backlog:,}; drained {drain} s after; rows {keepup_rows:,} = 2xx {keepup['ok']:,} |")
warm = soak_rss[12:] or soak_rss  # after the first minute
flat = (max(warm) - min(warm)) / min(warm) if warm else 0
print(f"| soak: {soak['acked']:,} callbacks at {soak['per_second']:,.0f}/s over {soak['seconds']:.0f} s | resident memory after 1 min {warm[0] / 1024:.1f} MiB, at the end {warm[-1] / 1024:.1f} MiB, range {min(warm) / 1024:.1f}-{max(warm) / 1024:.1f} MiB ({flat * 100:.1f} %) |")
if len(soak_heap) == len(soak_rss):
    wh = soak_heap[12:] or soak_heap
    print(f"| soak: malloc's bytes in use (tscb_heap_bytes) | after 1 min {wh[0] / 2**20:.1f} MiB, at the end {wh[-1] / 2**20:.1f} MiB, range {min(wh) / 2**20:.1f}-{max(wh) / 2**20:.1f} MiB |")
# The series behind the soak's range, one sample a minute (RSS, malloc in use).
print("soak by minute (RSS MiB / malloc in use MiB):", " ".join(
    f"{soak_rss[i] / 1024:.1f}/{soak_heap[i] / 2**20:.1f}" if i < len(soak_heap) else f"{soak_rss[i] / 1024:.1f}"
    for i in range(0, len(soak_rss), 12)))
ok = stored == count and actions == count and succeeded == count and lat["follow_ups"] == count
ok = ok and keepup_rows == keepup["ok"] and soak["acked"] == soak["sent"] and soak["failed"] == 0
print("counts:", "OK" if ok else "MISMATCH")
if summary_file:
    with open(summary_file, "w") as f:
        json.dump({"process_none": mb, "process_rules": mr, "e2e_rate": rate,
                   "e2e_sent_per_s": lat["per_second"], "e2e_p50_ms": lat["follow_up_p50_ms"],
                   "e2e_p99_ms": lat["follow_up_p99_ms"],
                   "e2e_steady_p50_ms": lat.get("follow_up_steady_p50_ms", lat["follow_up_p50_ms"]),
                   "e2e_steady_p99_ms": lat.get("follow_up_steady_p99_ms", lat["follow_up_p99_ms"]),
                   "e2e_warm_up_ms": warm_up_ms, "startup_ms": startup["startup_median_ms"],
                   "idle_rss_kib": idle_rss, "held_rss_kib": held_rss, "held": hold["ok"],
                   "keepup_rps": keepup["rps"], "keepup_backlog": backlog, "keepup_drain_s": drain,
                   "soak_rss_first_kib": warm[0], "soak_rss_last_kib": warm[-1],
                   "soak_flat": flat, "soak_rate": soak["per_second"], "counts_ok": ok}, f)
sys.exit(0 if ok else 1)
PY
