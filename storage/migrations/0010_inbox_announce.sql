-- Processors learn of new inbox rows from the inbox writers (issue:
-- ingest), no longer from a trigger on every insert statement. A NOTIFY
-- takes a database-wide lock from its commit until after the commit's WAL
-- flush, and the trigger ran a PL/pgSQL function, on every batch: about
-- 8 % of the ingest rate at 64 connections (bench/README.md). A writer now
-- notifies with a batch at most every `inbox.notify_interval` (5 ms), and
-- announces what it committed in between at the end of that interval
-- (storage/pg/pg_inbox_store.cpp, daemon/inbox_writer.cpp). The channel,
-- tscb_inbox, is the same, so processors listen as before.
DROP TRIGGER inbox_keys_notify ON tscb.inbox_keys;
DROP FUNCTION tscb.notify_inbox();
