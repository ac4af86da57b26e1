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
#     stored once and every follow-up sent once.
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
install_deps
build Release

work=$(mktemp -d /tmp/tscb-rules-bench.XXXXXX)
pids=()
cleanup() {
  stop_pids
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

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
"$TSCB_BUILD/tests/tscb-sim" --cert "$work/tls/cert.pem" --key "$work/tls/key.pem" \
  --ca "$work/tls/ca.pem" --app-key bench-app-key --app-secret bench-app-secret \
  --uws-user bench --uws-password bench-uws >"$work/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q 'simulator bound on' "$work/sim.log" && break; sleep 0.1; done
sim="https://localhost:$(grep -o 'simulator bound on [^ ]*' "$work/sim.log" | sed 's/.*://')"
simctl() {
  curl -s --max-time 600 --cacert "$work/tls/ca.pem" -H 'Content-Type: application/json' \
    --data-binary "$2" "$sim$1"
}
port=$(thingspace_port)
cat >"$work/config.yaml" <<CONF
account: "0000123456-00001"
log: { level: ${BENCH_LOG_LEVEL:-info} }
database: { host: 127.0.0.1, port: $TSCB_PG_PORT, name: tscb, user: postgres }
listener:
  address: 127.0.0.1
  port: $port
  tls: { certificate: tls/cert.pem, private_key: tls/key.pem }
  allow_from: [127.0.0.1/32]
services:
  CarrierService: { username: bench, password: { file: secrets/carrier } }
admin: { address: 127.0.0.1, port: 0 }
thingspace:
  oauth_url: $sim/api/ts/v1/oauth2/token
  m2m_url: $sim/api/m2m/v1
  ca_file: tls/ca.pem
  app_key: { file: secrets/app-key }
  app_secret: { file: secrets/app-secret }
  username: bench
  password: { file: secrets/uws }
  # ThingSpace's real limits are far lower; here the daemon's own path is measured.
  default_limit: { rate: 10000, burst: 10000, concurrency: ${BENCH_ACTION_CONCURRENCY:-64} }
registration:
  public_url: https://localhost:$port/callbacks
rules: { file: rules100-sync.yaml }
actions: { concurrency: ${BENCH_ACTION_CONCURRENCY:-64} }
CONF
"$TSCB_BUILD/daemon/ts-callbackd" run --allow-root --config "$work/config.yaml" >"$work/daemon.log" 2>&1 &
pids+=($!)
registered() {
  curl -s --cacert "$work/tls/ca.pem" "$sim/_sim/registrations" | grep -q CarrierService
}
for _ in $(seq 150); do registered && break; sleep 0.1; done
registered || { cat "$work/daemon.log"; exit 1; }
count=$((RATE * SECS))
log "steady load: $count CarrierService activations at $RATE/s, each followed by devices.list"
simctl /_sim/load "{\"account\": \"0000123456-00001\", \"service\": \"CarrierService\", \"count\": $count,
  \"rate\": $RATE, \"concurrency\": 32, \"follow_up\": \"/devices/actions/list\",
  \"follow_up_wait_ms\": 30000}" | tee "$work/latency.json"
echo
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

python3 - "$work/process.jsonl" "$work/latency.json" "$count" "$stored" "$actions" "$succeeded" \
  "$RATE" "$ROWS" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
lat = json.load(open(sys.argv[2]))
count, stored, actions, succeeded, rate, rows = map(int, sys.argv[3:9])
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
print(f"| rows stored / actions planned / succeeded | {stored:,} / {actions:,} / {succeeded:,} (expected {count:,} each) |")
ok = stored == count and actions == count and succeeded == count and lat["follow_ups"] == count
print("counts:", "OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)
PY
