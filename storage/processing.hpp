#pragma once
// What the processor needs from the database (DESIGN.md sections 2 and 5):
// claim pending inbox rows, write their events, lock and update the pending
// requests they answer, mark the rows processed; all in one transaction per
// batch (ProcessingBatch), so that a crash leaves either everything or
// nothing. Plain records only; storage/pg/ implements it.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tscb::storage {

struct InboxRow {
  std::int64_t id = 0;
  std::string received_at;  // timestamptz as PostgreSQL prints it (round-trips exactly)
  std::string service;
  std::string body;           // JSON text
  double received_epoch = 0;  // received_at in seconds since 1970 (rule windows)
};

struct EventRecord {
  std::int64_t inbox_id = 0;  // 0: an event the daemon made (request.timeout)
  std::string received_at;    // "" = now()
  std::string service, kind, status, raw_status, request_id, account;
  std::string device_ids_json = "[]";  // [[{"id","kind"}, ...], ...] per device
  std::string error_code, error_message;
  std::string payload_json = "{}";
  std::string correlation = "none";  // none, matched, unmatched
};

struct PendingRequestRecord {
  std::string request_id, account, action;
  bool nbiot = false;
  std::string devices_json = "[]";  // per-device progress (handlers/correlate.hpp)
  std::string origin;               // api, cli, action:<id>
  std::string state = "pending";
  int expected_callbacks = 0;
  int received_callbacks = 0;
  std::string submitted_at, deadline_at;  // timestamptz text
  std::string completed_at;               // "" while pending
  double overdue_seconds = 0;             // past deadline_at, when claimed by ClaimOverdue
  std::string status_answer;              // the reconciler's last request-status answer
};

// An event already stored, as correlation needs it.
struct StoredEvent {
  std::int64_t id = 0;
  std::string kind, status, device_ids_json, error_code;
};

// A new outbox row, planned by the rules (handlers/rules.hpp).
struct ActionRecord {
  std::string idempotency_key, rule, action, method, target;
  std::optional<std::string> body_json;  // nullopt: the request has no body
  bool safe = false;
  std::string correlate;
  int max_attempts = 5;
  std::int64_t cause_event_id = 0;
  std::string cause_request_id;
  std::int64_t origin_action_id = 0;  // the action whose request the cause event answered
  double delay_seconds = 0;
  std::string error;  // could not be rendered: stored as failed, never sent
};

// An outbox row as stored.
struct OutboxAction {
  std::int64_t id = 0;
  std::string rule, action, method, target;
  std::optional<std::string> body_json;
  bool safe = false;
  std::string correlate, state;
  int attempts = 0, max_attempts = 0;
  std::string created_at, next_attempt_at, completed_at;  // timestamptz text ("" = none)
  int http_status = 0;
  std::string last_error, request_id, leased_by;
  std::int64_t cause_event_id = 0, chain_id = 0;
  int depth = 1;
};

// What one dispatch of an action came to.
struct ActionResult {
  std::int64_t id = 0;
  std::string owner;  // the lease holder that sent it
  std::string state;  // succeeded, failed, dead, needs_review, or queued (retry later)
  int http_status = 0;
  std::string error, response, request_id;
  double retry_in_seconds = 0;  // queued: when
  // Nothing was sent (refused by this daemon: circuit breaker open, shutting
  // down): the dispatch does not count as one of the action's attempts.
  bool not_sent = false;
};

// A stored event with what rules see of it (rules test --since).
struct EventRow {
  std::int64_t id = 0;
  std::string received_at;
  double received_epoch = 0;
  std::string service, kind, status, raw_status, request_id, account;
  std::string device_ids_json, error_code, error_message, payload_json;
  std::string request_json;  // the pending request it answers, "" if none
  std::string body_json;     // the callback as stored, "" for events the daemon made
};

// How many pending inbox rows OperationalStats counts one by one.
inline constexpr std::int64_t kBacklogCountedExactly = 10'000;

// The daemon's state as the database holds it: for metrics (sampled) and
// `ts-callbackd status`. Every count comes from an index.
struct OperationalStats {
  // Exact up to kBacklogCountedExactly. Beyond, that many plus the ids after
  // the last of them up to the newest row: callbacks get their ids in the
  // order they are stored and are processed in that order, so in a backlog
  // this is the rows behind it, high by any processed out of turn and by
  // ids a resend used up.
  std::int64_t inbox_pending = 0;
  double oldest_pending_seconds = 0;  // age of the oldest pending inbox row; 0 when none
  std::int64_t inbox_failed = 0;
  std::string last_callback_at;  // timestamptz text of the newest inbox row; "" when none
  // Counted only when asked (Stats(true)): each is a scan of its table,
  // which retention lets grow for months.
  bool by_state = false;
  std::map<std::string, std::int64_t> requests;  // pending requests by state
  std::map<std::string, std::int64_t> actions;   // outbox actions by state
};

// A recent problem a person should see: a failed inbox row, or an action
// that ended failed, dead or in review.
struct RecentError {
  std::string at;     // timestamptz text
  std::string what;   // "inbox 12 (CarrierService)", "action 7 (sms.send, rule welcome)"
  std::string state;  // failed, dead, needs_review
  std::string message;
};

