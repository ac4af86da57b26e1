#include "storage/pg/pg_processing_store.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <pqxx/pqxx>
#include <set>
#include <utility>

#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {
namespace {

std::string Quote(const std::string& value) {
  return boost::json::serialize(boost::json::string_view(value));
}

// PostgreSQL array literals, for `= ANY($1::bigint[])` and `$1::text[]`.
std::string BigintArray(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (auto v : values) out.append(out.size() > 1 ? "," : "").append(std::to_string(v));
  out += '}';
  return out;
}

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const auto& v : values) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::string QuoteOrNull(const std::string& value) {
  return value.empty() ? std::string("null") : Quote(value);
}

constexpr const char* kClaimSql = R"sql(
SELECT id, received_at::text, service, body::text, extract(epoch FROM received_at)::float8
FROM tscb.inbox WHERE state = 'pending'
ORDER BY id LIMIT $1
FOR UPDATE SKIP LOCKED
)sql";

// Lists of keys come as an array parameter, matched with `= ANY($1::...[])`,
// never `IN (SELECT jsonb_array_elements(...))`: the planner guesses 100
// rows for a set-returning function and hash-joins them against a
// sequential scan of the whole table (the inbox's month, every action), so
// each batch cost as much as the table was big. With the array's values in
// hand it plans one index probe per key.
constexpr const char* kClaimIdsSql = R"sql(
SELECT id, received_at::text, service, body::text, extract(epoch FROM received_at)::float8
FROM tscb.inbox WHERE id = ANY($1::bigint[]) AND (NOT $2 OR state = 'pending')
ORDER BY id
FOR UPDATE
)sql";

constexpr const char* kLockRequestsSql = R"sql(
SELECT request_id, account, action, nbiot, devices::text, origin, state, expected_callbacks,
       received_callbacks, submitted_at::text, deadline_at::text, coalesce(completed_at::text, '')
FROM tscb.pending_requests
WHERE request_id = ANY($1::text[])
ORDER BY request_id
FOR UPDATE
)sql";

// Processors take these shared, a new request's registration exclusive, so
// that a callback processed while its request is being registered is
// matched by one or the other (two-int advisory keys: class 4242). Both
// take them in byte order of the request ids (the dispatcher registers a
// round's requests sorted), so that neither waits for the other in a cycle.
constexpr const char* kShareRequestLocksSql = R"sql(
SELECT count(pg_advisory_xact_lock_shared(4242, hashtext(x)))
FROM (SELECT unnest($1::text[]) COLLATE "C" AS x ORDER BY 1) s
)sql";

constexpr const char* kInsertRequestSql = R"sql(
INSERT INTO tscb.pending_requests (request_id, account, action, nbiot, devices, origin,
                                   deadline_at, expected_callbacks)
SELECT $1, $2, $3, $4, $5::jsonb, $6, $7::timestamptz, $8
WHERE pg_advisory_xact_lock(4242, hashtext($1)) IS NOT NULL
ON CONFLICT (request_id) DO NOTHING
RETURNING request_id
)sql";

constexpr const char* kEventsOfRequestSql = R"sql(
SELECT id, kind, status, device_ids::text, coalesce(error_code, '')
FROM tscb.events WHERE request_id = $1 AND kind <> 'request.timeout'
ORDER BY id
)sql";

constexpr const char* kRequestJsonSql = R"sql(
SELECT json_build_object('requestId', request_id, 'account', account, 'action', action,
       'nbiot', nbiot, 'devices', devices, 'origin', origin, 'state', state,
       'submittedAt', submitted_at, 'deadlineAt', deadline_at, 'completedAt', completed_at,
       'expectedCallbacks', expected_callbacks, 'receivedCallbacks', received_callbacks)::text
FROM tscb.pending_requests WHERE request_id = $1
)sql";

constexpr const char* kClaimOverdueSql = R"sql(
UPDATE tscb.pending_requests p SET status_checked_at = now()
FROM (SELECT request_id FROM tscb.pending_requests
      WHERE state = 'pending' AND deadline_at <= now()
        AND (status_checked_at IS NULL OR status_checked_at <= now() - make_interval(secs => $2))
      ORDER BY deadline_at LIMIT $1
      FOR UPDATE SKIP LOCKED) due
WHERE p.request_id = due.request_id
RETURNING p.request_id, p.account, p.action, p.nbiot, p.devices::text, p.origin, p.state,
          p.expected_callbacks, p.received_callbacks, p.submitted_at::text, p.deadline_at::text,
          extract(epoch FROM now() - p.deadline_at)::float8
)sql";

constexpr const char* kConcludeRequestSql = R"sql(
UPDATE tscb.pending_requests
SET state = $2, devices = $3::jsonb, status_answer = $4,
    completed_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
WHERE request_id = $1 AND state = 'pending'
)sql";

constexpr const char* kMarkMatchedSql = R"sql(
UPDATE tscb.events SET correlation = 'matched' WHERE request_id = $1 AND correlation = 'unmatched'
)sql";

