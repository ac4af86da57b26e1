#!/usr/bin/env bash
# The main job on a fresh machine: install, build, start a local PostgreSQL,
# the carrier simulator (tests/sim, a fake ThingSpace) and ts-callbackd
# (self-signed certificate, local config). The daemon logs in to the
# simulator and registers its callback URLs; the simulator then delivers
# callbacks the way ThingSpace does (results of an activation and an SMS,
# unsolicited messages, the spec's example bodies, resends), a forged one is
# posted, and the demo shows what was stored. Everything it starts is stopped
# at the end, by PID, unless --keep is given.
set -euo pipefail
. "$(dirname "$0")/common.sh"
. "$TSCB_ROOT/scripts/pg.sh"
. "$TSCB_ROOT/scripts/certs.sh"

keep=false
[ "${1:-}" = "--keep" ] && keep=true

install_deps
build RelWithDebInfo

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
port=$(thingspace_port)
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
  echo "admin: { address: 127.0.0.1, port: 0, api_token: { file: secrets/api-token } }"
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

until_none() {  # until_none SQL: waits up to 5 s for a count of 0
  for _ in $(seq 50); do
    [ "$(psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -tAc "$1")" = 0 ] && return
    sleep 0.1
  done
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

log "ThingSpace delivers callbacks: an activation (one NB-IoT line, one that fails), an SMS, unsolicited messages"
account=0000123456-00001
devices='[{"deviceIds": [{"id": "990013907835573", "kind": "imei"}]}, {"deviceIds": [{"id": "89148000000800139999", "kind": "iccid"}]}]'
activation=$(simctl /_sim/trigger '{"path": "/devices/actions/activate", "request": {"accountName": "'$account'", "servicePlan": "M2M NBIOT", "devices": '"$devices"'}}')
echo "  activate: $activation"
request_id=$(printf '%s' "$activation" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requestId"])')
# Another system sent that activation: tell the daemon, so its callbacks are matched.
api() { curl -s -H "Authorization: Bearer $(cat "$work/secrets/api-token")" "$@"; }
echo "  registered with the operator API: $(api -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  --data-binary '{"requestId": "'"$request_id"'", "action": "activate", "nbiot": true, "devices": '"$devices"'}' \
  "http://127.0.0.1:$admin/v1/requests")"
echo "  sms:      $(simctl /_sim/trigger '{"path": "/sms", "request": {"accountName": "'$account'", "deviceIds": [{"id": "5555550100", "kind": "mdn"}], "smsMessage": "ping"}}')"
for s in ExternalProvisioningChanges AlertService ResumeTrackingNotification; do
  echo "  $s: $(simctl /_sim/unsolicited '{"account": "'$account'", "service": "'$s'", "count": 1}')"
done

log "The spec's example bodies (section 4.3), delivered by the simulator; half of the acks are \"lost\", so ThingSpace resends"
simctl /_sim/faults '{"duplicate_rate": 0.5}' >/dev/null
for f in "$TSCB_ROOT"/tests/data/callbacks/*.json; do
  name=$(basename "$f" .json)
  simctl /_sim/send "{\"account\": \"$account\", \"service\": \"${name%%__*}\", \"body\": $(cat "$f")}" >/dev/null
done
for _ in $(seq 100); do
  simctl /_sim/deliveries | python3 -c "import json,sys; c=json.load(sys.stdin)['counts']; sys.exit(0 if set(c) <= {'acked'} else 1)" && break
  sleep 0.1
done
simctl /_sim/deliveries | python3 -c "
import json, sys
d = json.load(sys.stdin)
print('  deliveries:', d['counts'], '(resends of an acked callback:', sum(x['duplicate'] for x in d['deliveries']), ')')"

log "A forged callback with the wrong password: refused, nothing stored"
printf '  forged -> %s %s\n' \
  "$(post CarrierService "$TSCB_ROOT/tests/data/callbacks/CarrierService__suspend.json" not-the-password)" \
  "$(cat "$work/reply.json")"

log "What the inbox holds (credentials removed before storing)"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -P pager=off -c \
  "SELECT id, service, request_id, device_kind || ':' || device_id AS device, attempt, deliveries,
          left(body::text, 60) AS body
   FROM tscb.inbox ORDER BY id"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -P pager=off -tAc \
  "SELECT 'rows: ' || count(*) || ', resent ones (deliveries > 1): ' ||
          count(*) FILTER (WHERE deliveries > 1) || ', rows holding a password: ' ||
          count(*) FILTER (WHERE body ? 'password') FROM tscb.inbox"

log "Processing: events by kind, and the activation request (one device failed: partial)"
until_none "SELECT count(*) FROM tscb.inbox WHERE state = 'pending'"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -P pager=off -c \
  "SELECT kind, status, count(*) FROM tscb.events GROUP BY 1, 2 ORDER BY 1, 2"
api "http://127.0.0.1:$admin/v1/requests/$request_id" | python3 -m json.tool | sed 's/^/  /'
echo "  ts-callbackd report callbacks_daily:"
"$TSCB_BUILD/daemon/ts-callbackd" report callbacks_daily --config "$work/config.yaml" | sed 's/^/    /'

log "Follow-up actions the rules fired (sent to the simulator once each, whatever was resent)"
until_none "SELECT count(*) FROM tscb.actions WHERE state IN ('queued', 'in_flight')"
"$TSCB_BUILD/daemon/ts-callbackd" actions list --config "$work/config.yaml" | sed 's/^/  /'
echo "  ts-callbackd report action_chains (each action's request, correlated like any other):"
"$TSCB_BUILD/daemon/ts-callbackd" report action_chains --config "$work/config.yaml" | sed 's/^/    /'

log "Readiness and a few metrics"
curl -s "http://127.0.0.1:$admin/readyz"; echo
curl -s "http://127.0.0.1:$admin/metrics" |
  grep -E '^tscb_(callbacks_total|inbox_batches_total|thingspace_|registration_|events_total|actions_)' | grep -v ' 0$'

if $keep; then
  log "Left running (--keep): daemon PID $daemon_pid, simulator PID $sim_pid, PostgreSQL in $work/pg, config $work/config.yaml"
  echo "stop with: kill $daemon_pid $sim_pid; runuser -u postgres -- $(pg_bin)/pg_ctl -D $work/pg/data stop"
fi
