#include "daemon/metrics.hpp"

#include <cctype>

#include <prometheus/text_serializer.h>

namespace tscb::daemon {

const char* Name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kStored:
      return "stored";
    case Outcome::kDuplicate:
      return "duplicate";
    case Outcome::kUnavailable:
      return "unavailable";
    case Outcome::kNotJson:
      return "not_json";
    case Outcome::kNotObject:
      return "not_object";
    case Outcome::kUnstorable:
      return "unstorable";
    case Outcome::kBadCredentials:
      return "bad_credentials";
    case Outcome::kSpooled:
      return "spooled";
    case Outcome::kCount:
      break;
  }
  return "unknown";
}

const char* Name(Rejection rejection) {
  switch (rejection) {
    case Rejection::kForbidden:
      return "forbidden";
    case Rejection::kNotFound:
      return "not_found";
    case Rejection::kMethod:
      return "method_not_allowed";
    case Rejection::kBodyTooLarge:
      return "body_too_large";
    case Rejection::kHeadersTooLarge:
      return "headers_too_large";
    case Rejection::kBadRequest:
      return "bad_request";
    case Rejection::kTimeout:
      return "timeout";
    case Rejection::kConnectionLimit:
      return "connection_limit";
    case Rejection::kTlsHandshake:
      return "tls_handshake";
    case Rejection::kCount:
      break;
  }
  return "unknown";
}

