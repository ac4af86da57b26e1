#!/usr/bin/env bash
# The main job on a fresh machine: install, build, start a local PostgreSQL,
# the carrier simulator (tests/sim, a fake ThingSpace) and ts-callbackd
# (self-signed certificate, local config, sample rules). The daemon logs in
# to the simulator and registers its callback URLs; then a fleet scenario:
# 50 devices activated (one fails), the welcome-SMS and custom-field rules
# firing for each, device SMS, an NB-IoT device with NIDD, a usage alert
# that suspends a device, a dropped callback recovered through the request
# status endpoint, the spec's example bodies with ThingSpace's resends, a
# forged callback. It ends with `ts-callbackd status` and the report views,
# and checks the final counts (exit 1 if any is off). Everything it starts
# is stopped at the end, by PID, unless --keep is given.
#   scripts/demo.sh [--keep] [--short]   --short: 10 devices (what CI runs)
#   TSCB_DEMO_SKIP_BUILD=1: use the binaries in $TSCB_BUILD as they are (ctest)
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$TSCB_ROOT/scripts/pg.sh"
. "$TSCB_ROOT/scripts/certs.sh"

keep=false
devices_n=50
for arg in "$@"; do
  case $arg in
    --keep) keep=true ;;
    --short) devices_n=10 ;;
    *) echo "usage: scripts/demo.sh [--keep] [--short]" >&2; exit 2 ;;
  esac
done

if [ "${TSCB_DEMO_SKIP_BUILD:-0}" != 1 ]; then
  install_deps
  build RelWithDebInfo
fi

