#pragma once
// The processor (DESIGN.md sections 2 and 3): worker threads, each with its
// own database connection, that claim pending inbox rows in batches (FOR
// UPDATE SKIP LOCKED, so several processors, in several daemons, never take
// the same row), turn each into an event, match it to its pending request,
// and mark it processed, all in one transaction per batch. A batch that
// fails is retried row by row, so one bad row is marked failed (with the
// error) and never blocks the others. Workers wake on LISTEN tscb_inbox and
// poll at an interval.
#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "daemon/metrics.hpp"
#include "daemon/rule_book.hpp"
#include "handlers/classify.hpp"
#include "handlers/rules.hpp"
#include "storage/processing.hpp"

namespace tscb::daemon {

struct ProcessorOptions {
  int workers = 1;
  std::size_t batch_max = 500;
  std::chrono::milliseconds poll{1000};
  int action_max_attempts = 5;  // for planned actions that do not set their own
  std::string account;          // for rules, when a callback names none
  // The wait after a batch smaller than batch_max (processing.linger).
  std::chrono::milliseconds linger{0};
};

struct ProcessResult {
  std::size_t rows = 0;      // claimed
  std::size_t events = 0;    // new events written
  std::size_t replayed = 0;  // rows whose event already existed
  std::size_t failed = 0;    // rows marked failed
  std::size_t requests_completed = 0;
  std::size_t actions = 0;  // outbox rows planned by the rules

  ProcessResult& operator+=(const ProcessResult& o) {
    rows += o.rows;
    events += o.events;
    replayed += o.replayed;
    failed += o.failed;
    requests_completed += o.requests_completed;
    actions += o.actions;
    return *this;
  }
};

// The outbox rows `rules` plan for one newly stored event, for the caller's
// transaction. `origin` is the pending request's origin ("action:<id>"
// continues that action's chain); `default_attempts` is
// actions.max_attempts.
std::vector<storage::ActionRecord> PlanActions(const handlers::RuleSet& rules,
                                               handlers::Event event,
                                               const handlers::EventSource& source, double epoch,
                                               const std::string& origin, int default_attempts);

class Processor {
 public:
  using StoreFactory = std::function<std::unique_ptr<storage::ProcessingStore>()>;
  using ClassifyFn = std::function<handlers::Event(std::string_view, const boost::json::object&)>;

  // `metrics` and `rules` may be null. `classify` is replaceable for tests.
  Processor(StoreFactory factory, ProcessorOptions options, Metrics* metrics,
            const RuleBook* rules = nullptr, ClassifyFn classify = handlers::Classify);

  // Called (from a worker thread) after a batch that planned actions commits.
  void OnActionsPlanned(std::function<void()> wake) { wake_ = std::move(wake); }
  ~Processor();

  void Start();
  void Stop();  // joins; a worker finishes its batch first

  // One batch of pending rows on `store`, on the calling thread (tests,
  // the replay command). Throws StorageError when the database is gone.
  ProcessResult ProcessPending(storage::ProcessingStore& store);
  // Registers a pending request from outside (operator API, CLI) and matches
  // the callbacks that arrived before it. False when the id is known.
  // `request.devices_json` holds the devices ([[{id, kind}]]); progress,
  // expected callbacks and state are filled in here.
  bool RegisterRequest(storage::ProcessingStore& store, storage::PendingRequestRecord request);
  // The same inside a transaction the caller commits (the dispatcher records
  // an action's answer and the request it started together). Returns the
  // state the request is in, or "" when the id is known.
  static std::string RegisterInBatch(storage::ProcessingBatch& batch,
                                     storage::PendingRequestRecord& request);

  // The given rows, whatever their state (replay).
  ProcessResult ProcessIds(storage::ProcessingStore& store, const std::vector<std::int64_t>& ids);

 private:
  void Run(int worker);
  // Sleeps `duration`, or until Stop().
  void Sleep(std::chrono::milliseconds duration) const;
  // What a transaction's events are counted and logged as, once it has
  // committed: a transaction the server rolls back and that is run again
  // counts its events once.
  struct Committed {
    struct Event {
      std::string kind;
      std::string unmatched_service;  // empty: matched, or no requestId
      double latency = 0;             // received -> processed, seconds
    };
    struct Completed {  // a request this transaction concluded
      std::string request_id, action, state;
      int received = 0;
    };
    std::vector<Event> events;
    std::vector<Completed> completed;
  };
  // The processing step, top to bottom: parse -> classify -> events ->
  // correlate -> mark processed. Throws on any failure (the caller rolls back).
  void ProcessRows(storage::ProcessingBatch& batch, const std::vector<storage::InboxRow>& rows,
                   ProcessResult& result, Committed& committed);
  // Counts and logs `committed`; call after the commit.
  void Publish(const Committed& committed) const;
  // Claims with `claim` and processes in one transaction; row by row if that fails.
  ProcessResult ClaimAndProcess(
      storage::ProcessingStore& store,
      const std::function<std::vector<storage::InboxRow>(storage::ProcessingBatch&)>& claim);
  ProcessResult RowByRow(storage::ProcessingStore& store,
                         const std::vector<storage::InboxRow>& rows,
                         const std::string& batch_error);

  StoreFactory factory_;
  ProcessorOptions options_;
  Metrics* metrics_;
  const RuleBook* rules_;
  ClassifyFn classify_;
  std::function<void()> wake_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
};

}  // namespace tscb::daemon
