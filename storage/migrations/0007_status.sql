-- `ts-callbackd status` and the metrics sampler list the inbox rows that
-- failed processing; few rows ever fail, so a partial index finds them
-- without reading the inbox.
CREATE INDEX inbox_failed_idx ON tscb.inbox (id) WHERE state = 'failed';