// Events and their device identifiers in one statement; an inbox row that
// already has its event (a replay) gets nothing new. The answer matches
// inserted events to their input rows with equalities (inbox ids start at
// 1; 0 stands for none), which the planner can hash on both columns; with
// IS NOT DISTINCT FROM it hashed on received_at alone, and the rows that
// shared one (every row of an inbox group commit has its commit's time)
// were compared each with each.
// The device rows need no ON CONFLICT: only events inserted by this
// statement (new ids) get them, and DISTINCT drops an identifier named twice
// for one device. As an arbiter the primary key cost each row a probe before
// its insert and a second WAL record after it (speculative insertion): 500
// events with 1,300 device rows took 11.8 ms instead of 13.7 (auto_explain,
// bench/README.md).
constexpr const char* kInsertEventsSql = R"sql(
WITH input AS (
    SELECT t.ord, (r->>'inbox_id')::bigint AS inbox_id,
           coalesce((r->>'at')::timestamptz, now()) AS received_at,
           r->>'service' AS service, r->>'kind' AS kind, r->>'status' AS status,
           r->>'raw_status' AS raw_status, r->>'request_id' AS request_id,
           r->>'account' AS account, r->'device_ids' AS device_ids,
           r->>'error_code' AS error_code, r->>'error_message' AS error_message,
           r->'payload' AS payload, r->>'correlation' AS correlation
    FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, ord)
), ins AS (
    INSERT INTO tscb.events (inbox_id, received_at, service, kind, status, raw_status, request_id,
                             account, device_id, device_kind, device_ids, error_code,
                             error_message, payload, correlation)
    SELECT inbox_id, received_at, service, kind, status, raw_status, request_id, account,
           device_ids->0->0->>'id', device_ids->0->0->>'kind', device_ids, error_code,
           error_message, payload, correlation
    FROM input ORDER BY ord
    ON CONFLICT (inbox_id, received_at) DO NOTHING
    RETURNING id, inbox_id, received_at, device_ids
), dev AS (
    INSERT INTO tscb.event_devices (event_id, received_at, device_no, kind, id)
    SELECT DISTINCT ins.id, ins.received_at, (d.no - 1)::int, coalesce(x->>'kind', ''), x->>'id'
    FROM ins
    CROSS JOIN LATERAL jsonb_array_elements(ins.device_ids) WITH ORDINALITY AS d(dev, no)
    CROSS JOIN LATERAL jsonb_array_elements(d.dev) AS x
    WHERE x->>'id' IS NOT NULL
)
SELECT i.ord, coalesce(ins.id, 0)
FROM input i LEFT JOIN ins ON coalesce(ins.inbox_id, 0) = coalesce(i.inbox_id, 0)
                           AND ins.received_at = i.received_at
ORDER BY i.ord
)sql";

constexpr const char* kUpdateRequestSql = R"sql(
UPDATE tscb.pending_requests
SET devices = $2::jsonb, state = $3, received_callbacks = $4,
    completed_at = CASE WHEN $3 = 'pending' THEN NULL ELSE coalesce(completed_at, now()) END
WHERE request_id = $1
)sql";

// The bounds on received_at (the batch's earliest and latest) only prune:
// without them each id was looked up in every monthly partition, the empty
// ones months ahead included.
constexpr const char* kMarkProcessedSql = R"sql(
UPDATE tscb.inbox SET state = 'processed', processed_at = now(), error = NULL
WHERE id = ANY($1::bigint[])
  AND received_at >= $2::timestamptz AND received_at <= $3::timestamptz
)sql";

constexpr const char* kMarkFailedSql = R"sql(
UPDATE tscb.inbox SET state = 'failed', processed_at = now(), error = $3
WHERE id = $1 AND received_at = $2::timestamptz
)sql";

// Outbox rows; chain and depth come from the action whose request the
// cause event answered, if any: one primary-key probe per row (a LATERAL
// with LIMIT stays a nested loop; a plain join, prepared while the table
// was small, became a hash join over a scan of the whole primary key).
constexpr const char* kInsertActionsSql = R"sql(
INSERT INTO tscb.actions (idempotency_key, rule, action, cause_event_id, cause_request_id,
                          chain_id, depth, method, target, body, safe, correlate, state,
                          max_attempts, next_attempt_at, last_error, completed_at)
SELECT r->>'key', r->>'rule', r->>'action', (r->>'cause_event_id')::bigint,
       r->>'cause_request_id', coalesce(o.chain_id, (r->>'cause_event_id')::bigint),
       coalesce(o.depth + 1, 1), r->>'method', r->>'target',
       CASE WHEN r ? 'body' THEN r->'body' END, (r->>'safe')::boolean, r->>'correlate',
       CASE WHEN r ? 'error' THEN 'failed' ELSE 'queued' END, (r->>'max_attempts')::int,
       now() + make_interval(secs => (r->>'delay')::float8), r->>'error',
       CASE WHEN r ? 'error' THEN now() END
FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS t(r, ord)
LEFT JOIN LATERAL (SELECT chain_id, depth FROM tscb.actions
                   WHERE id = (r->>'origin_action')::bigint LIMIT 1) o ON true
ORDER BY ord
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
)sql";

#define TSCB_ACTION_COLUMNS \
  "a.id, a.rule, a.action, a.method, a.target, a.body::text, a.safe, a.correlate, a.state,   \
  a.attempts, a.max_attempts, a.created_at::text, a.next_attempt_at::text,                  \
  coalesce(a.completed_at::text, ''), coalesce(a.http_status, 0), coalesce(a.last_error, ''), \
  coalesce(a.request_id, ''), coalesce(a.leased_by, ''), coalesce(a.cause_event_id, 0),      \
  coalesce(a.chain_id, 0), a.depth"

