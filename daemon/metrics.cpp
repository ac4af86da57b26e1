#include "daemon/metrics.hpp"

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

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace tscb::daemon
