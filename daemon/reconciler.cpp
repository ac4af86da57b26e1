#include "daemon/reconciler.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include "daemon/processor.hpp"
#include "handlers/correlate.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/retention.hpp"

namespace tscb::daemon {
namespace json = boost::json;

Reconciler::Reconciler(const config::Config& config, StoreFactory factory, Metrics* metrics,
                       const RuleBook* rules)
    : config_(config),
      db_(std::move(factory), "tscb-reconcile", metrics),
      metrics_(metrics),
      rules_(rules) {}

Reconciler::~Reconciler() = default;

asio::awaitable<ReconcileResult> Reconciler::Once(ThingSpaceClient* client) {
  ReconcileResult result;
  auto overdue = co_await db_.Run([&](storage::ProcessingStore& store) {
    auto batch = store.Begin();
    auto rows = batch->ClaimOverdue(100, config_.requests.reconcile_interval);
    batch->Commit();
    return rows;
  });
  for (auto& r : overdue) {
    ++result.checked;
    handlers::RequestProgress progress;
    progress.action = r.action;
    progress.devices = handlers::ParseProgressJson(r.devices_json);
    std::string verdict = "timed_out";
    std::string answer = "no status endpoint for this request";
    json::object payload;
    payload["action"] = r.action;
    payload["deadline"] = r.deadline_at;
    payload["receivedCallbacks"] = r.received_callbacks;
    payload["expectedCallbacks"] = r.expected_callbacks;
    // Spec 5.2: the v1 status endpoint knows single-device provisioning only.
    if (client && handlers::StatusEndpointApplies(progress)) {
      ++result.asked;
      ApiResult api = co_await client->Call(
          http::verb::get, "/accounts/" + r.account + "/requests/" + r.request_id + "/status");
      std::string status;
      if (api.Ok()) {
        boost::system::error_code ec;
        auto v = json::parse(api.body, ec);
        if (!ec && v.is_object())
          if (auto* s = v.as_object().if_contains("status"); s && s->is_string())
            status = std::string(s->as_string());
      }
      answer = api.Ok() ? "status endpoint: " + (status.empty() ? "no status" : status)
                        : "status endpoint failed: " + api.Describe();
      payload["statusAnswer"] = answer;
      auto grace = std::chrono::duration<double>(config_.requests.DeadlineFor(r.action)).count();
      if (status == "Success" || status == "Failure") {
        verdict = status == "Success" ? "succeeded" : "failed";
        for (auto& d : progress.devices)
          if (d.state == handlers::DeviceState::kPending)
            d.state = status == "Success" ? handlers::DeviceState::kSucceeded
                                          : handlers::DeviceState::kFailed;
      } else if (r.overdue_seconds < grace) {
        verdict = "pending";  // ThingSpace still works on it, or did not answer: ask again later
      }
    }
    r.state = verdict;
    r.status_answer = answer;
    r.devices_json = handlers::ProgressJson(progress.devices);
    storage::EventRecord event;
    event.kind = verdict == "timed_out" ? "request.timeout" : "request.status";
    event.status = verdict;
    event.request_id = r.request_id;
    event.account = r.account;
    event.correlation = "matched";
    std::vector<handlers::Device> pending_devices;
    for (const auto& d : progress.devices)
      if (d.state == handlers::DeviceState::kPending || verdict != "timed_out")
        pending_devices.push_back(d.ids);
    event.device_ids_json = handlers::DevicesJson(pending_devices);
    event.payload_json = json::serialize(payload);
    auto rule_set = rules_ ? rules_->Current() : nullptr;
    std::size_t planned = co_await db_.Run([&](storage::ProcessingStore& store) {
      auto batch = store.Begin();
      batch->ConcludeRequest(r);
      std::size_t actions = 0;
      if (verdict != "pending") {
        auto id = batch->InsertEvents({event}).at(0);
        if (rule_set && id != 0) {
          // Rules may act on it (resend a command, alert someone).
          handlers::Event e;
          e.kind = event.kind;
          e.status = event.status;
          e.request_id = r.request_id;
          e.account = r.account;
          e.devices = pending_devices;
          e.payload = payload;
          json::object request{{"requestId", r.request_id},  {"account", r.account},
                               {"action", r.action},         {"origin", r.origin},
                               {"state", verdict},           {"submittedAt", r.submitted_at},
                               {"deadlineAt", r.deadline_at}};
          actions = batch->InsertActions(PlanActions(
              *rule_set, e, {"", id, "", &request, nullptr, config_.account},
              std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
                  .count(),
              r.origin, config_.actions.max_attempts));
        }
      }
      batch->Commit();
      return actions;
    });
    if (planned > 0 && metrics_) metrics_->CountActionsPlanned(planned);
    if (verdict == "timed_out") {
      ++result.timed_out;
      spdlog::warn("request {} ({}) timed out: {} of {} callback(s) after its deadline; {}",
                   r.request_id, r.action, r.received_callbacks, r.expected_callbacks, answer);
    } else if (verdict == "pending") {
      ++result.still_pending;
      spdlog::info("request {} ({}) past its deadline, still pending: {}", r.request_id, r.action,
                   answer);
    } else {
      ++result.concluded;
      spdlog::info("request {} ({}) {} according to ThingSpace ({}); its callback never came",
                   r.request_id, r.action, verdict, answer);
    }
    if (metrics_) metrics_->CountReconciled(verdict);
  }
  co_return result;
}

asio::awaitable<void> Reconciler::Run(ThingSpaceClient* client) {
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor);
  alarm_.Attach(timer);
  auto next_maintenance = std::chrono::steady_clock::now();
  while (!stopping_) {
    try {
      co_await Once(client);
      // Partitions ahead and retention, once per retention.check_interval.
      if (std::chrono::steady_clock::now() >= next_maintenance) {
        next_maintenance = std::chrono::steady_clock::now() + config_.retention.check_interval;
        auto report = co_await db_.Run([&](storage::ProcessingStore&) {
          return storage::pg::RunMaintenance(config_.database.ConnectionString(),
                                             config_.retention.months, false);
        });
        for (const auto& line : report.lines)
          if (line.rfind("dropped", 0) == 0 || line.rfind("deleted 0", 0) != 0)
            spdlog::info("retention: {}", line);
      }
    } catch (const std::exception& e) {
      spdlog::error("reconciler: {}; trying again in {} ms", e.what(),
                    config_.requests.reconcile_interval.count());
    }
    if (stopping_) break;
    timer->expires_after(config_.requests.reconcile_interval);
    co_await timer->async_wait(kUse);
  }
}

void Reconciler::Stop() {
  stopping_ = true;
  alarm_.Ring();
}

}  // namespace tscb::daemon
