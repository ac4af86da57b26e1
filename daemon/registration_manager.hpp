#pragma once
// Keeps each configured callback service registered at this daemon's public
// URL (spec 3.1-3.3): lists the account's registrations, plans with
// handlers::PlanRegistrations, and applies the plan (POST /callbacks, or
// DELETE then POST to move one). Runs at start and every
// registration.interval; a failed check is retried sooner, with backoff.
// Used by the daemon (Run) and by `ts-callbackd register` (Check).
//
// Run/Check/Stop on the ThingSpace client's thread; Snapshot from any thread.
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/metrics.hpp"
#include "daemon/thingspace_client.hpp"
#include "handlers/registration_plan.hpp"

namespace tscb::daemon {

struct ServiceRegistration {
  std::string service;
  std::string state = "unknown";  // registered, foreign, failed, unknown
  std::string url;                // where ThingSpace sends it now ("" if nowhere)
  std::string detail;             // last error or what was done
  std::chrono::system_clock::time_point checked_at{};
};

struct CheckResult {
  bool ok = false;    // listed, and every step that was tried succeeded
  std::string error;  // why not
  std::vector<handlers::PlannedRegistration> plan;
  int changes = 0;  // registrations sent
};

class RegistrationManager {
 public:
  RegistrationManager(asio::io_context& ioc, ThingSpaceClient& client, const config::Config& config,
                      Metrics* metrics);

  // One check; `apply` false only plans (register --dry-run).
  asio::awaitable<CheckResult> Check(bool apply);
  // Deregisters one service (DELETE /callbacks/{account}/name/{service}).
  asio::awaitable<ApiResult> Deregister(const std::string& service);
  // Checks now and then every interval until Stop().
  asio::awaitable<void> Run();
  void Stop();

  std::vector<ServiceRegistration> Snapshot() const;
  // The URL this daemon registers for `service`.
  std::string UrlFor(const std::string& service) const;

 private:
  asio::awaitable<ApiResult> Register(const handlers::WantedRegistration& want);
  void Record(const std::string& service, const std::string& state, const std::string& url,
              const std::string& detail);

  asio::io_context& ioc_;
  ThingSpaceClient& client_;
  const config::Config& config_;
  Metrics* metrics_;
  std::vector<handlers::WantedRegistration> wanted_;
  bool stopping_ = false;
  std::unique_ptr<asio::steady_timer> wait_;

  mutable std::mutex mu_;
  std::vector<ServiceRegistration> states_;
};

// The plan as a table for people (register --dry-run).
std::string FormatPlan(const std::vector<handlers::PlannedRegistration>& plan,
                       const RegistrationManager& manager);

}  // namespace tscb::daemon