constexpr const char* kClaimActionsSql =
    "UPDATE tscb.actions a SET state = 'in_flight', attempts = a.attempts + 1, "
    "lease_until = now() + make_interval(secs => $2), leased_by = $3 "
    "FROM (SELECT id FROM tscb.actions q WHERE q.state = 'queued' AND q.next_attempt_at <= now() "
    "      AND NOT EXISTS (SELECT 1 FROM tscb.paused p WHERE (p.kind = 'rule' AND p.name = q.rule) "
    "                      OR (p.kind = 'action' AND p.name = q.action)) "
    "      ORDER BY q.next_attempt_at, q.id LIMIT $1 FOR UPDATE SKIP LOCKED) due "
    "WHERE a.id = due.id RETURNING " TSCB_ACTION_COLUMNS;

constexpr const char* kRecoverLeasesSql =
    "UPDATE tscb.actions a SET state = CASE WHEN a.safe THEN 'queued' ELSE 'needs_review' END, "
    "next_attempt_at = now(), lease_until = NULL, "
    "completed_at = CASE WHEN a.safe THEN NULL ELSE now() END, "
    "last_error = CASE WHEN a.safe THEN 'in flight past its lease (daemon stopped mid-call?); "
    "sent again: safe to repeat' ELSE 'in flight past its lease (daemon stopped mid-call?): it "
    "may have reached ThingSpace; not sent again because repeating it is unsafe; check, then "
    "`ts-callbackd actions retry` or `actions cancel`' END "
    "FROM (SELECT id FROM tscb.actions WHERE state = 'in_flight' AND lease_until < now() "
    "      FOR UPDATE SKIP LOCKED) due "
    "WHERE a.id = due.id RETURNING " TSCB_ACTION_COLUMNS;

constexpr const char* kFinishActionsSql = R"sql(
UPDATE tscb.actions a
SET state = r.state, http_status = nullif(r.http_status, 0), last_error = nullif(r.error, ''),
    response = nullif(r.response, ''), request_id = nullif(r.request_id, ''), lease_until = NULL,
    next_attempt_at = CASE WHEN r.state = 'queued' THEN now() + make_interval(secs => r.retry_in)
                           ELSE a.next_attempt_at END,
    completed_at = CASE WHEN r.state = 'queued' THEN NULL ELSE now() END,
    attempts = CASE WHEN r.not_sent THEN greatest(a.attempts - 1, 0) ELSE a.attempts END
FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, owner text, state text, http_status int,
                                         error text, response text, request_id text,
                                         retry_in float8, not_sent boolean)
WHERE a.id = ANY($2::bigint[]) AND a.id = r.id AND a.state = 'in_flight' AND a.leased_by = r.owner
RETURNING a.id
)sql";

// Callbacks of an action's request can be processed before the action's
// answer is recorded (ThingSpace is quick); actions they caused then started
// chains of their own. Recording the requestId links them to this one.
constexpr const char* kLinkChainSql = R"sql(
UPDATE tscb.actions c SET chain_id = a.chain_id, depth = a.depth + 1
FROM jsonb_to_recordset($1::jsonb) AS r(id bigint, request_id text)
JOIN tscb.actions a ON a.id = r.id
WHERE c.cause_request_id = r.request_id AND c.id <> a.id AND c.depth = 1
  AND c.chain_id = c.cause_event_id
)sql";

constexpr const char* kListActionsSql =
    "SELECT " TSCB_ACTION_COLUMNS
    " FROM tscb.actions a "
    "WHERE ($1 = '' OR a.state = $1) AND ($2 = 0 OR a.id = $2) ORDER BY a.id DESC LIMIT $3";

constexpr const char* kRetryActionSql = R"sql(
UPDATE tscb.actions SET state = 'queued', next_attempt_at = now(), completed_at = NULL,
       max_attempts = greatest(max_attempts, attempts + 1),
       last_error = 'retried by an operator; before: ' || coalesce(last_error, state)
WHERE id = $1 AND state IN ('failed', 'dead', 'needs_review', 'cancelled')
RETURNING id
)sql";

constexpr const char* kCancelActionSql = R"sql(
UPDATE tscb.actions SET state = 'cancelled', completed_at = now(),
       last_error = 'cancelled by an operator; before: ' || coalesce(last_error, state)
WHERE id = $1 AND state IN ('queued', 'needs_review', 'failed', 'dead')
RETURNING id
)sql";

// The statements of the processing and dispatch loops. Stores made with
// Planning::kPrepared prepare them once per connection and run them by
// name; see PgProcessingStore::Connection.
constexpr std::pair<const char*, const char*> kPrepared[] = {
    {kClaimSql, "tscb_claim_inbox"},
    {kClaimIdsSql, "tscb_claim_inbox_ids"},
    {kShareRequestLocksSql, "tscb_share_request_locks"},
    {kLockRequestsSql, "tscb_lock_requests"},
    {kInsertEventsSql, "tscb_insert_events"},
    {kUpdateRequestSql, "tscb_update_request"},
    {kInsertActionsSql, "tscb_insert_actions"},
    {kMarkProcessedSql, "tscb_mark_processed"},
    {kClaimActionsSql, "tscb_claim_actions"},
    {kFinishActionsSql, "tscb_finish_actions"},
    {kLinkChainSql, "tscb_link_chain"},
    {kMarkMatchedSql, "tscb_mark_matched"},
    {kInsertRequestSql, "tscb_insert_request"},
};

