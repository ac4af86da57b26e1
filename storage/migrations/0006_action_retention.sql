-- Retention of the outbox: actions that ended (succeeded, failed, dead,
-- cancelled) before the first day of the month `keep_months` ago are
-- deleted with the rest of that time (tscb.apply_retention). Actions waiting
-- for a person (needs_review) and actions still queued or in flight stay
-- whatever their age. One line of report; with dry_run nothing changes.
CREATE FUNCTION tscb.apply_action_retention(keep_months integer, dry_run boolean)
RETURNS SETOF text LANGUAGE plpgsql AS $fn$
DECLARE
    cutoff timestamptz := (date_trunc('month', now() AT TIME ZONE 'UTC')
                           - make_interval(months => keep_months)) AT TIME ZONE 'UTC';
    n      bigint;
BEGIN
    IF dry_run THEN
        SELECT count(*) INTO n FROM tscb.actions
        WHERE state IN ('succeeded', 'failed', 'dead', 'cancelled') AND completed_at < cutoff;
        RETURN NEXT 'would delete ' || n || ' finished action(s) older than ' || cutoff;
    ELSE
        DELETE FROM tscb.actions
        WHERE state IN ('succeeded', 'failed', 'dead', 'cancelled') AND completed_at < cutoff;
        GET DIAGNOSTICS n = ROW_COUNT;
        RETURN NEXT 'deleted ' || n || ' finished action(s) older than ' || cutoff;
    END IF;
END
$fn$;
