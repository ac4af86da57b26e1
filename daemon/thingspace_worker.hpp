#pragma once
// The daemon's ThingSpace side: one thread with its own io_context running
// the ThingSpace client and the registration manager, so that calls to the
// carrier never share a thread with the callback listener. Stop() finishes
// the running check, deregisters when configured, logs out, and joins.
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <memory>
#include <thread>

#include "config/config.hpp"
#include "daemon/admin_endpoint.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/metrics.hpp"
#include "daemon/reconciler.hpp"
#include "daemon/registration_manager.hpp"
#include "daemon/thingspace_client.hpp"

namespace tscb::daemon {

class ThingSpaceWorker {
 public:
  ThingSpaceWorker(const config::Config& config, Metrics* metrics);
  ~ThingSpaceWorker();

  // `reconciler` and `dispatcher` (may be null) run on this worker's thread
  // with its client.
  void Start(Reconciler* reconciler = nullptr, Dispatcher* dispatcher = nullptr);
  // Blocks up to `timeout` for the goodbye calls, then stops regardless.
  void Stop(std::chrono::milliseconds timeout);

  // /readyz: logins not stopped; registration state per service.
  bool Readiness(boost::json::object& body) const;
  // Session and registration state into the metrics (a scrape hook).
  void ExportState(Metrics& metrics) const;

 private:
  asio::awaitable<void> GoodBye();

  const config::Config& config_;
  asio::io_context ioc_;
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::unique_ptr<Guard> guard_;  // keeps run() going between checks
  ThingSpaceClient client_;
  std::unique_ptr<RegistrationManager> registration_;
  Reconciler* reconciler_ = nullptr;
  Dispatcher* dispatcher_ = nullptr;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

}  // namespace tscb::daemon