// The name `sql` is prepared under, or nullptr.
const char* PreparedName(const char* sql) {
  for (const auto& [text, name] : kPrepared)
    if (text == sql) return name;
  return nullptr;
}

// The first 13 columns of kTailEventsSql and kEventsSinceSql: the event itself.
EventRow ReadEvent(const pqxx::row& row) {
  EventRow e;
  e.id = row[0].as<std::int64_t>();
  e.received_at = row[1].as<std::string>();
  e.received_epoch = row[2].as<double>();
  e.service = row[3].as<std::string>();
  e.kind = row[4].as<std::string>();
  e.status = row[5].as<std::string>();
  e.raw_status = row[6].as<std::string>();
  e.request_id = row[7].as<std::string>();
  e.account = row[8].as<std::string>();
  e.device_ids_json = row[9].as<std::string>();
  e.error_code = row[10].as<std::string>();
  e.error_message = row[11].as<std::string>();
  e.payload_json = row[12].as<std::string>();
  return e;
}

// The backlog costs at most $1 pending rows, read in id order through the
// partial index, however large it is; beyond them it is estimated from the
// ids (see OperationalStats). Counting it whole read every pending row's
// heap page each time, through the buffer cache the inbox writers use:
// with processing stopped, 500,000 pending rows took 280 ms every 5 s. It
// runs with bitmap scans and sorts off: a planner that underestimates the
// pending rows (statistics from before a burst) would otherwise read them
// all through a bitmap and sort them. The oldest pending row is the lowest
// id (ids grow with time), so only one row is read for its age.
constexpr const char* kInboxStatsSql = R"sql(
WITH head AS (
    SELECT id FROM tscb.inbox WHERE state = 'pending' ORDER BY id LIMIT $1
), newest AS (
    SELECT id, received_at FROM tscb.inbox ORDER BY id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM head), (SELECT max(id) FROM head), (SELECT id FROM newest),
       coalesce((SELECT extract(epoch FROM now() - received_at)::float8 FROM tscb.inbox
                 WHERE state = 'pending' ORDER BY id LIMIT 1), 0),
       (SELECT count(*) FROM tscb.inbox WHERE state = 'failed'),
       coalesce((SELECT received_at::text FROM newest), '')
)sql";

// $1 after_id (-1: the newest), $2 kind ('' any, 'x.*' prefix), $3 device, $4 limit.
constexpr const char* kTailEventsSql = R"sql(
SELECT * FROM (
  SELECT e.id, e.received_at::text, extract(epoch FROM e.received_at)::float8,
         coalesce(e.service, ''), e.kind, e.status, coalesce(e.raw_status, ''),
         coalesce(e.request_id, ''), coalesce(e.account, ''), e.device_ids::text,
         coalesce(e.error_code, ''), coalesce(e.error_message, ''), e.payload::text
  FROM tscb.events e
  WHERE ($1 < 0 OR e.id > $1)
    AND ($2 = '' OR e.kind = $2
         OR (right($2, 2) = '.*' AND starts_with(e.kind, left($2, -1))))
    AND ($3 = '' OR EXISTS (SELECT 1 FROM tscb.event_devices d
                            WHERE d.event_id = e.id AND d.received_at = e.received_at
                              AND d.id = $3))
  ORDER BY CASE WHEN $1 < 0 THEN -e.id ELSE e.id END
  LIMIT $4
) t ORDER BY 1
)sql";

constexpr const char* kRecentErrorsSql = R"sql(
SELECT at::text, what, state, message FROM (
  (SELECT received_at AS at, 'inbox ' || id || ' (' || service || ')' AS what, state,
          coalesce(error, '') AS message
   FROM tscb.inbox WHERE state = 'failed' ORDER BY id DESC LIMIT $1)
  UNION ALL
  (SELECT coalesce(completed_at, created_at) AS at,
          'action ' || id || ' (' || action || ', rule ' || rule || ')', state,
          coalesce(last_error, '')
   FROM tscb.actions WHERE state IN ('failed', 'dead', 'needs_review') ORDER BY id DESC LIMIT $1)
) recent ORDER BY at DESC LIMIT $1
)sql";

constexpr const char* kEventsSinceSql = R"sql(
SELECT e.id, e.received_at::text, extract(epoch FROM e.received_at)::float8, coalesce(e.service, ''),
       e.kind, e.status, coalesce(e.raw_status, ''), coalesce(e.request_id, ''),
       coalesce(e.account, ''), e.device_ids::text, coalesce(e.error_code, ''),
       coalesce(e.error_message, ''), e.payload::text,
       coalesce((SELECT json_build_object('requestId', p.request_id, 'account', p.account,
                   'action', p.action, 'nbiot', p.nbiot, 'devices', p.devices, 'origin', p.origin,
                   'state', p.state, 'submittedAt', p.submitted_at, 'deadlineAt', p.deadline_at,
                   'completedAt', p.completed_at, 'expectedCallbacks', p.expected_callbacks,
                   'receivedCallbacks', p.received_callbacks)::text
                 FROM tscb.pending_requests p WHERE p.request_id = e.request_id), ''),
       coalesce((SELECT i.body::text FROM tscb.inbox i
                 WHERE i.id = e.inbox_id AND i.received_at = e.received_at), '')
FROM tscb.events e
WHERE e.received_at >= $1::timestamptz
ORDER BY e.received_at, e.id
LIMIT $2
)sql";

