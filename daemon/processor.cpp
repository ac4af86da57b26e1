#include "daemon/processor.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cctype>
#include <set>

#include "daemon/run_again.hpp"
#include "daemon/thread_name.hpp"
#include "handlers/correlate.hpp"
#include "storage/inbox.hpp"

namespace tscb::daemon {
namespace {

// Labels the processors' rolled-back transactions (run_again.hpp).
constexpr const char* kPart = "tscb-proc";

storage::EventRecord ToRecord(const storage::InboxRow& row, const handlers::Event& e) {
  storage::EventRecord r;
  r.inbox_id = row.id;
  r.received_at = row.received_at;
  r.service = row.service;
  r.kind = e.kind;
  r.status = e.status;
  r.raw_status = e.raw_status;
  r.request_id = e.request_id;
  r.account = e.account;
  r.device_ids_json = handlers::DevicesJson(e.devices);
  r.error_code = e.error_code;
  r.error_message = e.error_message;
  r.payload_json = boost::json::serialize(e.payload);
  return r;
}

// "action:<id>" -> id; 0 for requests from elsewhere.
std::int64_t OriginAction(const std::string& origin) {
  if (origin.rfind("action:", 0) != 0) return 0;
  try {
    return std::stoll(origin.substr(7));
  } catch (const std::exception&) {
    return 0;
  }
}

boost::json::object RequestView(const storage::PendingRequestRecord& r,
                                const handlers::RequestProgress& now) {
  return {{"requestId", r.request_id},
          {"account", r.account},
          {"action", r.action},
          {"nbiot", r.nbiot},
          {"origin", r.origin},
          {"state", now.state},
          {"submittedAt", r.submitted_at},
          {"deadlineAt", r.deadline_at},
          {"expectedCallbacks", r.expected_callbacks},
          {"receivedCallbacks", now.received}};
}

storage::ActionRecord ToActionRecord(handlers::PlannedAction p, std::int64_t event_id,
                                     const std::string& request_id, std::int64_t origin,
                                     int default_attempts) {
  storage::ActionRecord a;
  a.idempotency_key = std::move(p.idempotency_key);
  a.rule = std::move(p.rule);
  a.action = std::move(p.action);
  a.method = std::move(p.method);
  a.target = std::move(p.target);
  if (p.body) a.body_json = boost::json::serialize(*p.body);
  a.safe = p.safe;
  a.correlate = std::move(p.correlate);
  a.max_attempts = p.max_attempts > 0 ? p.max_attempts : default_attempts;
  a.cause_event_id = event_id;
  a.cause_request_id = request_id;
  a.origin_action_id = origin;
  a.delay_seconds = static_cast<double>(p.delay.count()) / 1000.0;
  a.error = std::move(p.error);
  return a;
}

handlers::RequestProgress FromRecord(const storage::PendingRequestRecord& r) {
  handlers::RequestProgress p;
  p.request_id = r.request_id;
  p.action = r.action;
  p.nbiot = r.nbiot;
  p.devices = handlers::ParseProgressJson(r.devices_json);
  p.received = r.received_callbacks;
  p.state = r.state;
  return p;
}

}  // namespace

std::vector<storage::ActionRecord> PlanActions(const handlers::RuleSet& rules,
                                               handlers::Event event,
                                               const handlers::EventSource& source, double epoch,
                                               const std::string& origin, int default_attempts) {
  std::vector<storage::ActionRecord> out;
  if (!rules.Wants(event.kind)) return out;
  const std::string request_id = event.request_id;  // the event itself moves into the context
  for (auto& p :
       rules.Evaluate(handlers::EventContext(std::move(event), source), source.event_id, epoch))
    out.push_back(ToActionRecord(std::move(p), source.event_id, request_id, OriginAction(origin),
                                 default_attempts));
  return out;
}

Processor::Processor(StoreFactory factory, ProcessorOptions options, Metrics* metrics,
                     const RuleBook* rules, ClassifyFn classify)
    : factory_(std::move(factory)),
      options_(options),
      metrics_(metrics),
      rules_(rules),
      classify_(std::move(classify)) {}

Processor::~Processor() { Stop(); }

void Processor::Start() {
  for (int i = 0; i < options_.workers; ++i)
    threads_.emplace_back([this, i] {
      NameThisThread("tscb-proc" + std::to_string(i));
      Run(i);
    });
}

void Processor::Stop() {
  stopping_ = true;
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Processor::ProcessRows(storage::ProcessingBatch& batch,
                            const std::vector<storage::InboxRow>& rows, ProcessResult& result,
                            Committed& committed) {
  // Parse and classify.
  std::vector<handlers::Event> events;
  std::vector<boost::json::object> bodies;  // for the rules
  std::vector<storage::EventRecord> records;
  events.reserve(rows.size());
  records.reserve(rows.size());
  std::set<std::string> request_ids;
  for (const auto& row : rows) {
    boost::system::error_code ec;
    auto body = boost::json::parse(row.body, ec);
    if (ec || !body.is_object())
      throw std::runtime_error("inbox row " + std::to_string(row.id) +
                               ": body is not a JSON object");
    events.push_back(classify_(row.service, body.as_object()));
    bodies.push_back(std::move(body.as_object()));
    records.push_back(ToRecord(row, events.back()));
    if (!events.back().request_id.empty()) request_ids.insert(events.back().request_id);
  }

  // Correlate: the requests these events answer, locked until commit.
  auto requests = batch.LockRequests({request_ids.begin(), request_ids.end()});
  for (auto& r : records)
    if (!r.request_id.empty())
      r.correlation = requests.count(r.request_id) ? "matched" : "unmatched";

  const double now_epoch =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Events; a row that already had its event (a replay) changes nothing more.
  auto ids = batch.InsertEvents(records);
  std::map<std::string, handlers::RequestProgress> changed;
  // What the rules see of each event's request: its state after that event.
  auto rule_set = rules_ ? rules_->Current() : nullptr;
  const bool plan = rule_set && rule_set->Size() > 0;
  std::vector<std::optional<boost::json::object>> request_views(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (ids[i] == 0) {
      ++result.replayed;
      continue;
    }
    ++result.events;
    committed.events.push_back(
        {events[i].kind, records[i].correlation == "unmatched" ? rows[i].service : std::string(),
         std::max(0.0, now_epoch - rows[i].received_epoch)});
    auto it = requests.find(events[i].request_id);
    if (it == requests.end()) continue;
    auto progress = changed.find(it->first);
    if (progress == changed.end())  // parse a request's progress once per batch
      progress = changed.emplace(it->first, FromRecord(it->second)).first;
    std::string before = progress->second.state;
    handlers::Apply(progress->second, events[i]);
    handlers::Conclude(progress->second);
    if (before == "pending" && progress->second.state != "pending") {
      ++result.requests_completed;
      committed.completed.push_back(
          {it->first, progress->second.action, progress->second.state, progress->second.received});
    }
    if (plan) request_views[i] = RequestView(it->second, progress->second);
  }
  for (auto& [id, progress] : changed) {
    storage::PendingRequestRecord r = requests.at(id);
    r.devices_json = handlers::ProgressJson(progress.devices);
    r.state = progress.state;
    r.received_callbacks = progress.received;
    batch.UpdateRequest(r);
  }
  // Rules -> outbox, in this transaction: an action is planned exactly when
  // its cause event is first stored.
  if (plan) {
    std::vector<storage::ActionRecord> planned;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (ids[i] == 0) continue;
      const auto* request = request_views[i] ? &*request_views[i] : nullptr;
      std::string origin;
      if (auto it = requests.find(events[i].request_id); it != requests.end())
        origin = it->second.origin;
      auto more = PlanActions(
          *rule_set, std::move(events[i]),
          {rows[i].service, ids[i], rows[i].received_at, request, &bodies[i], options_.account},
          rows[i].received_epoch, origin, options_.action_max_attempts);
      std::move(more.begin(), more.end(), std::back_inserter(planned));
    }
    result.actions += batch.InsertActions(planned);
  }
  batch.MarkProcessed(rows);
}

void Processor::Publish(const Committed& committed) const {
  if (metrics_) {
    for (const auto& e : committed.events) {
      metrics_->CountEvent(e.kind);
      if (!e.unmatched_service.empty()) metrics_->CountUnmatched(e.unmatched_service);
      metrics_->ObserveProcessingLatency(e.latency);
    }
  }
  for (const auto& c : committed.completed)
    spdlog::info("request_id={} action={} {} after {} callback(s)", c.request_id, c.action, c.state,
                 c.received);
}

ProcessResult Processor::RowByRow(storage::ProcessingStore& store,
                                  const std::vector<storage::InboxRow>& rows,
                                  const std::string& batch_error) {
  ProcessResult result;
  spdlog::warn("processing: a batch of {} row(s) failed ({}); retrying them one by one",
               rows.size(), batch_error);
  for (const auto& row : rows) {
    try {
      result += RunAgainIfRolledBack(kPart, metrics_, [&] {
        ProcessResult one;
        Committed committed;
        auto batch = store.Begin();
        auto claimed = batch->ClaimIds({row.id}, true);
        if (claimed.empty()) return one;  // another processor took it meanwhile
        one.rows = 1;
        ProcessRows(*batch, claimed, one, committed);
        batch->Commit();
        Publish(committed);
        return one;
      });
    } catch (const std::exception& e) {
      // Not the row's fault: it stays pending for the next round.
      if (auto* se = dynamic_cast<const storage::StorageError*>(&e);
          se && (se->ConnectionLost() || se->RolledBack()))
        throw;
      ++result.failed;
      auto batch = store.Begin();
      batch->MarkFailed(row, e.what());
      batch->Commit();
      if (metrics_) metrics_->CountProcessingFailure();
      spdlog::error("processing: inbox row {} ({}) failed and is marked failed: {}", row.id,
                    row.service, e.what());
    }
  }
  return result;
}

ProcessResult Processor::ClaimAndProcess(
    storage::ProcessingStore& store,
    const std::function<std::vector<storage::InboxRow>(storage::ProcessingBatch&)>& claim) {
  std::vector<storage::InboxRow> rows;
  std::string error;
  try {
    return RunAgainIfRolledBack(kPart, metrics_, [&] {
      ProcessResult result;
      Committed committed;
      auto batch = store.Begin();
      batch->AsyncCommit();  // redone from the inbox if lost
      rows = claim(*batch);
      if (rows.empty()) return result;
      result.rows = rows.size();
      ProcessRows(*batch, rows, result, committed);
      batch->Commit();
      Publish(committed);
      return result;
    });
  } catch (const storage::StorageError& e) {
    // Rolled back every time: the rows are still pending (not failed); the
    // worker tries again after its pause.
    if (e.ConnectionLost() || e.RolledBack() || rows.empty()) throw;
    error = e.what();
  } catch (const std::exception& e) {
    if (rows.empty()) throw;
    error = e.what();
  }
  return RowByRow(store, rows, error);
}

ProcessResult Processor::ProcessPending(storage::ProcessingStore& store) {
  return ClaimAndProcess(store,
                         [&](storage::ProcessingBatch& b) { return b.Claim(options_.batch_max); });
}

bool Processor::RegisterRequest(storage::ProcessingStore& store,
                                storage::PendingRequestRecord request) {
  auto batch = store.Begin();
  std::string state = RegisterInBatch(*batch, request);
  if (state.empty()) return false;
  batch->Commit();
  spdlog::info("request_id={} action={} registered by {}; {}", request.request_id, request.action,
               request.origin, state);
  return true;
}

std::string Processor::RegisterInBatch(storage::ProcessingBatch& batch,
                                       storage::PendingRequestRecord& request) {
  handlers::RequestProgress progress;
  progress.request_id = request.request_id;
  progress.action = request.action;
  progress.nbiot = request.nbiot;
  for (auto& ids : handlers::ParseDevicesJson(request.devices_json)) {
    handlers::DeviceProgress d;
    for (auto& id : ids)
      for (auto& c : id.kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    d.ids = std::move(ids);
    progress.devices.push_back(std::move(d));
  }
  request.devices_json = handlers::ProgressJson(progress.devices);
  request.expected_callbacks = handlers::ExpectedCallbacks(progress);

  if (!batch.InsertRequest(request)) return "";
  // Callbacks that came first (another system sent the request, or it was
  // registered late, or ThingSpace answered before the dispatcher recorded
  // the requestId): matched now, in order.
  for (const auto& e : batch.EventsOfRequest(request.request_id)) {
    handlers::Event event;
    event.kind = e.kind;
    event.status = e.status;
    event.request_id = request.request_id;
    event.devices = handlers::ParseDevicesJson(e.device_ids_json);
    event.error_code = e.error_code;
    handlers::Apply(progress, event);
  }
  handlers::Conclude(progress);
  if (progress.received > 0) {
    request.devices_json = handlers::ProgressJson(progress.devices);
    request.state = progress.state;
    request.received_callbacks = progress.received;
    batch.UpdateRequest(request);
    batch.MarkMatched(request.request_id);
  }
  return std::to_string(progress.devices.size()) + " device(s), " +
         std::to_string(progress.received) + " earlier callback(s) matched, " + progress.state;
}

ProcessResult Processor::ProcessIds(storage::ProcessingStore& store,
                                    const std::vector<std::int64_t>& ids) {
  return ClaimAndProcess(store,
                         [&](storage::ProcessingBatch& b) { return b.ClaimIds(ids, false); });
}

void Processor::Sleep(std::chrono::milliseconds duration) const {
  // In slices, looking up for Stop().
  constexpr auto kSlice = std::chrono::milliseconds(50);
  for (auto left = duration; left.count() > 0 && !stopping_; left -= kSlice)
    std::this_thread::sleep_for(std::min(left, kSlice));
}

void Processor::Run(int worker) {
  std::unique_ptr<storage::ProcessingStore> store;
  auto backoff = std::chrono::milliseconds(200);
  while (!stopping_) {
    try {
      if (!store) store = factory_();
      ProcessResult r = ProcessPending(*store);
      backoff = std::chrono::milliseconds(200);
      if (r.actions > 0) {
        if (metrics_) metrics_->CountActionsPlanned(r.actions);
        if (wake_) wake_();
      }
      if (r.rows > 0) {
        if (metrics_) metrics_->CountProcessed(r.rows);
        spdlog::debug("processor {}: {} row(s), {} event(s), {} replayed, {} failed", worker,
                      r.rows, r.events, r.replayed, r.failed);
        // A part batch: the rows are coming at a steady rate, not from a
        // backlog. Let some more arrive, so that the next transaction takes
        // them together: its fixed cost (claim, locks, inserts, commit) is
        // most of a small batch's.
        if (r.rows < options_.batch_max) Sleep(options_.linger);
        continue;  // more may be waiting
      }
      // Asleep until a NOTIFY or the poll interval, looking up for Stop()
      // every quarter second.
      auto slept = std::chrono::milliseconds(0);
      const auto slice = std::min(options_.poll, std::chrono::milliseconds(250));
      while (!stopping_ && slept < options_.poll && !store->WaitForInbox(slice)) slept += slice;
    } catch (const std::exception& e) {
      spdlog::error("processor {}: {}; retrying in {} ms", worker, e.what(), backoff.count());
      if (metrics_) metrics_->CountProcessingFailure();
      store.reset();
      Sleep(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
    }
  }
}

}  // namespace tscb::daemon
