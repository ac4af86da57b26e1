-- The outbox (DESIGN.md sections 2, 5 and 6): follow-up actions planned by
-- rules in the transaction that processed their cause event, sent by
-- dispatchers (FOR UPDATE SKIP LOCKED, a lease per claimed row), with an
-- idempotency key that makes a second plan of the same action a no-op.

CREATE TABLE tscb.actions (
    id                bigserial   PRIMARY KEY,
    idempotency_key   text        NOT NULL UNIQUE,  -- rule/index:action/(event:<id> | scope:<once_per>[@window])
    rule              text        NOT NULL,
    action            text        NOT NULL,         -- catalogue name, thingspace.call or http.post
    cause_event_id    bigint,
    cause_request_id  text,                         -- the request the cause event answered
    chain_id          bigint,                       -- the first event of the chain
    depth             integer     NOT NULL DEFAULT 1,  -- 1: caused by a callback; n+1: by the result of a depth-n action
    method            text        NOT NULL,
    target            text        NOT NULL,         -- path under the M2M base, or the URL of http.post
    body              jsonb,                        -- NULL: no body
    safe              boolean     NOT NULL,         -- may be sent again after a crash
    correlate         text        NOT NULL DEFAULT '',  -- pending-request action of a requestId answer
    state             text        NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'in_flight', 'succeeded', 'failed', 'dead',
                                       'needs_review', 'cancelled')),
    attempts          integer     NOT NULL DEFAULT 0,
    max_attempts      integer     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    lease_until       timestamptz,
    leased_by         text,
    completed_at      timestamptz,
    http_status       integer,
    last_error        text,
    response          text,
    request_id        text                          -- what ThingSpace answered
);
CREATE INDEX actions_due_idx ON tscb.actions (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX actions_lease_idx ON tscb.actions (lease_until) WHERE state = 'in_flight';
CREATE INDEX actions_request_idx ON tscb.actions (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX actions_state_idx ON tscb.actions (state, id);

-- Rules and action names an operator paused: their actions are still
-- planned, and wait (queued) until resumed. Shared by every daemon.
CREATE TABLE tscb.paused (
    kind      text        NOT NULL CHECK (kind IN ('rule', 'action')),
    name      text        NOT NULL,
    paused_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, name)
);

-- Follow-up actions that did not succeed (replaces the placeholder of 0003;
-- the first seven columns keep their names and types).
CREATE OR REPLACE VIEW report.failed_actions AS
SELECT a.id AS action_id, coalesce(a.completed_at, a.next_attempt_at) AS at, a.rule,
       a.action, a.request_id, a.attempts, a.last_error,
       a.state, a.http_status, a.cause_event_id, a.chain_id, a.target, a.created_at
FROM tscb.actions a
WHERE a.state IN ('failed', 'dead', 'needs_review');

-- Every chain from its first callback to its last action: one row per
-- action, in order (chain_id, depth, action_id), with the event that caused
-- it and the pending request it started.
CREATE VIEW report.action_chains AS
SELECT a.chain_id, a.depth, a.id AS action_id, a.rule, a.action, a.state,
       a.cause_event_id, e.kind AS cause_kind, e.status AS cause_status,
       e.received_at AS cause_received_at, a.cause_request_id,
       a.created_at, a.completed_at, a.attempts, a.request_id,
       p.state AS request_state, p.completed_at AS request_completed_at, a.last_error
FROM tscb.actions a
LEFT JOIN tscb.events e ON e.id = a.cause_event_id
LEFT JOIN tscb.pending_requests p ON p.request_id = a.request_id;
