#include "daemon/thingspace_worker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <future>

#include "daemon/thread_name.hpp"
#include "daemon/time_format.hpp"

namespace tscb::daemon {
namespace {

std::string Iso8601(std::chrono::system_clock::time_point t) {
  return t == std::chrono::system_clock::time_point{} ? std::string() : IsoUtc(t);
}

}  // namespace

ThingSpaceWorker::ThingSpaceWorker(const config::Config& config, Metrics* metrics)
    : config_(config),
      ioc_(1),
      guard_(std::make_unique<Guard>(ioc_.get_executor())),
      client_(ioc_, config.thingspace, metrics) {
  if (config.registration.enabled)
    registration_ = std::make_unique<RegistrationManager>(ioc_, client_, config, metrics);
}

ThingSpaceWorker::~ThingSpaceWorker() {
  if (thread_.joinable()) Stop(std::chrono::seconds(1));
}

void ThingSpaceWorker::Start(Reconciler* reconciler, Dispatcher* dispatcher) {
  reconciler_ = reconciler;
  dispatcher_ = dispatcher;
  if (reconciler_) asio::co_spawn(ioc_, reconciler_->Run(&client_), asio::detached);
  if (dispatcher_) asio::co_spawn(ioc_, dispatcher_->Run(&client_), asio::detached);
  if (registration_) {
    asio::co_spawn(ioc_, registration_->Run(), asio::detached);
  } else {
    spdlog::info("registration.enabled is false: callback registrations are not checked");
  }
  thread_ = std::thread([this] {
    NameThisThread("tscb-thingspace");
    ioc_.run();
    done_ = true;
  });
}

asio::awaitable<void> ThingSpaceWorker::GoodBye() {
  if (reconciler_) reconciler_->Stop();
  if (dispatcher_) dispatcher_->Stop();
  client_.Shutdown();  // a retry waiting for its backoff gives up now
  // Actions in flight get their answer recorded if it comes soon; otherwise
  // their leases expire and the next dispatcher decides (safe: again;
  // unsafe: needs_review).
  if (dispatcher_) co_await dispatcher_->Drain(std::chrono::seconds(3));
  if (registration_) {
    registration_->Stop();
    if (config_.registration.deregister_on_shutdown) {
      for (const auto& s : config_.services) {
        auto r = co_await registration_->Deregister(s.name);
        if (r.Ok())
          spdlog::info("registration: {} deregistered (registration.deregister_on_shutdown)",
                       s.name);
        else
          spdlog::warn("registration: deregistering {} failed: {}", s.name, r.Describe());
      }
    }
  }
  if (config_.thingspace.logout_on_shutdown) co_await client_.Logout();
}

void ThingSpaceWorker::Stop(std::chrono::milliseconds timeout) {
  if (!thread_.joinable()) return;
  std::promise<void> finished;
  auto future = finished.get_future();
  asio::co_spawn(ioc_, GoodBye(), [&finished](std::exception_ptr) { finished.set_value(); });
  if (future.wait_for(timeout) != std::future_status::ready)
    spdlog::warn("thingspace: shutdown calls did not finish within {} ms; stopping anyway",
                 timeout.count());
  // Let a check in flight end by itself for a moment; then stop regardless.
  guard_.reset();
  for (int i = 0; i < 20 && !done_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ioc_.stop();
  thread_.join();
}

void ThingSpaceWorker::ExportState(Metrics& metrics) const {
  metrics.SetThingSpaceSession(client_.Status().has_session);
  if (registration_)
    for (const auto& s : registration_->Snapshot())
      metrics.SetRegistrationState(s.service, s.state);
}

bool ThingSpaceWorker::Readiness(boost::json::object& body) const {
  AuthStatus auth = client_.Status();
  boost::json::object ts{{"logins_stopped", auth.logins_stopped},
                         {"failed_logins", auth.failed_logins},
                         {"session", auth.has_session}};
  if (!auth.last_error.empty()) ts["last_error"] = auth.last_error;
  body["thingspace"] = std::move(ts);
  if (registration_) {
    boost::json::object services;
    for (const auto& s : registration_->Snapshot()) {
      boost::json::object o{{"state", s.state}};
      if (!s.url.empty()) o["url"] = s.url;
      if (!s.detail.empty()) o["detail"] = s.detail;
      if (auto at = Iso8601(s.checked_at); !at.empty()) o["checked_at"] = at;
      services[s.service] = std::move(o);
    }
    body["registration"] = std::move(services);
  }
  // Registration trouble is reported, not made fatal: callbacks already
  // registered here keep arriving. Stopped logins need a person.
  return !auth.logins_stopped;
}

}  // namespace tscb::daemon
