-- Processing: normalised events, the identifiers of every device they name,
-- and the pending asynchronous requests they answer (DESIGN.md section 5).

CREATE SEQUENCE tscb.event_id_seq;

-- One event per inbox row (the unique key makes a replay add nothing), plus
-- events the daemon makes itself (request.timeout, inbox_id NULL).
-- received_at is the inbox row's, so both tables share partition months.
CREATE TABLE tscb.events (
    id            bigint      NOT NULL DEFAULT nextval('tscb.event_id_seq'),
    inbox_id      bigint,
    received_at   timestamptz NOT NULL,
    service       text,
    kind          text        NOT NULL,
    status        text        NOT NULL,
    raw_status    text,
    request_id    text,
    account       text,
    device_id     text,          -- the first identifier of the first device
    device_kind   text,
    device_ids    jsonb       NOT NULL DEFAULT '[]',  -- [[{id, kind}, ...], ...] per device
    error_code    text,
    error_message text,
    payload       jsonb       NOT NULL DEFAULT '{}',
    correlation   text        NOT NULL DEFAULT 'none'
                  CHECK (correlation IN ('none', 'matched', 'unmatched')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, received_at),
    UNIQUE (inbox_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE TABLE tscb.events_default PARTITION OF tscb.events DEFAULT;
CREATE INDEX events_request_id_idx ON tscb.events (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX events_kind_idx ON tscb.events (kind, received_at);

-- Every identifier of every device an event names, kinds lower-cased: one
-- device is found by ICCID, IMEI, MDN or any other alike.
CREATE TABLE tscb.event_devices (
    event_id    bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    device_no   integer     NOT NULL,  -- which device of the event (0 for the first)
    kind        text        NOT NULL,
    id          text        NOT NULL,
    PRIMARY KEY (event_id, received_at, device_no, kind, id)
) PARTITION BY RANGE (received_at);
CREATE TABLE tscb.event_devices_default PARTITION OF tscb.event_devices DEFAULT;
CREATE INDEX event_devices_id_idx ON tscb.event_devices (id, kind);

CREATE TABLE tscb.pending_requests (
    request_id          text        PRIMARY KEY,
    account             text        NOT NULL,
    action              text        NOT NULL,
    nbiot               boolean     NOT NULL DEFAULT false,
    devices             jsonb       NOT NULL,  -- per device: progress, see handlers/correlate.hpp
    origin              text        NOT NULL,  -- 'api', 'cli', or 'action:<id>'
    submitted_at        timestamptz NOT NULL DEFAULT now(),
    deadline_at         timestamptz NOT NULL,
    expected_callbacks  integer     NOT NULL,
    received_callbacks  integer     NOT NULL DEFAULT 0,
    state               text        NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'succeeded', 'failed', 'partial', 'timed_out')),
    completed_at        timestamptz,
    status_checked_at   timestamptz,   -- last request-status poll (reconciler)
    status_answer       text
);
CREATE INDEX pending_requests_deadline_idx ON tscb.pending_requests (deadline_at)
    WHERE state = 'pending';

-- Processors sleep on this channel; every inbox insert statement wakes them,
-- in this daemon and in any other sharing the database.
CREATE FUNCTION tscb.notify_inbox() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM pg_notify('tscb_inbox', '');
    RETURN NULL;
END
$fn$;
CREATE TRIGGER inbox_keys_notify AFTER INSERT ON tscb.inbox_keys
    FOR EACH STATEMENT EXECUTE FUNCTION tscb.notify_inbox();

-- Monthly partitions for every partitioned table, from last month to
-- `months_ahead` ahead. Same contract as before: callers hold the migration
-- advisory lock; returns how many partitions it created.
CREATE OR REPLACE FUNCTION tscb.ensure_inbox_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    parent      text;
    month_start timestamp;
    last_start  timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
                             + make_interval(months => months_ahead);
    part_name   text;
    from_ts     timestamptz;
    to_ts       timestamptz;
    stray       boolean;
    created     integer := 0;
BEGIN
    FOREACH parent IN ARRAY ARRAY['inbox', 'events', 'event_devices'] LOOP
        month_start := date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month';
        WHILE month_start <= last_start LOOP
            part_name := parent || '_' || to_char(month_start, 'YYYY_MM');
            from_ts := month_start AT TIME ZONE 'UTC';
            to_ts := (month_start + interval '1 month') AT TIME ZONE 'UTC';
            IF to_regclass('tscb.' || part_name) IS NULL THEN
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM tscb.%I WHERE received_at >= %L AND received_at < %L)',
                               parent || '_default', from_ts, to_ts) INTO stray;
                IF stray THEN
                    RAISE WARNING 'rows for % are in tscb.%_default; % not created',
                        month_start, parent, part_name;
                ELSE
                    EXECUTE format('CREATE TABLE tscb.%I PARTITION OF tscb.%I FOR VALUES FROM (%L) TO (%L)',
                                   part_name, parent, from_ts, to_ts);
                    created := created + 1;
                END IF;
            END IF;
            month_start := month_start + interval '1 month';
        END LOOP;
    END LOOP;
    RETURN created;
END
$fn$;