work=$(mktemp -d /tmp/tscb-demo.XXXXXX)
daemon_pid=
sim_pid=
cleanup() {
  if $keep; then return; fi
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
  [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  pg_stop
  rm -rf "$work"
}
trap cleanup EXIT

log "Starting PostgreSQL"
pg_start "$work/pg"
psql "$PG_CONN" -qc "CREATE DATABASE tscb"

log "Writing a config, secrets and a self-signed certificate in $work"
make_certs "$work/tls"
mkdir -p "$work/secrets"
services=(CarrierService NiddService EnhancedConnectivityService SMSDeliveryConfirmation
  DiagnosticsService ExternalProvisioningChanges PromoChanges ResumeTrackingNotification AlertService)
claim_thingspace_port
port=$TSCB_TS_PORT
printf 'demo-app-key\n' >"$work/secrets/app-key"
printf 'demo-app-secret\n' >"$work/secrets/app-secret"
printf 'demo-uws-password\n' >"$work/secrets/uws"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/secrets/api-token"

log "Starting the carrier simulator (a fake ThingSpace on loopback)"
"$TSCB_BUILD/tests/tscb-sim" --cert "$work/tls/cert.pem" --key "$work/tls/key.pem" \
  --ca "$work/tls/ca.pem" --app-key demo-app-key --app-secret demo-app-secret \
  --uws-user demo-uws --uws-password demo-uws-password --retry-interval 1000 >"$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 100); do grep -q 'simulator bound on' "$work/sim.log" && break; sleep 0.1; done
sim_port=$(grep -o 'simulator bound on [^ ]*' "$work/sim.log" | sed 's/.*://')
[ -n "$sim_port" ] || { cat "$work/sim.log"; exit 1; }
sim="https://localhost:$sim_port"
echo "simulator: $sim (OAuth, session, callback registry, the API list, callback delivery)"
simctl() {  # simctl PATH [JSON]: the simulator's control API
  if [ $# -gt 1 ]; then
    curl -s --cacert "$work/tls/ca.pem" -H 'Content-Type: application/json' --data-binary "$2" "$sim$1"
  else
    curl -s --cacert "$work/tls/ca.pem" "$sim$1"
  fi
}

{
  echo 'account: "0000123456-00001"'
  echo "database: { host: 127.0.0.1, port: $TSCB_PG_PORT, name: tscb, user: postgres }"
  echo "listener:"
  echo "  address: 127.0.0.1"
  echo "  port: $port"
  echo "  tls: { certificate: tls/cert.pem, private_key: tls/key.pem }"
  echo "  allow_from: [127.0.0.1/32]"
  echo "services:"
  for s in "${services[@]}"; do
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/secrets/$s"
    echo "  $s: { username: demo-$s, password: { file: secrets/$s } }"
  done
  echo "admin: { address: 127.0.0.1, port: $(free_port), api_token: { file: secrets/api-token } }"
  echo "requests: { reconcile_interval: 1s }"
  echo "spool: { file: state/inbox.spool }"
  echo "thingspace:"
  echo "  oauth_url: $sim/api/ts/v1/oauth2/token"
  echo "  m2m_url: $sim/api/m2m/v1"
  echo "  ca_file: tls/ca.pem"
  echo "  app_key: { file: secrets/app-key }"
  echo "  app_secret: { file: secrets/app-secret }"
  echo "  username: demo-uws"
  echo "  password: { file: secrets/uws }"
  echo "registration:"
  echo "  public_url: https://localhost:$port/callbacks"
  echo "  interval: 15m"
  echo "rules: { file: rules.yaml }"
} >"$work/config.yaml"
# Follow-up actions: a welcome SMS and a custom field for every activated
# device, a suspension when a usage alert arrives.
cat >"$work/rules.yaml" <<'RULES'
rules:
  - name: welcome
    when: { kind: provisioning.activate, status: success }
    do:
      - action: sms.send
        with: { accountName: "{{ account }}", deviceIds: "{{ device_ids }}",
                smsMessage: "welcome {{ primary_device.id }}" }
        once_per: "{{ primary_device.id }}"
      - action: devices.custom_fields
        with:
          accountName: "{{ account }}"
          devices: "{{ devices }}"
          customFieldsToUpdate: [{ key: CustomField1, value: "activated {{ received_at }}" }]
  - name: suspend-on-usage-alert
    when: { kind: usage.alert }
    do:
      - action: devices.suspend
        with: { accountName: "{{ account }}", devices: "{{ devices }}" }
        once_per: { key: "{{ primary_device.id }}", window: 24h }
RULES
chmod -R go-rwx "$work/secrets" "$work/config.yaml"  # the daemon warns about files others can read
"$TSCB_BUILD/daemon/ts-callbackd" rules check "$work/rules.yaml"
"$TSCB_BUILD/daemon/ts-callbackd" check-config --config "$work/config.yaml"

log "Starting ts-callbackd"
"$TSCB_BUILD/daemon/ts-callbackd" run --allow-root --config "$work/config.yaml" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do grep -q ' ready' "$work/daemon.log" && break; sleep 0.1; done
grep -q ' ready' "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }
admin=$(grep -o 'admin listener bound on [^ ]*' "$work/daemon.log" | sed 's/.*://')
echo "callbacks: https://localhost:$port/callbacks/{ServiceName}   admin: http://127.0.0.1:$admin"

post() {  # post SERVICE BODY_FILE [password-override]
  local service=$1 file=$2 password=${3:-$(cat "$work/secrets/$1")}
  python3 - "$file" "demo-$service" "$password" >"$work/body.json" <<'PY'
import json, sys
body = json.load(open(sys.argv[1])); body["username"] = sys.argv[2]; body["password"] = sys.argv[3]
print(json.dumps(body))
PY
  curl -s --cacert "$work/tls/ca.pem" -o "$work/reply.json" -w '%{http_code}' \
    --data-binary @"$work/body.json" "https://localhost:$port/callbacks/$service"
}

sql() { psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -tAc "$1"; }
table() { psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -P pager=off -c "$1"; }
tscb() { "$TSCB_BUILD/daemon/ts-callbackd" "$@" --config "$work/config.yaml"; }

# wait_until WHAT SQL [SECONDS]: until SQL counts 0, showing what is left each second.
wait_until() {
  local what=$1 query=$2 limit=${3:-30} left i
  for i in $(seq $((limit * 10))); do
    left=$(sql "$query")
    [ "$left" = 0 ] && { echo "  $what: done"; return 0; }
    [ $((i % 10)) = 0 ] && echo "  $what: $left left ..."
    sleep 0.1
  done
  echo "  $what: still $left after ${limit} s" >&2
  return 1
}
# The simulator has delivered everything it queued (acked, or dropped on purpose).
deliveries_settled() {
  for _ in $(seq 300); do
    simctl /_sim/deliveries | python3 -c "import json,sys; c=json.load(sys.stdin)['counts']; sys.exit(0 if set(c) <= {'acked', 'dropped'} else 1)" && return 0
    sleep 0.1
  done
  return 1
}
# Everything stored is processed and every action is sent and answered.
settled() {
  deliveries_settled
  wait_until "inbox rows to process" "SELECT count(*) FROM tscb.inbox WHERE state = 'pending'"
  wait_until "actions to send" "SELECT count(*) FROM tscb.actions WHERE state IN ('queued', 'in_flight')"
  deliveries_settled  # the callbacks of those actions
  wait_until "inbox rows to process" "SELECT count(*) FROM tscb.inbox WHERE state = 'pending'"
}

log "Self-registration: the daemon logged in and registered each service's URL"
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$admin/readyz" | grep -q '"state":"unknown"' || break
  sleep 0.1
done
# The log is flushed every second.
for _ in $(seq 30); do grep -q 'registration:' "$work/daemon.log" && break; sleep 0.1; done
grep -E 'thingspace:|registration:' "$work/daemon.log" | sed 's/^/  /' || true
echo "  the simulator's registry now:"
simctl /_sim/registrations | python3 -c "import json,sys; [print('   ', s, '->', u) for a in json.load(sys.stdin).values() for s, u in a.items()]"
echo "  ts-callbackd register --dry-run (nothing to change):"
"$TSCB_BUILD/daemon/ts-callbackd" register --dry-run --config "$work/config.yaml" 2>/dev/null | sed 's/^/    /'

account=0000123456-00001
api() { curl -s -H "Authorization: Bearer $(cat "$work/secrets/api-token")" "$@"; }
# register_request JSON: another system sent a request; the daemon matches its callbacks.
register_request() {
  api -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "$1" \
    "http://127.0.0.1:$admin/v1/requests"
}
trigger() {  # trigger PATH REQUEST_JSON: the simulator runs that API call's callbacks; prints the requestId
  simctl /_sim/trigger "{\"path\": \"$1\", \"request\": $2}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["requestId"])'
}

log "1. Activate $devices_n devices (the last one fails): the welcome-SMS and custom-field rules fire for each activated one"
fleet=$(python3 -c "
import json, sys
n = int(sys.argv[1])
ids = ['891480000008001%05d' % i for i in range(1, n)] + ['89148000000800139999']
print(json.dumps([{'deviceIds': [{'id': i, 'kind': 'iccid'}]} for i in ids]))" "$devices_n")
fleet_request=$(trigger /devices/actions/activate "{\"accountName\": \"$account\", \"servicePlan\": \"M2M5GB\", \"devices\": $fleet}")
echo "  activate request $fleet_request: $devices_n devices; registered with the operator API:" \
  "$(register_request "{\"requestId\": \"$fleet_request\", \"action\": \"activate\", \"devices\": $fleet}")"
settled
echo "  the request: $(sql "SELECT state || ', ' || received_callbacks || ' of ' || expected_callbacks || ' callbacks' FROM tscb.pending_requests WHERE request_id = '$fleet_request'")"
table "SELECT action, state, count(*) FROM tscb.actions GROUP BY 1, 2 ORDER BY 1, 2"

log "2. Devices send SMS (mobile originated), and ThingSpace confirms the welcome SMS"
echo "  $(simctl /_sim/unsolicited "{\"account\": \"$account\", \"service\": \"EnhancedConnectivityService\", \"count\": 3}")"
settled
table "SELECT direction, count(*) FROM report.sms GROUP BY 1 ORDER BY 1"

log "3. An NB-IoT device: activated (NIDD configuration created), a NIDD message to it (queued, then delivered), one from it"
nbiot='[{"deviceIds": [{"id": "990013907835573", "kind": "imei"}]}]'
nbiot_request=$(trigger /devices/actions/activate "{\"accountName\": \"$account\", \"servicePlan\": \"M2M NBIOT\", \"devices\": $nbiot}")
echo "  activate (NB-IoT) $nbiot_request: $(register_request "{\"requestId\": \"$nbiot_request\", \"action\": \"activate\", \"nbiot\": true, \"devices\": $nbiot}")"
nidd_request=$(trigger /devices/nidd/message "{\"accountName\": \"$account\", \"deviceIds\": [{\"id\": \"990013907835573\", \"kind\": \"imei\"}], \"message\": \"SGVsbG8=\"}")
echo "  nidd message $nidd_request: $(register_request "{\"requestId\": \"$nidd_request\", \"action\": \"nidd\", \"nbiot\": true, \"devices\": $nbiot}")"
echo "  $(simctl /_sim/unsolicited "{\"account\": \"$account\", \"service\": \"NiddService\", \"count\": 1}")"
settled
table "SELECT kind, status, count(*) FROM tscb.events WHERE kind LIKE 'nidd.%' GROUP BY 1, 2 ORDER BY 1, 2"

log "4. A usage alert: the suspend-on-usage-alert rule suspends that device"
echo "  $(simctl /_sim/unsolicited "{\"account\": \"$account\", \"service\": \"AlertService\", \"count\": 1}")"
settled
table "SELECT id, action, state, request_id FROM tscb.actions WHERE action = 'devices.suspend'"

log "5. A dropped callback: ThingSpace never delivers it; the reconciler asks the request status endpoint"
simctl /_sim/faults '{"drop_rate": 1.0}' >/dev/null
one='[{"deviceIds": [{"id": "89148000000800177777", "kind": "iccid"}]}]'
dropped_request=$(trigger /devices/actions/restore "{\"accountName\": \"$account\", \"devices\": $one}")
deliveries_settled
simctl /_sim/faults '{"drop_rate": 0}' >/dev/null
echo "  restore $dropped_request (its callback dropped), registered with a 1 s deadline:" \
  "$(register_request "{\"requestId\": \"$dropped_request\", \"action\": \"restore\", \"devices\": $one, \"deadline\": 1}")"
wait_until "the dropped request to be recovered" \
  "SELECT count(*) FROM tscb.pending_requests WHERE request_id = '$dropped_request' AND state = 'pending'"
echo "  $(sql "SELECT 'request ' || request_id || ': ' || state || ' (callbacks received: ' || received_callbacks || ', ' || coalesce(status_answer, '-') || ')' FROM tscb.pending_requests WHERE request_id = '$dropped_request'")"

log "6. The spec's example bodies (section 4.3); half of the acks are \"lost\", so ThingSpace resends"
simctl /_sim/faults '{"duplicate_rate": 0.5}' >/dev/null
for f in "$TSCB_ROOT"/tests/data/callbacks/*.json; do
  name=$(basename "$f" .json)
  simctl /_sim/send "{\"account\": \"$account\", \"service\": \"${name%%__*}\", \"body\": $(cat "$f")}" >/dev/null
done
settled
simctl /_sim/faults '{"duplicate_rate": 0}' >/dev/null
simctl /_sim/deliveries | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('  deliveries:', d['counts'], '(resends of an acked callback:', sum(x['duplicate'] for x in d['deliveries']), ')')"

log "7. A forged callback with the wrong password: refused, nothing stored"
printf '  forged -> %s %s\n' \
  "$(post CarrierService "$TSCB_ROOT/tests/data/callbacks/CarrierService__suspend.json" not-the-password)" \
  "$(cat "$work/reply.json")"

log "ts-callbackd status"
tscb status || true
for view in callbacks_daily provisioning_latency sms usage_alerts action_chains failed_actions; do
  log "ts-callbackd report $view"
  tscb report "$view" | head -n 25
done
log "A few metrics"
curl -s "http://127.0.0.1:$admin/metrics" |
  grep -E '^tscb_(callbacks_total|inbox_backlog|requests_by_state|actions_by_state|registration_state|thingspace_session)' |
  grep -v ' 0$' | sed 's/^/  /'

log "Checking the final counts"
expect() {  # expect WHAT SQL WANTED
  local got
  got=$(sql "$2")
  if [ "$got" = "$3" ]; then
    echo "  ok   $1: $got"
  else
    echo "  FAIL $1: $got (expected $3)"
    failures=$((failures + 1))
  fi
}
failures=0
# Welcome SMS and custom fields: the fleet's activated devices, the NB-IoT
# device, and the device of the spec's activation example (step 6).
ok=$((devices_n - 1 + 2))
expect "fleet activation" "SELECT state || ' ' || received_callbacks FROM tscb.pending_requests WHERE request_id = '$fleet_request'" "partial $devices_n"
expect "welcome SMS sent (one per activated device)" "SELECT count(*) FROM tscb.actions WHERE action = 'sms.send' AND state = 'succeeded'" "$ok"
expect "custom fields set" "SELECT count(*) FROM tscb.actions WHERE action = 'devices.custom_fields' AND state = 'succeeded'" "$ok"
expect "devices suspended after the usage alert" "SELECT count(*) FROM tscb.actions WHERE action = 'devices.suspend' AND state = 'succeeded'" 1
expect "actions failed, dead or waiting for review" "SELECT count(*) FROM tscb.actions WHERE state NOT IN ('succeeded')" 0
expect "NB-IoT activation (result and NIDD configuration)" "SELECT state FROM tscb.pending_requests WHERE request_id = '$nbiot_request'" succeeded
expect "NIDD message" "SELECT state FROM tscb.pending_requests WHERE request_id = '$nidd_request'" succeeded
expect "dropped callback recovered" "SELECT state || ' ' || received_callbacks FROM tscb.pending_requests WHERE request_id = '$dropped_request'" "succeeded 0"
expect "inbox rows not processed" "SELECT count(*) FROM tscb.inbox WHERE state <> 'processed'" 0
expect "callbacks stored twice (resends are one row)" "SELECT count(*) - count(DISTINCT dedup_key) FROM tscb.inbox" 0
expect "inbox rows without exactly one event" "SELECT count(*) FROM tscb.inbox i WHERE (SELECT count(*) FROM tscb.events e WHERE e.inbox_id = i.id) <> 1" 0
expect "rows holding a password" "SELECT count(*) FROM tscb.inbox WHERE body ? 'password'" 0
if [ "$failures" -gt 0 ]; then
  echo "demo: $failures check(s) failed; the end of the daemon's log:" >&2
  tail -n 40 "$work/daemon.log" >&2
  exit 1
fi
echo "demo: all checks passed ($devices_n devices)"

if $keep; then
  log "Left running (--keep): daemon PID $daemon_pid, simulator PID $sim_pid, PostgreSQL in $work/pg, config $work/config.yaml"
  echo "stop with: kill $daemon_pid $sim_pid; runuser -u postgres -- $(pg_bin)/pg_ctl -D $work/pg/data stop"
fi