OutboxAction ActionFromRow(const pqxx::row& row) {
  OutboxAction a;
  a.id = row[0].as<std::int64_t>();
  a.rule = row[1].as<std::string>();
  a.action = row[2].as<std::string>();
  a.method = row[3].as<std::string>();
  a.target = row[4].as<std::string>();
  if (!row[5].is_null()) a.body_json = row[5].as<std::string>();
  a.safe = row[6].as<bool>();
  a.correlate = row[7].as<std::string>();
  a.state = row[8].as<std::string>();
  a.attempts = row[9].as<int>();
  a.max_attempts = row[10].as<int>();
  a.created_at = row[11].as<std::string>();
  a.next_attempt_at = row[12].as<std::string>();
  a.completed_at = row[13].as<std::string>();
  a.http_status = row[14].as<int>();
  a.last_error = row[15].as<std::string>();
  a.request_id = row[16].as<std::string>();
  a.leased_by = row[17].as<std::string>();
  a.cause_event_id = row[18].as<std::int64_t>();
  a.chain_id = row[19].as<std::int64_t>();
  a.depth = row[20].as<int>();
  return a;
}

std::vector<OutboxAction> Actions(const pqxx::result& result) {
  std::vector<OutboxAction> out;
  for (const auto& row : result) out.push_back(ActionFromRow(row));
  return out;
}

// The first eleven columns of kLockRequestsSql and kClaimOverdueSql.
PendingRequestRecord RequestFromRow(const pqxx::row& row) {
  PendingRequestRecord r;
  r.request_id = row[0].as<std::string>();
  r.account = row[1].as<std::string>();
  r.action = row[2].as<std::string>();
  r.nbiot = row[3].as<bool>();
  r.devices_json = row[4].as<std::string>();
  r.origin = row[5].as<std::string>();
  r.state = row[6].as<std::string>();
  r.expected_callbacks = row[7].as<int>();
  r.received_callbacks = row[8].as<int>();
  r.submitted_at = row[9].as<std::string>();
  r.deadline_at = row[10].as<std::string>();
  return r;
}

class PgBatch final : public ProcessingBatch {
 public:
  PgBatch(pqxx::connection& conn, bool prepared) : tx_(conn), prepared_(prepared) {}

  std::vector<InboxRow> Claim(std::size_t limit) override {
    return Translate("claim inbox rows", [&] {
      return Rows(WithoutBitmapScans([&] { return Run(kClaimSql, static_cast<long>(limit)); }));
    });
  }

  std::vector<InboxRow> ClaimIds(const std::vector<std::int64_t>& ids, bool pending_only) override {
    return Translate("claim inbox rows",
                     [&] { return Rows(Run(kClaimIdsSql, BigintArray(ids), pending_only)); });
  }

  std::map<std::string, PendingRequestRecord> LockRequests(
      const std::vector<std::string>& request_ids) override {
    std::map<std::string, PendingRequestRecord> out;
    if (request_ids.empty()) return out;
    const std::string list = TextArray(request_ids);
    Translate("lock pending requests", [&] {
      Run(kShareRequestLocksSql, list);
      for (const auto& row : Run(kLockRequestsSql, list)) {
        PendingRequestRecord r = RequestFromRow(row);
        r.completed_at = row[11].as<std::string>();
        out.emplace(r.request_id, std::move(r));
      }
    });
    return out;
  }

  std::vector<std::int64_t> InsertEvents(const std::vector<EventRecord>& events) override {
    std::vector<std::int64_t> ids(events.size(), 0);
    if (events.empty()) return ids;
    std::string batch = "[";
    for (const auto& e : events) {
      if (batch.size() > 1) batch += ',';
      batch += "{\"inbox_id\":" + (e.inbox_id ? std::to_string(e.inbox_id) : std::string("null"));
      batch += ",\"at\":" + QuoteOrNull(e.received_at);
      for (auto [name, value] : {std::pair{",\"service\":", &e.service},
                                 {",\"kind\":", &e.kind},
                                 {",\"status\":", &e.status},
                                 {",\"raw_status\":", &e.raw_status},
                                 {",\"request_id\":", &e.request_id},
                                 {",\"account\":", &e.account},
                                 {",\"error_code\":", &e.error_code},
                                 {",\"error_message\":", &e.error_message},
                                 {",\"correlation\":", &e.correlation}}) {
        batch += name;
        batch += QuoteOrNull(*value);
      }
      batch += ",\"device_ids\":" + e.device_ids_json;
      batch += ",\"payload\":" + e.payload_json + "}";
    }
    batch += "]";
    Translate("insert events", [&] {
      for (const auto& row : Run(kInsertEventsSql, batch))
        ids.at(row[0].as<std::size_t>() - 1) = row[1].as<std::int64_t>();
    });
    return ids;
  }

  void UpdateRequest(const PendingRequestRecord& r) override {
    Translate("update pending request", [&] {
      Run(kUpdateRequestSql, r.request_id, r.devices_json, r.state, r.received_callbacks);
    });
  }

  bool InsertRequest(const PendingRequestRecord& r) override {
    return Translate("insert pending request", [&] {
      return !Run(kInsertRequestSql, r.request_id, r.account, r.action, r.nbiot, r.devices_json,
                  r.origin, r.deadline_at, r.expected_callbacks)
                  .empty();
    });
  }

