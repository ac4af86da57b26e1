-- Fewer, better-aimed indexes on the write path (issue: performance).
--
-- inbox_request_id_idx: nothing reads the inbox by requestId (requests and
-- reports read events, which has its own index), yet every stored callback
-- and every processed one (the state change is not a HOT update) paid an
-- entry in it.
DROP INDEX tscb.inbox_request_id_idx;

-- Dedup keys are hex digests compared for equality only: byte order is
-- enough, and it spares strcoll() on every b-tree step. Rebuilds the key
-- index once.
ALTER TABLE tscb.inbox_keys ALTER COLUMN dedup_key TYPE text COLLATE "C";

-- Recording an action's requestId links the actions its request's callbacks
-- already caused (kLinkChainSql); without this every such round read the
-- whole actions table.
CREATE INDEX actions_cause_request_idx ON tscb.actions (cause_request_id)
    WHERE depth = 1 AND cause_request_id IS NOT NULL;