Metrics::Metrics(const std::vector<std::string>& services)
    : registry_(std::make_shared<prometheus::Registry>()) {
  auto& callbacks = prometheus::BuildCounter()
                        .Name("tscb_callbacks_total")
                        .Help("Callbacks answered, by service and outcome")
                        .Register(*registry_);
  for (const auto& service : services) {
    auto& row = outcomes_.emplace_back();
    for (int i = 0; i < static_cast<int>(Outcome::kCount); ++i)
      row[i] = &callbacks.Add({{"service", service}, {"outcome", Name(static_cast<Outcome>(i))}});
  }
  auto& rejected = prometheus::BuildCounter()
                       .Name("tscb_http_rejected_total")
                       .Help("Requests or connections refused before reaching a service")
                       .Register(*registry_);
  for (int i = 0; i < static_cast<int>(Rejection::kCount); ++i)
    rejections_[i] = &rejected.Add({{"reason", Name(static_cast<Rejection>(i))}});

  ack_latency_ =
      &prometheus::BuildHistogram()
           .Name("tscb_ack_latency_seconds")
           .Help("Time from a callback's full request to its acknowledgement")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                            0.05, 0.1, 0.25, 0.5, 1, 2.5});
  open_connections_ = &prometheus::BuildGauge()
                           .Name("tscb_open_connections")
                           .Help("Open connections on the callback listener")
                           .Register(*registry_)
                           .Add({});
  inbox_batches_ = &prometheus::BuildCounter()
                        .Name("tscb_inbox_batches_total")
                        .Help("Inbox transactions committed")
                        .Register(*registry_)
                        .Add({});
  inbox_rows_ = &prometheus::BuildCounter()
                     .Name("tscb_inbox_records_total")
                     .Help("Callbacks written to the inbox (new and duplicate)")
                     .Register(*registry_)
                     .Add({});
  inbox_failures_ = &prometheus::BuildCounter()
                         .Name("tscb_inbox_write_failures_total")
                         .Help("Inbox batches that failed to commit")
                         .Register(*registry_)
                         .Add({});
  inbox_announce_failures_ =
      &prometheus::BuildCounter()
           .Name("tscb_inbox_announce_failures_total")
           .Help("Notifications of stored callbacks to the processors that failed (they poll)")
           .Register(*registry_)
           .Add({});
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("tscb_inbox_batch_records")
                     .Help("Callbacks per inbox transaction")
                     .Register(*registry_)
                     .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 5, 10, 20, 50, 100, 200,
                                                                      500, 1000});
  batch_seconds_ = &prometheus::BuildHistogram()
                        .Name("tscb_inbox_batch_seconds")
                        .Help("Time to write and commit one inbox transaction")
                        .Register(*registry_)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1});
  inbox_queue_ = &prometheus::BuildGauge()
                      .Name("tscb_inbox_queue")
                      .Help("Callbacks waiting for an inbox writer")
                      .Register(*registry_)
                      .Add({});
  api_calls_ = &prometheus::BuildCounter()
                    .Name("tscb_thingspace_calls_total")
                    .Help(
                        "ThingSpace API calls by final outcome (success, retryable, final, "
                        "circuit_open, not_logged_in)")
                    .Register(*registry_);
  logins_ = &prometheus::BuildCounter()
                 .Name("tscb_thingspace_logins_total")
                 .Help("OAuth token requests and session logins by result")
                 .Register(*registry_);
  registrations_ = &prometheus::BuildCounter()
                        .Name("tscb_registration_actions_total")
                        .Help(
                            "Callback registrations by service and action (kept, registered, "
                            "drift_repaired, foreign, failed)")
                        .Register(*registry_);
  events_ =
      &prometheus::BuildCounter()
           .Name("tscb_events_total")
           .Help(
               "Events written by the processor, by kind (kind=\"unknown\": shapes not recognised)")
           .Register(*registry_);
  operator_api_ = &prometheus::BuildCounter()
                       .Name("tscb_operator_api_requests_total")
                       .Help("Operator API (/v1/...) requests by HTTP status answered")
                       .Register(*registry_);
  rolled_back_ = &prometheus::BuildCounter()
                      .Name("tscb_db_rolled_back_total")
                      .Help(
                          "Transactions the server rolled back (a deadlock or a serialization "
                          "conflict) and that were run again, by part")
                      .Register(*registry_);
  actions_ = &prometheus::BuildCounter()
                  .Name("tscb_actions_total")
                  .Help(
                      "Follow-up actions by catalogue name and what a dispatch came to "
                      "(succeeded, queued = retry later, failed, dead, needs_review, "
                      "lease_recovered, record_failed)")
                  .Register(*registry_);
  actions_planned_ = &prometheus::BuildCounter()
                          .Name("tscb_actions_planned_total")
                          .Help("Outbox rows the rules planned (resends and replays plan none)")
                          .Register(*registry_)
                          .Add({});
  rules_loads_ =
      &prometheus::BuildCounter()
           .Name("tscb_rules_loads_total")
           .Help("Loads of the rules file (start and SIGHUP) by result: loaded, rejected")
           .Register(*registry_);
  rules_active_ = &prometheus::BuildGauge()
                       .Name("tscb_rules_active")
                       .Help("Rules in force")
                       .Register(*registry_)
                       .Add({});
  unmatched_ = &prometheus::BuildCounter()
                    .Name("tscb_callbacks_unmatched_total")
                    .Help("Callbacks with a requestId that matched no pending request, by service")
                    .Register(*registry_);
  processing_latency_ =
      &prometheus::BuildHistogram()
           .Name("tscb_processing_latency_seconds")
           .Help("From a callback's arrival to the commit of its event")
           .Register(*registry_)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                            0.5, 1, 2.5, 5, 10, 30, 60, 300});
  auto gauge = [this](const char* name, const char* help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  inbox_backlog_ = gauge(
      "tscb_inbox_backlog",
      "Stored callbacks not processed yet (exact up to 10,000, estimated from the ids above)");
  inbox_oldest_ = gauge("tscb_inbox_oldest_pending_seconds",
                        "Age of the oldest callback not processed yet (0 when none)");
  inbox_failed_ = gauge("tscb_inbox_failed", "Stored callbacks whose processing failed");
  stats_age_ = gauge("tscb_stats_sampled_timestamp_seconds",
                     "When the inbox gauges (backlog, oldest, failed) were last sampled");
  states_age_ = gauge("tscb_stats_by_state_sampled_timestamp_seconds",
                      "When requests and actions were last counted by state (less often "
                      "than the inbox gauges once counting them takes long)");
  heap_bytes_ = &prometheus::BuildGauge()
                     .Name("tscb_heap_bytes")
                     .Help(
                         "malloc's heap after the periodic trim, by kind: in_use (live "
                         "allocations), free (kept by malloc), mapped (large chunks)")
                     .Register(*registry_);
  SetHeap(0, 0, 0);  // exported from the start, like the other gauges
  requests_by_state_ = &prometheus::BuildGauge()
                            .Name("tscb_requests_by_state")
                            .Help("Pending asynchronous requests by state")
                            .Register(*registry_);
  actions_by_state_ = &prometheus::BuildGauge()
                           .Name("tscb_actions_by_state")
                           .Help("Outbox actions by state")
                           .Register(*registry_);
  spool_bytes_ = gauge("tscb_spool_bytes", "Size of the local spool file");
  spool_records_ = gauge("tscb_spool_records", "Spooled callbacks not yet moved into the inbox");
  spool_oldest_ =
      gauge("tscb_spool_oldest_timestamp_seconds",
            "Arrival time of the oldest spooled callback not yet in the inbox (0 when none)");
  spool_appends_ = &prometheus::BuildCounter()
                        .Name("tscb_spool_appends_total")
                        .Help("Callbacks appended to the spool by result: ok, full, error")
                        .Register(*registry_);
  spool_drained_ = &prometheus::BuildCounter()
                        .Name("tscb_spool_drained_total")
                        .Help("Spooled callbacks moved into the inbox")
                        .Register(*registry_)
                        .Add({});
  ocsp_fetches_ = &prometheus::BuildCounter()
                       .Name("tscb_ocsp_fetches_total")
                       .Help("OCSP responses fetched for stapling, by result: good, revoked, error")
                       .Register(*registry_);
  ocsp_valid_until_ = gauge("tscb_ocsp_staple_valid_until_timestamp_seconds",
                            "nextUpdate of the OCSP response stapled to handshakes (0 when none)");
  spool_damaged_ =
      &prometheus::BuildCounter()
           .Name("tscb_spool_damaged_bytes_total")
           .Help("Damaged spool bytes skipped (saved to the spool file's .damaged copy)")
           .Register(*registry_)
           .Add({});
  session_ = gauge("tscb_thingspace_session", "1 while the daemon holds a ThingSpace session");
  registration_state_ =
      &prometheus::BuildGauge()
           .Name("tscb_registration_state")
           .Help(
               "1 for each service's current registration state (registered, foreign, failed, "
               "unknown)")
           .Register(*registry_);
  config_reloads_ = &prometheus::BuildCounter()
                         .Name("tscb_config_reloads_total")
                         .Help("SIGHUP reloads of the configuration by result: applied, rejected")
                         .Register(*registry_);
  reconciled_ = &prometheus::BuildCounter()
                     .Name("tscb_requests_reconciled_total")
                     .Help("Overdue pending requests handled by the reconciler, by verdict")
                     .Register(*registry_);
  processed_ = &prometheus::BuildCounter()
                    .Name("tscb_inbox_processed_total")
                    .Help("Inbox rows the processor handled")
                    .Register(*registry_)
                    .Add({});
  processing_failures_ = &prometheus::BuildCounter()
                              .Name("tscb_processing_failures_total")
                              .Help("Inbox rows marked failed, and processor errors")
                              .Register(*registry_)
                              .Add({});
  login_locked_ = &prometheus::BuildGauge()
                       .Name("tscb_thingspace_login_stopped")
                       .Help("1 when logins stopped after too many failures in a row")
                       .Register(*registry_)
                       .Add({});
  circuit_open_ = &prometheus::BuildGauge()
                       .Name("tscb_thingspace_circuit_open")
                       .Help("1 while the circuit breaker stops ThingSpace calls")
                       .Register(*registry_)
                       .Add({});
}