  std::vector<StoredEvent> EventsOfRequest(const std::string& request_id) override {
    std::vector<StoredEvent> out;
    Translate("read events of a request", [&] {
      for (const auto& row : tx_.exec_params(kEventsOfRequestSql, request_id))
        out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(),
                       row[2].as<std::string>(), row[3].as<std::string>(),
                       row[4].as<std::string>()});
    });
    return out;
  }

  void MarkMatched(const std::string& request_id) override {
    Translate("mark events matched", [&] { Run(kMarkMatchedSql, request_id); });
  }

  std::optional<std::string> RequestJson(const std::string& request_id) override {
    return Translate("read pending request", [&]() -> std::optional<std::string> {
      auto rows = tx_.exec_params(kRequestJsonSql, request_id);
      if (rows.empty()) return std::nullopt;
      return rows[0][0].as<std::string>();
    });
  }

  std::vector<std::int64_t> SelectInboxIds(const std::string& state, const std::string& since,
                                           const std::string& until, std::size_t limit) override {
    std::vector<std::int64_t> out;
    Translate("select inbox rows", [&] {
      auto rows = tx_.exec_params(
          "SELECT id FROM tscb.inbox WHERE ($1 = '' OR state = $1) "
          "AND ($2 = '' OR received_at >= $2::timestamptz) "
          "AND ($3 = '' OR received_at < $3::timestamptz) ORDER BY id LIMIT $4",
          state, since, until, static_cast<long>(limit));
      for (const auto& row : rows) out.push_back(row[0].as<std::int64_t>());
    });
    return out;
  }

  std::vector<PendingRequestRecord> ClaimOverdue(std::size_t limit,
                                                 std::chrono::milliseconds recheck_after) override {
    std::vector<PendingRequestRecord> out;
    Translate("claim overdue requests", [&] {
      for (const auto& row : tx_.exec_params(kClaimOverdueSql, static_cast<long>(limit),
                                             recheck_after.count() / 1000.0)) {
        PendingRequestRecord r = RequestFromRow(row);
        r.overdue_seconds = row[11].as<double>();
        out.push_back(std::move(r));
      }
    });
    return out;
  }

  void ConcludeRequest(const PendingRequestRecord& r) override {
    Translate("conclude request", [&] {
      tx_.exec_params(kConcludeRequestSql, r.request_id, r.state, r.devices_json, r.status_answer);
    });
  }

  std::size_t InsertActions(const std::vector<ActionRecord>& actions) override {
    if (actions.empty()) return 0;
    std::string batch = "[";
    for (const auto& a : actions) {
      if (batch.size() > 1) batch += ',';
      batch += "{\"key\":" + Quote(a.idempotency_key) + ",\"rule\":" + Quote(a.rule) +
               ",\"action\":" + Quote(a.action) + ",\"method\":" + Quote(a.method) +
               ",\"target\":" + Quote(a.target) + ",\"safe\":" + (a.safe ? "true" : "false") +
               ",\"correlate\":" + Quote(a.correlate) +
               ",\"max_attempts\":" + std::to_string(a.max_attempts) + ",\"cause_event_id\":" +
               (a.cause_event_id ? std::to_string(a.cause_event_id) : std::string("null")) +
               ",\"cause_request_id\":" + QuoteOrNull(a.cause_request_id) + ",\"origin_action\":" +
               (a.origin_action_id ? std::to_string(a.origin_action_id) : std::string("null")) +
               ",\"delay\":" + std::to_string(a.delay_seconds);
      if (a.body_json) batch += ",\"body\":" + *a.body_json;
      if (!a.error.empty()) batch += ",\"error\":" + Quote(a.error);
      batch += "}";
    }
    batch += "]";
    return Translate("insert actions", [&] { return Run(kInsertActionsSql, batch).size(); });
  }

  std::vector<OutboxAction> ClaimActions(std::size_t limit, std::chrono::milliseconds lease,
                                         const std::string& owner) override {
    return Translate("claim actions", [&] {
      return Actions(WithoutBitmapScans([&] {
        return Run(kClaimActionsSql, static_cast<long>(limit), lease.count() / 1000.0, owner);
      }));
    });
  }

  std::vector<OutboxAction> RecoverLeases() override {
    return Translate("recover action leases", [&] { return Actions(tx_.exec(kRecoverLeasesSql)); });
  }

  std::vector<bool> FinishActions(const std::vector<ActionResult>& results) override {
    std::vector<bool> out(results.size(), false);
    if (results.empty()) return out;
    std::string list = "[";
    for (const auto& r : results) {
      if (list.size() > 1) list += ',';
      list += "{\"id\":" + std::to_string(r.id) + ",\"owner\":" + Quote(r.owner) +
              ",\"state\":" + Quote(r.state) + ",\"http_status\":" + std::to_string(r.http_status) +
              ",\"error\":" + Quote(r.error.substr(0, 2000)) +
              ",\"response\":" + Quote(r.response.substr(0, 64 * 1024)) +
              ",\"request_id\":" + Quote(r.request_id) +
              ",\"retry_in\":" + std::to_string(r.retry_in_seconds) +
              ",\"not_sent\":" + (r.not_sent ? "true" : "false") + "}";
    }
    list += "]";
    Translate("record action results", [&] {
      std::set<std::int64_t> mine;
      std::vector<std::int64_t> ids;
      for (const auto& r : results) ids.push_back(r.id);
      auto finished =
          WithoutBitmapScans([&] { return Run(kFinishActionsSql, list, BigintArray(ids)); });
      for (const auto& row : finished) mine.insert(row[0].as<std::int64_t>());
      std::string links = "[";
      for (std::size_t i = 0; i < results.size(); ++i) {
        out[i] = mine.count(results[i].id) > 0;
        if (out[i] && !results[i].request_id.empty())
          links.append(links.size() > 1 ? "," : "")
              .append("{\"id\":")
              .append(std::to_string(results[i].id))
              .append(",\"request_id\":")
              .append(Quote(results[i].request_id))
              .append("}");
      }
      if (links.size() > 1) Run(kLinkChainSql, links + "]");
    });
    return out;
  }

  std::vector<OutboxAction> ListActions(const std::string& state, std::int64_t id,
                                        std::size_t limit) override {
    return Translate("list actions", [&] {
      return Actions(tx_.exec_params(kListActionsSql, state, id, static_cast<long>(limit)));
    });
  }

  bool RetryAction(std::int64_t id) override {
    return Translate("retry action", [&] { return !tx_.exec_params(kRetryActionSql, id).empty(); });
  }

  bool CancelAction(std::int64_t id) override {
    return Translate("cancel action",
                     [&] { return !tx_.exec_params(kCancelActionSql, id).empty(); });
  }

  void SetPaused(const std::string& kind, const std::string& name, bool paused) override {
    Translate("pause or resume", [&] {
      if (paused)
        tx_.exec_params(
            "INSERT INTO tscb.paused (kind, name) VALUES ($1, $2) ON CONFLICT DO NOTHING", kind,
            name);
      else
        tx_.exec_params("DELETE FROM tscb.paused WHERE kind = $1 AND name = $2", kind, name);
    });
  }

  std::vector<std::pair<std::string, std::string>> Paused() override {
    std::vector<std::pair<std::string, std::string>> out;
    Translate("read paused rules and actions", [&] {
      for (const auto& row : tx_.exec("SELECT kind, name FROM tscb.paused ORDER BY 1, 2"))
        out.emplace_back(row[0].as<std::string>(), row[1].as<std::string>());
    });
    return out;
  }

  std::map<std::string, std::int64_t> ActionCounts() override {
    std::map<std::string, std::int64_t> out;
    Translate("count actions", [&] {
      for (const auto& row : tx_.exec("SELECT state, count(*) FROM tscb.actions GROUP BY 1"))
        out[row[0].as<std::string>()] = row[1].as<std::int64_t>();
    });
    return out;
  }

  OperationalStats Stats(bool by_state) override {
    OperationalStats out;
    Translate("read the daemon's state", [&] {
      tx_.exec("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off");
      auto row = tx_.exec_params1(kInboxStatsSql, kBacklogCountedExactly);
      tx_.exec("RESET enable_bitmapscan; RESET enable_sort");
      out.inbox_pending = row[0].as<std::int64_t>();
      if (out.inbox_pending == kBacklogCountedExactly)
        out.inbox_pending +=
            std::max<std::int64_t>(0, row[2].as<std::int64_t>() - row[1].as<std::int64_t>());
      out.oldest_pending_seconds = row[3].as<double>();
      out.inbox_failed = row[4].as<std::int64_t>();
      out.last_callback_at = row[5].as<std::string>();
      if (!by_state) return;
      for (const auto& r : tx_.exec("SELECT state, count(*) FROM tscb.pending_requests GROUP BY 1"))
        out.requests[r[0].as<std::string>()] = r[1].as<std::int64_t>();
    });
    if (by_state) {
      out.actions = ActionCounts();
      out.by_state = true;
    }
    return out;
  }

  std::vector<EventRow> TailEvents(std::int64_t after_id, const std::string& kind,
                                   const std::string& device, std::size_t limit) override {
    std::vector<EventRow> out;
    Translate("read events", [&] {
      for (const auto& row : tx_.exec_params(kTailEventsSql, static_cast<long long>(after_id), kind,
                                             device, static_cast<long>(limit))) {
        out.push_back(ReadEvent(row));
      }
    });
    return out;
  }

  std::vector<RecentError> RecentErrors(std::size_t limit) override {
    std::vector<RecentError> out;
    Translate("read recent errors", [&] {
      for (const auto& r : tx_.exec_params(kRecentErrorsSql, static_cast<long>(limit)))
        out.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                       r[3].as<std::string>()});
    });
    return out;
  }

  std::vector<EventRow> EventsSince(const std::string& since, std::size_t limit) override {
    std::vector<EventRow> out;
    Translate("read events", [&] {
      for (const auto& row : tx_.exec_params(kEventsSinceSql, since, static_cast<long>(limit))) {
        EventRow e = ReadEvent(row);
        e.request_json = row[13].as<std::string>();
        e.body_json = row[14].as<std::string>();
        out.push_back(std::move(e));
      }
    });
    return out;
  }

  void AsyncCommit() override {
    Translate("relax commit durability", [&] { tx_.exec("SET LOCAL synchronous_commit = off"); });
  }

  void MarkProcessed(const std::vector<InboxRow>& rows) override {
    if (rows.empty()) return;
    std::vector<std::int64_t> ids;
    for (const auto& r : rows) ids.push_back(r.id);
    // received_at is the server's own text of the time (exact); the epoch
    // only orders the rows.
    auto [earliest, latest] = std::minmax_element(
        rows.begin(), rows.end(),
        [](const InboxRow& a, const InboxRow& b) { return a.received_epoch < b.received_epoch; });
    Translate("mark inbox rows processed", [&] {
      Run(kMarkProcessedSql, BigintArray(ids), earliest->received_at, latest->received_at);
    });
  }

  void MarkFailed(const InboxRow& row, const std::string& error) override {
    Translate("mark inbox row failed", [&] {
      tx_.exec_params(kMarkFailedSql, row.id, row.received_at, error.substr(0, 2000));
    });
  }

  void Commit() override {
    Translate("commit processing", [&] { tx_.commit(); });
  }

 private:
  // One statement of kPrepared, by name on a prepared connection.
  template <class... Args>
  pqxx::result Run(const char* sql, Args&&... args) {
    if (const char* name = prepared_ ? PreparedName(sql) : nullptr)
      return tx_.exec_prepared(name, std::forward<Args>(args)...);
    return tx_.exec_params(sql, std::forward<Args>(args)...);
  }

  // Runs one statement without bitmap scans. A queue claim (due rows in
  // order, up to a limit) then walks its partial index in order and stops
  // at the limit, and recording answers finds actions by primary key. With
  // a small row estimate the planner preferred bitmap scans: a claim then
  // visited the index entry of every row processed since the last vacuum
  // (bitmap scans never mark them dead, as index scans do) and sorted the
  // whole backlog, and recording AND-ed the ids with the same churned
  // in_flight index; each grew slower with the traffic. Not for the whole
  // transaction: without statistics (a new table, before autovacuum's first
  // analyze) `id = ANY(...)` then became a sequential scan of the inbox.
  // Prepared connections have bitmap scans off for good (see Connection):
  // no extra round trips there.
  template <class Fn>
  pqxx::result WithoutBitmapScans(Fn statement) {
    if (prepared_) return statement();
    tx_.exec("SET LOCAL enable_bitmapscan = off");
    auto result = statement();
    tx_.exec("SET LOCAL enable_bitmapscan TO DEFAULT");
    return result;
  }

  static std::vector<InboxRow> Rows(const pqxx::result& result) {
    std::vector<InboxRow> out;
    out.reserve(result.size());
    for (const auto& row : result)
      out.push_back({row[0].as<std::int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                     row[3].as<std::string>(), row[4].as<double>()});
    return out;
  }

  pqxx::work tx_;
  bool prepared_;
};

}  // namespace

