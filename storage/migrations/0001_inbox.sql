-- The inbox: every accepted callback, raw, before it is acknowledged.
-- Partitioned by month on received_at; a row's dedup key lives in
-- inbox_keys, a plain table, because a unique index on a partitioned table
-- must include the partition key and so could not stop a resend that
-- arrives in the next month.

CREATE SEQUENCE tscb.inbox_id_seq;

CREATE TABLE tscb.inbox (
    id           bigint      NOT NULL,
    received_at  timestamptz NOT NULL,
    service      text        NOT NULL,
    source_ip    inet,
    dedup_key    text        NOT NULL,
    request_id   text,
    device_id    text,
    device_kind  text,
    attempt      integer     NOT NULL DEFAULT 1,  -- highest callbackCount seen
    deliveries   integer     NOT NULL DEFAULT 1,  -- times it reached us
    body         jsonb       NOT NULL,            -- username/password removed
    state        text        NOT NULL DEFAULT 'pending'
                             CHECK (state IN ('pending', 'processed', 'failed')),
    processed_at timestamptz,
    error        text,
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);

-- Catches rows for a month whose partition was not created in time.
CREATE TABLE tscb.inbox_default PARTITION OF tscb.inbox DEFAULT;

CREATE INDEX inbox_pending_idx ON tscb.inbox (id) WHERE state = 'pending';
CREATE INDEX inbox_request_id_idx ON tscb.inbox (request_id);

CREATE TABLE tscb.inbox_keys (
    dedup_key   text        PRIMARY KEY,
    inbox_id    bigint      NOT NULL,
    received_at timestamptz NOT NULL
);

-- Creates the monthly partitions from last month to `months_ahead` months
-- ahead (UTC months). Returns how many it created. Callers hold the
-- migration advisory lock, so two daemons never race on CREATE TABLE.
CREATE FUNCTION tscb.ensure_inbox_partitions(months_ahead integer) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
    month_start timestamp := date_trunc('month', now() AT TIME ZONE 'UTC') - interval '1 month';
    last_start  timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
                             + make_interval(months => months_ahead);
    part_name   text;
    created     integer := 0;
BEGIN
    WHILE month_start <= last_start LOOP
        part_name := 'inbox_' || to_char(month_start, 'YYYY_MM');
        IF to_regclass('tscb.' || part_name) IS NULL THEN
            IF EXISTS (SELECT 1 FROM tscb.inbox_default
                       WHERE received_at >= month_start AT TIME ZONE 'UTC'
                         AND received_at < (month_start + interval '1 month') AT TIME ZONE 'UTC') THEN
                RAISE WARNING 'rows for % are in tscb.inbox_default; % not created',
                    month_start, part_name;
            ELSE
                EXECUTE format('CREATE TABLE tscb.%I PARTITION OF tscb.inbox FOR VALUES FROM (%L) TO (%L)',
                               part_name, month_start AT TIME ZONE 'UTC',
                               (month_start + interval '1 month') AT TIME ZONE 'UTC');
                created := created + 1;
            END IF;
        END IF;
        month_start := month_start + interval '1 month';
    END LOOP;
    RETURN created;
END
$fn$;
