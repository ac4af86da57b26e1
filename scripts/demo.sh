#!/usr/bin/env bash
# The main job on a fresh machine: install, build, start a local PostgreSQL
# and ts-callbackd (self-signed certificate, local config), post the spec's
# example callbacks over HTTPS (plus a resend and a forged one), and show
# what was stored. Everything it starts is stopped at the end, by PID,
# unless --keep is given.
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
cleanup() {
  if $keep; then return; fi
  [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null || true
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
  DiagnosticsService ExternalProvisioningChanges PromoChanges ResumeTrackingNotification)
{
  echo 'account: "0000123456-00001"'
  echo "database: { host: 127.0.0.1, port: $TSCB_PG_PORT, name: tscb, user: postgres }"
  echo "listener:"
  echo "  address: 127.0.0.1"
  echo "  port: 0"
  echo "  tls: { certificate: tls/cert.pem, private_key: tls/key.pem }"
  echo "  allow_from: [127.0.0.1/32]"
  echo "services:"
  for s in "${services[@]}"; do
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/secrets/$s"
    echo "  $s: { username: demo-$s, password: { file: secrets/$s } }"
  done
  echo "admin: { address: 127.0.0.1, port: 0 }"
} >"$work/config.yaml"
"$TSCB_BUILD/daemon/ts-callbackd" check-config --config "$work/config.yaml"

log "Starting ts-callbackd"
"$TSCB_BUILD/daemon/ts-callbackd" run --config "$work/config.yaml" >"$work/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do grep -q ' ready' "$work/daemon.log" && break; sleep 0.1; done
grep -q ' ready' "$work/daemon.log" || { cat "$work/daemon.log"; exit 1; }
port=$(grep -o 'callback listener bound on [^ ]*' "$work/daemon.log" | sed 's/.*://')
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

log "Posting the example callbacks of spec section 4.3 as ThingSpace would"
for f in "$TSCB_ROOT"/tests/data/callbacks/*.json; do
  name=$(basename "$f" .json)
  service=${name%%__*}
  printf '  %-50s -> %s %s\n' "$name" "$(post "$service" "$f")" "$(cat "$work/reply.json")"
done

log "ThingSpace resends one (callbackCount 2): acknowledged, not stored twice"
python3 -c "import json,sys; b=json.load(open(sys.argv[1])); b['callbackCount']=2; print(json.dumps(b))" \
  "$TSCB_ROOT/tests/data/callbacks/CarrierService__activate_success.json" >"$work/resend.json"
printf '  resend                                             -> %s %s\n' \
  "$(post CarrierService "$work/resend.json")" "$(cat "$work/reply.json")"

log "A forged callback with the wrong password: refused, nothing stored"
printf '  forged                                             -> %s %s\n' \
  "$(post CarrierService "$work/resend.json" not-the-password)" "$(cat "$work/reply.json")"

log "What the inbox holds (credentials removed before storing)"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -P pager=off -c \
  "SELECT id, service, request_id, device_kind || ':' || device_id AS device, attempt, deliveries,
          left(body::text, 60) AS body
   FROM tscb.inbox ORDER BY id"
psql "host=127.0.0.1 port=$TSCB_PG_PORT user=postgres dbname=tscb" -P pager=off -tAc \
  "SELECT 'rows: ' || count(*) || ', rows holding a password: ' ||
          count(*) FILTER (WHERE body ? 'password') FROM tscb.inbox"

log "Readiness and a few metrics"
curl -s "http://127.0.0.1:$admin/readyz"; echo
curl -s "http://127.0.0.1:$admin/metrics" | grep -E '^tscb_(callbacks_total|inbox_batches_total)' | grep -v ' 0$'

if $keep; then
  log "Left running (--keep): daemon PID $daemon_pid, PostgreSQL in $work/pg, config $work/config.yaml"
  echo "stop with: kill $daemon_pid; runuser -u postgres -- $(pg_bin)/pg_ctl -D $work/pg/data stop"
fi