struct PgProcessingStore::Listener final : pqxx::notification_receiver {
  Listener(pqxx::connection& conn, bool& flag)
      : pqxx::notification_receiver(conn, "tscb_inbox"), flag_(flag) {}
  void operator()(const std::string&, int) override { flag_ = true; }
  bool& flag_;
};

PgProcessingStore::PgProcessingStore(std::string connection_string, Planning planning)
    : connection_string_(std::move(connection_string)), planning_(planning) {}

PgProcessingStore::~PgProcessingStore() {
  listener_.reset();
  conn_.reset();
}

pqxx::connection& PgProcessingStore::Connection() {
  if (!conn_ || !conn_->is_open()) {
    listener_.reset();
    auto conn = Connect(connection_string_);
    if (planning_ == Planning::kPrepared) {
      // Planned at every call, the loops' statements spent as long in the
      // planner as in execution (the inbox, events and event_devices are
      // partitioned), and with batches of a few rows longer. Prepared, each
      // is planned once per connection, as a generic plan. A generic plan
      // made while a table is still small would scan it whole for ever
      // after; with sequential scans off every table these statements read
      // is reached through its index, as their keys want, whatever the
      // statistics said when the plan was made. Bitmap scans are off too,
      // for the claims and the answer recording (see WithoutBitmapScans);
      // with sequential scans off as well, the other statements keep their
      // index scans. Kept only once all is prepared, so that a failure here
      // starts again from a new connection.
      Translate("prepare processing statements", [&] {
        {
          pqxx::nontransaction setup(*conn);
          setup.exec("SET plan_cache_mode = force_generic_plan");
          setup.exec("SET enable_seqscan = off");
          setup.exec("SET enable_bitmapscan = off");
        }
        for (const auto& [sql, name] : kPrepared) conn->prepare(name, sql);
      });
    }
    conn_ = std::move(conn);
  }
  return *conn_;
}