void Metrics::Count(std::size_t service_index, Outcome outcome) {
  outcomes_.at(service_index)[static_cast<int>(outcome)]->Increment();
}

void Metrics::Count(Rejection rejection) { rejections_[static_cast<int>(rejection)]->Increment(); }

std::string Metrics::EndpointOf(const std::string& path) {
  std::string only = path.substr(0, path.find('?'));
  std::string out;
  std::size_t pos = 0;
  while (pos < only.size()) {
    std::size_t slash = only.find('/', pos + 1);
    if (slash == std::string::npos) slash = only.size();
    std::string segment = only.substr(pos + 1, slash - pos - 1);
    bool variable =
        !segment.empty() &&
        (std::isupper(static_cast<unsigned char>(segment[0])) ||
         segment.find_first_of("0123456789%") != std::string::npos || segment.size() > 40);
    out += "/" + (variable ? std::string("{}") : segment);
    pos = slash;
  }
  return out.empty() ? "/" : out;
}

void Metrics::SetHeap(double in_use, double free, double mapped) {
  heap_bytes_->Add({{"kind", "in_use"}}).Set(in_use);
  heap_bytes_->Add({{"kind", "free"}}).Set(free);
  heap_bytes_->Add({{"kind", "mapped"}}).Set(mapped);
}

void Metrics::SetStats(const storage::OperationalStats& stats) {
  inbox_backlog_->Set(static_cast<double>(stats.inbox_pending));
  inbox_oldest_->Set(stats.oldest_pending_seconds);
  inbox_failed_->Set(static_cast<double>(stats.inbox_failed));
  stats_age_->SetToCurrentTime();
  if (!stats.by_state) return;  // the last counts stand
  states_age_->SetToCurrentTime();
  // Every state is written, so a state that empties shows 0 rather than vanishing.
  for (const char* state : {"pending", "succeeded", "failed", "partial", "timed_out"}) {
    auto it = stats.requests.find(state);
    requests_by_state_->Add({{"state", state}})
        .Set(it == stats.requests.end() ? 0 : static_cast<double>(it->second));
  }
  for (const char* state :
       {"queued", "in_flight", "succeeded", "failed", "dead", "needs_review", "cancelled"}) {
    auto it = stats.actions.find(state);
    actions_by_state_->Add({{"state", state}})
        .Set(it == stats.actions.end() ? 0 : static_cast<double>(it->second));
  }
}

void Metrics::SetRegistrationState(const std::string& service, const std::string& current) {
  for (const char* state : {"registered", "foreign", "failed", "unknown"})
    registration_state_->Add({{"service", service}, {"state", state}})
        .Set(current == state ? 1 : 0);
}

std::string Metrics::Serialize() {
  std::lock_guard lock(scrape_mu_);
  for (auto& hook : scrape_hooks_) hook(*this);
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace tscb::daemon