// One transaction. Destroying it without Commit() rolls back.
class ProcessingBatch {
 public:
  virtual ~ProcessingBatch() = default;
  // Pending inbox rows in id order, locked; rows another processor holds are skipped.
  virtual std::vector<InboxRow> Claim(std::size_t limit) = 0;
  // Specific rows (replay, one-by-one retries), locked; `pending_only` skips
  // rows no longer pending.
  virtual std::vector<InboxRow> ClaimIds(const std::vector<std::int64_t>& ids,
                                         bool pending_only) = 0;
  // The requests with these ids that exist, locked until commit.
  virtual std::map<std::string, PendingRequestRecord> LockRequests(
      const std::vector<std::string>& request_ids) = 0;
  // For each event: its new id, or 0 when its inbox row already has one (replay).
  virtual std::vector<std::int64_t> InsertEvents(const std::vector<EventRecord>& events) = 0;
  virtual void UpdateRequest(const PendingRequestRecord& request) = 0;
  // A new pending request (false: the id exists). Waits for processors
  // working on events of that id, so none is left unmatched.
  virtual bool InsertRequest(const PendingRequestRecord& request) = 0;
  // Events carrying this request id, oldest first, and marking them matched.
  virtual std::vector<StoredEvent> EventsOfRequest(const std::string& request_id) = 0;
  virtual void MarkMatched(const std::string& request_id) = 0;
  // The request as JSON (requestId, account, action, nbiot, devices, origin,
  // state, submittedAt, deadlineAt, completedAt, expectedCallbacks,
  // receivedCallbacks), or nullopt.
  virtual std::optional<std::string> RequestJson(const std::string& request_id) = 0;
  // Pending requests past their deadline and not checked for `recheck_after`,
  // stamped as checked now (so other daemons skip them), at most `limit`.
  virtual std::vector<PendingRequestRecord> ClaimOverdue(
      std::size_t limit, std::chrono::milliseconds recheck_after) = 0;
  // Records the reconciler's verdict: state (pending keeps it open), answer,
  // device progress.
  virtual void ConcludeRequest(const PendingRequestRecord& request) = 0;
  // Inbox row ids for replay, oldest first: `state` ("" = any), received in
  // [since, until) ("" = open), at most `limit`.
  virtual std::vector<std::int64_t> SelectInboxIds(const std::string& state,
                                                   const std::string& since,
                                                   const std::string& until, std::size_t limit) = 0;
  // The outbox. New rows; one whose idempotency key exists is skipped.
  // Returns how many were inserted.
  virtual std::size_t InsertActions(const std::vector<ActionRecord>& actions) = 0;
  // Due queued actions, not paused, marked in flight for `lease` under `owner`.
  virtual std::vector<OutboxAction> ClaimActions(std::size_t limit, std::chrono::milliseconds lease,
                                                 const std::string& owner) = 0;
  // In-flight actions past their lease (their daemon died mid-call): safe
  // ones queued again, unsafe ones to needs_review. Returns them, changed.
  virtual std::vector<OutboxAction> RecoverLeases() = 0;
  // Records dispatches, in one statement; per result, false when the row is
  // no longer that owner's in-flight row.
  virtual std::vector<bool> FinishActions(const std::vector<ActionResult>& results) = 0;
  bool FinishAction(const ActionResult& result) { return FinishActions({result}).at(0); }
  // Newest first; `state` "" = any; `id` > 0 = that one only.
  virtual std::vector<OutboxAction> ListActions(const std::string& state, std::int64_t id,
                                                std::size_t limit) = 0;
  // Operator controls; false when the row is missing or in a state that does not allow it.
  virtual bool RetryAction(std::int64_t id) = 0;
  virtual bool CancelAction(std::int64_t id) = 0;
  virtual void SetPaused(const std::string& kind, const std::string& name, bool paused) = 0;
  virtual std::vector<std::pair<std::string, std::string>> Paused() = 0;  // (kind, name)
  virtual std::map<std::string, std::int64_t> ActionCounts() = 0;         // by state
  // The inbox's backlog and age; with `by_state`, requests and actions by
  // state too.
  virtual OperationalStats Stats(bool by_state) = 0;
  // `events tail`: events with id > `after_id` in id order (after_id < 0:
  // the newest `limit`, oldest first), of a kind ("" any; "sms.*" a prefix)
  // and naming a device by any identifier ("" any). Only the event's own
  // columns are filled (no request or body).
  virtual std::vector<EventRow> TailEvents(std::int64_t after_id, const std::string& kind,
                                           const std::string& device, std::size_t limit) = 0;
  // The newest `limit` failed inbox rows and failed/dead/needs_review actions.
  virtual std::vector<RecentError> RecentErrors(std::size_t limit) = 0;
  // Stored events received since `since` (timestamptz text), oldest first.
  virtual std::vector<EventRow> EventsSince(const std::string& since, std::size_t limit) = 0;

  // This transaction can be redone if lost (processing is redone from the
  // inbox, an unrecorded dispatch from its lease): its commit does not wait
  // for the WAL flush. A later synchronous commit (an action's claim)
  // flushes it first, so nothing is sent on the strength of a lost commit.
  virtual void AsyncCommit() = 0;

  virtual void MarkProcessed(const std::vector<InboxRow>& rows) = 0;
  virtual void MarkFailed(const InboxRow& row, const std::string& error) = 0;
  virtual void Commit() = 0;
};

class ProcessingStore {
 public:
  virtual ~ProcessingStore() = default;
  virtual std::unique_ptr<ProcessingBatch> Begin() = 0;
  // Sleeps until an inbox insert is notified or `timeout` passes; true if notified.
  virtual bool WaitForInbox(std::chrono::milliseconds timeout) = 0;
};

}  // namespace tscb::storage