std::unique_ptr<ProcessingBatch> PgProcessingStore::Begin() {
  try {
    return Translate("begin processing", [&] {
      return std::make_unique<PgBatch>(Connection(), planning_ == Planning::kPrepared);
    });
  } catch (const StorageError& e) {
    if (e.ConnectionLost()) {
      listener_.reset();
      conn_.reset();
    }
    throw;
  }
}

bool PgProcessingStore::WaitForInbox(std::chrono::milliseconds timeout) {
  try {
    Translate("wait for inbox rows", [&] {
      // LISTEN only on a connection that waits: libpq keeps every
      // notification a connection receives until it is read, so a store
      // used only for batches (reconciler, dispatcher, stats) would hold one
      // per inbox insert for ever. The first wait after LISTEN answers at
      // once: rows stored before it were not announced to this connection.
      if (!listener_) {
        listener_ = std::make_unique<Listener>(Connection(), notified_);
        notified_ = true;
        return;
      }
      notified_ = false;
      Connection().get_notifs();
      if (!notified_) {
        auto us = timeout.count() * 1000;
        Connection().await_notification(us / 1'000'000, us % 1'000'000);
      }
    });
  } catch (const StorageError& e) {
    if (e.ConnectionLost()) {
      listener_.reset();
      conn_.reset();
    }
    throw;
  }
  return notified_;
}

}  // namespace tscb::storage::pg
