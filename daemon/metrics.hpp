#pragma once
// The daemon's Prometheus metrics (prometheus-cpp core; served as text by the
// admin endpoint). Counters are created up front per service and outcome so
// the hot path only increments an atomic. Thread-safe.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/processing.hpp"

namespace tscb::daemon {

// What happened to one request on the callback listener.
enum class Outcome : int {
  kStored,          // 200, new inbox row
  kDuplicate,       // 200, resend of a stored callback
  kUnavailable,     // 503, database write failed
  kNotJson,         // 400
  kNotObject,       // 400
  kUnstorable,      // 400
  kBadCredentials,  // 401
  kSpooled,         // 200, appended to the local spool (database unavailable)
  kCount
};

// Rejections that happen before a request is tied to a service.
enum class Rejection : int {
  kForbidden,        // 403, source address not allowed
  kNotFound,         // 404
  kMethod,           // 405
  kBodyTooLarge,     // 413
  kHeadersTooLarge,  // 431
  kBadRequest,       // 400, malformed HTTP
  kTimeout,          // client too slow, closed
  kConnectionLimit,  // closed at accept
  kTlsHandshake,     // handshake failed
  kCount
};

const char* Name(Outcome outcome);
const char* Name(Rejection rejection);

class Metrics {
 public:
  explicit Metrics(const std::vector<std::string>& services);

  void Count(std::size_t service_index, Outcome outcome);
  void Count(Rejection rejection);
  void ObserveAckLatency(double seconds) { ack_latency_->Observe(seconds); }

  prometheus::Gauge& OpenConnections() { return *open_connections_; }
  prometheus::Counter& InboxBatches() { return *inbox_batches_; }
  prometheus::Counter& InboxRows() { return *inbox_rows_; }
  prometheus::Counter& InboxFailures() { return *inbox_failures_; }
  prometheus::Counter& InboxAnnounceFailures() { return *inbox_announce_failures_; }
  prometheus::Gauge& InboxQueue() { return *inbox_queue_; }
  void ObserveBatch(std::size_t records, double seconds) {
    batch_size_->Observe(static_cast<double>(records));
    batch_seconds_->Observe(seconds);
  }

  // ThingSpace client and registration (low rate; labels made on first use).
  // `path` is reduced to its endpoint (EndpointOf) so the label stays bounded.
  void CountApiCall(const std::string& method, const std::string& path,
                    const std::string& outcome) {
    api_calls_->Add({{"endpoint", method + " " + EndpointOf(path)}, {"outcome", outcome}})
        .Increment();
  }
  // "/v1/callbacks/0000123456-00001/name/CarrierService?x" ->
  // "/v1/callbacks/{}/name/{}": segments with digits or a capital first
  // letter (account names, ids, service names) become {}.
  static std::string EndpointOf(const std::string& path);
  void CountLogin(const std::string& result) { logins_->Add({{"result", result}}).Increment(); }
  prometheus::Gauge& LoginLocked() { return *login_locked_; }
  prometheus::Gauge& CircuitOpen() { return *circuit_open_; }
  void CountRegistration(const std::string& service, const std::string& action) {
    registrations_->Add({{"service", service}, {"action", action}}).Increment();
  }

  // Processing.
  void CountEvent(const std::string& kind) { events_->Add({{"kind", kind}}).Increment(); }
  // A callback whose requestId matched no pending request.
  void CountUnmatched(const std::string& service) {
    unmatched_->Add({{"service", service}}).Increment();
  }
  // From a callback's arrival to the commit of its event.
  void ObserveProcessingLatency(double seconds) { processing_latency_->Observe(seconds); }
  // The database's view (StatsSampler, every few seconds).
  void SetStats(const storage::OperationalStats& stats);
  prometheus::Gauge& StatsAge() { return *stats_age_; }
  // malloc's own view of the heap, after the periodic trim (StatsSampler):
  // bytes in use, free but kept, and in chunks mapped on their own.
  void SetHeap(double in_use, double free, double mapped);
  void CountProcessed(std::size_t rows) { processed_->Increment(static_cast<double>(rows)); }
  void CountProcessingFailure() { processing_failures_->Increment(); }
  void CountOperatorApi(int status) {
    operator_api_->Add({{"status", std::to_string(status)}}).Increment();
  }
  void CountReconciled(const std::string& verdict) {
    reconciled_->Add({{"verdict", verdict}}).Increment();
  }

  // Rules and the outbox.
  void CountAction(const std::string& action, const std::string& result) {
    actions_->Add({{"action", action}, {"result", result}}).Increment();
  }
  void CountActionsPlanned(std::size_t n) { actions_planned_->Increment(static_cast<double>(n)); }
  // A transaction the server rolled back (deadlock, serialization) and that
  // was run again; `part` names the thread's role.
  void CountRolledBack(const std::string& part) { rolled_back_->Add({{"part", part}}).Increment(); }
  void CountRulesLoad(const std::string& result, std::size_t active) {
    rules_loads_->Add({{"result", result}}).Increment();
    if (result == "loaded") rules_active_->Set(static_cast<double>(active));
  }

