-- Retention: monthly partitions of inbox, events and event_devices that end
-- before the first day of the month `keep_months` ago are dropped, with the
-- dedup keys and finished pending requests of that time. Returns one line
-- per action; with dry_run it only says what it would do.
CREATE FUNCTION tscb.apply_retention(keep_months integer, dry_run boolean)
RETURNS SETOF text LANGUAGE plpgsql AS $fn$
DECLARE
    cutoff_utc timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
                            - make_interval(months => keep_months);
    cutoff  timestamptz := cutoff_utc AT TIME ZONE 'UTC';
    part    record;
    n       bigint;
BEGIN
    FOR part IN
        SELECT c.relname AS name, p.relname AS parent,
               to_date(substring(c.relname from '(\d{4}_\d{2})$'), 'YYYY_MM')::timestamp
                   AS month_start
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace ns ON ns.oid = p.relnamespace
        WHERE ns.nspname = 'tscb' AND p.relname IN ('inbox', 'events', 'event_devices')
          AND c.relname ~ '_\d{4}_\d{2}$'
        ORDER BY 3, 1
    LOOP
        CONTINUE WHEN part.month_start + interval '1 month' > cutoff_utc;
        IF NOT dry_run THEN
            EXECUTE format('DROP TABLE tscb.%I', part.name);
        END IF;
        RETURN NEXT (CASE WHEN dry_run THEN 'would drop ' ELSE 'dropped ' END) || 'tscb.' || part.name;
    END LOOP;
    IF dry_run THEN
        SELECT count(*) INTO n FROM tscb.inbox_keys WHERE received_at < cutoff;
        RETURN NEXT 'would delete ' || n || ' dedup key(s) older than ' || cutoff;
        SELECT count(*) INTO n FROM tscb.pending_requests WHERE completed_at < cutoff;
        RETURN NEXT 'would delete ' || n || ' finished pending request(s) older than ' || cutoff;
    ELSE
        DELETE FROM tscb.inbox_keys WHERE received_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN NEXT 'deleted ' || n || ' dedup key(s) older than ' || cutoff;
        DELETE FROM tscb.pending_requests WHERE completed_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN NEXT 'deleted ' || n || ' finished pending request(s) older than ' || cutoff;
        -- Rows that landed in a default partition.
        DELETE FROM tscb.event_devices_default WHERE received_at < cutoff;
        DELETE FROM tscb.events_default WHERE received_at < cutoff;
        DELETE FROM tscb.inbox_default WHERE received_at < cutoff;
    END IF;
END
$fn$;
