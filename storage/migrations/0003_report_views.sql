-- Reporting views: a stable contract for dashboards and `ts-callbackd
-- report` (README "Reporting views" documents every column). Times are
-- timestamptz; days are UTC.

CREATE SCHEMA IF NOT EXISTS report;

-- Callbacks received per UTC day and service, and what became of them.
CREATE VIEW report.callbacks_daily AS
SELECT (received_at AT TIME ZONE 'UTC')::date AS day,
       service,
       count(*)                                 AS callbacks,
       sum(deliveries)                          AS deliveries,
       count(*) FILTER (WHERE deliveries > 1)   AS resent,
       count(*) FILTER (WHERE state = 'processed') AS processed,
       count(*) FILTER (WHERE state = 'failed')    AS failed,
       count(*) FILTER (WHERE state = 'pending')   AS pending
FROM tscb.inbox
GROUP BY 1, 2;

-- Every pending request that ended, with the time from submission to its
-- last callback (or its reconciliation).
CREATE VIEW report.provisioning_latency AS
SELECT request_id, account, action, origin,
       jsonb_array_length(devices) AS devices,
       state, submitted_at, completed_at,
       extract(epoch FROM completed_at - submitted_at)::double precision AS latency_seconds,
       received_callbacks, expected_callbacks
FROM tscb.pending_requests
WHERE completed_at IS NOT NULL;

-- What happened to each device, by any of its identifiers.
CREATE VIEW report.device_timeline AS
SELECT d.kind AS device_kind, d.id AS device_id, e.received_at AS at, e.id AS event_id,
       e.service, e.kind, e.status, e.request_id, e.account
FROM tscb.event_devices d
JOIN tscb.events e ON e.id = d.event_id AND e.received_at = d.received_at;

-- Follow-up actions that failed. The outbox arrives with the rules stage;
-- until then the view exists with its columns and no rows.
CREATE VIEW report.failed_actions AS
SELECT NULL::bigint AS action_id, NULL::timestamptz AS at, NULL::text AS rule,
       NULL::text AS action, NULL::text AS request_id, NULL::integer AS attempts,
       NULL::text AS last_error
WHERE false;

-- Device SMS (mo) and delivery notices for SMS sent to devices (mt).
CREATE VIEW report.sms AS
SELECT e.received_at AS at,
       CASE WHEN e.kind = 'sms.mo' THEN 'mo' ELSE 'mt' END AS direction,
       e.service, e.device_kind, e.device_id, e.request_id, e.status,
       e.payload->>'message' AS message,
       e.payload->>'timestamp' AS device_time
FROM tscb.events e
WHERE e.kind IN ('sms.mo', 'sms.delivery');

CREATE VIEW report.usage_alerts AS
SELECT e.received_at AS at, e.account, e.device_kind, e.device_id, e.request_id,
       coalesce(e.payload->>'triggerName', e.payload->>'triggerId') AS trigger,
       e.payload AS details
FROM tscb.events e
WHERE e.kind = 'usage.alert';

-- Requests still pending after their deadline (the reconciler's queue).
CREATE VIEW report.pending_overdue AS
SELECT request_id, account, action, origin, submitted_at, deadline_at,
       extract(epoch FROM now() - deadline_at)::double precision AS overdue_seconds,
       received_callbacks, expected_callbacks, status_checked_at, status_answer
FROM tscb.pending_requests
WHERE state = 'pending' AND deadline_at < now();
