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
  std::string body;  // JSON text
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