  // The local spool.
  void CountSpoolAppend(const std::string& result, std::size_t records) {
    spool_appends_->Add({{"result", result}}).Increment(static_cast<double>(records));
  }
  void CountSpoolDrained(std::size_t records) {
    spool_drained_->Increment(static_cast<double>(records));
  }
  void CountSpoolDamaged(std::size_t bytes) {
    spool_damaged_->Increment(static_cast<double>(bytes));
  }
  void SetSpool(double bytes, double records, std::int64_t oldest_us) {
    spool_bytes_->Set(bytes);
    spool_records_->Set(records);
    spool_oldest_->Set(records > 0 ? static_cast<double>(oldest_us) / 1e6 : 0);
  }

  // OCSP stapling: fetches by result (good, revoked, error) and the
  // nextUpdate of the response stapled now (0 when none).
  void CountOcspFetch(const std::string& result) {
    ocsp_fetches_->Add({{"result", result}}).Increment();
  }
  void SetOcspValidUntil(double unix_seconds) { ocsp_valid_until_->Set(unix_seconds); }

  // SIGHUP reloads of the whole config: applied or rejected.
  void CountConfigReload(const std::string& result) {
    config_reloads_->Add({{"result", result}}).Increment();
  }

  // Called before every scrape, to refresh gauges from state kept elsewhere
  // (the ThingSpace session, registrations). Register before serving.
  void OnScrape(std::function<void(Metrics&)> hook) { scrape_hooks_.push_back(std::move(hook)); }
  void SetThingSpaceSession(bool has_session) { session_->Set(has_session ? 1 : 0); }
  void SetRegistrationState(const std::string& service, const std::string& state);

  // Prometheus text exposition format.
  std::string Serialize();

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::array<prometheus::Counter*, static_cast<int>(Outcome::kCount)>> outcomes_;
  std::array<prometheus::Counter*, static_cast<int>(Rejection::kCount)> rejections_{};
  prometheus::Histogram* ack_latency_ = nullptr;
  prometheus::Gauge* open_connections_ = nullptr;
  prometheus::Counter* inbox_batches_ = nullptr;
  prometheus::Counter* inbox_rows_ = nullptr;
  prometheus::Counter* inbox_failures_ = nullptr;
  prometheus::Counter* inbox_announce_failures_ = nullptr;
  prometheus::Gauge* inbox_queue_ = nullptr;
  prometheus::Histogram* batch_size_ = nullptr;
  prometheus::Histogram* batch_seconds_ = nullptr;
  prometheus::Family<prometheus::Counter>* api_calls_ = nullptr;
  prometheus::Family<prometheus::Counter>* logins_ = nullptr;
  prometheus::Family<prometheus::Counter>* registrations_ = nullptr;
  prometheus::Family<prometheus::Counter>* events_ = nullptr;
  prometheus::Counter* processed_ = nullptr;
  prometheus::Family<prometheus::Counter>* reconciled_ = nullptr;
  prometheus::Family<prometheus::Counter>* actions_ = nullptr;
  prometheus::Counter* actions_planned_ = nullptr;
  prometheus::Family<prometheus::Counter>* rolled_back_ = nullptr;
  prometheus::Family<prometheus::Counter>* rules_loads_ = nullptr;
  prometheus::Gauge* rules_active_ = nullptr;
  prometheus::Family<prometheus::Counter>* config_reloads_ = nullptr;
  prometheus::Family<prometheus::Counter>* spool_appends_ = nullptr;
  prometheus::Counter* spool_drained_ = nullptr;
  prometheus::Counter* spool_damaged_ = nullptr;
  prometheus::Family<prometheus::Counter>* ocsp_fetches_ = nullptr;
  prometheus::Gauge* ocsp_valid_until_ = nullptr;
  prometheus::Gauge* spool_bytes_ = nullptr;
  prometheus::Gauge* spool_records_ = nullptr;
  prometheus::Gauge* spool_oldest_ = nullptr;
  prometheus::Family<prometheus::Counter>* unmatched_ = nullptr;
  prometheus::Histogram* processing_latency_ = nullptr;
  prometheus::Gauge* inbox_backlog_ = nullptr;
  prometheus::Gauge* inbox_oldest_ = nullptr;
  prometheus::Gauge* inbox_failed_ = nullptr;
  prometheus::Gauge* stats_age_ = nullptr;
  prometheus::Gauge* states_age_ = nullptr;
  prometheus::Family<prometheus::Gauge>* heap_bytes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* requests_by_state_ = nullptr;
  prometheus::Family<prometheus::Gauge>* actions_by_state_ = nullptr;
  prometheus::Gauge* session_ = nullptr;
  prometheus::Family<prometheus::Gauge>* registration_state_ = nullptr;
  std::vector<std::function<void(Metrics&)>> scrape_hooks_;
  std::mutex scrape_mu_;
  prometheus::Family<prometheus::Counter>* operator_api_ = nullptr;
  prometheus::Counter* processing_failures_ = nullptr;
  prometheus::Gauge* login_locked_ = nullptr;
  prometheus::Gauge* circuit_open_ = nullptr;
};

}  // namespace tscb::daemon
