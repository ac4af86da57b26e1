#include "daemon/registration_manager.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <random>
#include <sstream>

#include "handlers/backoff.hpp"
#include "handlers/json_fields.hpp"

namespace tscb::daemon {
namespace {

using handlers::RegistrationStep;

// "https://host:port/" of the public URL: a registration on our host with
// another path is ours and drifted; one on another host is someone else's.
std::string OriginOf(const std::string& url) {
  auto start = url.find("://");
  if (start == std::string::npos) return url;
  auto slash = url.find('/', start + 3);
  return slash == std::string::npos ? url + "/" : url.substr(0, slash + 1);
}

// GET /callbacks/{account}: an array of {accountName, serviceName, url,
// username, password} (spec 3.2). Throws std::runtime_error on another shape.
std::vector<handlers::ListedRegistration> ParseListing(const std::string& body) {
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec) throw std::runtime_error("callback list is not JSON");
  const boost::json::array* items = value.if_array();
  if (!items && value.is_object()) {  // tolerate a wrapper object holding the list
    for (auto& [key, member] : value.as_object())
      if (member.is_array()) items = &member.as_array();
  }
  if (!items) throw std::runtime_error("callback list is not a JSON array");
  std::vector<handlers::ListedRegistration> out;
  for (const auto& item : *items) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    handlers::ListedRegistration l;
    l.service = handlers::StringField(o, "serviceName");
    if (l.service.empty()) l.service = handlers::StringField(o, "name");
    l.url = handlers::StringField(o, "url");
    l.username = handlers::StringField(o, "username");
    l.password = handlers::StringField(o, "password");
    if (!l.service.empty()) out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

RegistrationManager::RegistrationManager(asio::io_context& ioc, ThingSpaceClient& client,
                                         const config::Config& config, Metrics* metrics)
    : ioc_(ioc), client_(client), config_(config), metrics_(metrics) {
  for (const auto& s : config.services) {
    wanted_.push_back({s.name, UrlFor(s.name), s.username, s.password});
    ServiceRegistration state;
    state.service = s.name;
    states_.push_back(std::move(state));
  }
}

std::string RegistrationManager::UrlFor(const std::string& service) const {
  return config_.registration.public_url + "/" + service;
}

std::vector<ServiceRegistration> RegistrationManager::Snapshot() const {
  std::lock_guard lock(mu_);
  return states_;
}

void RegistrationManager::Record(const std::string& service, const std::string& state,
                                 const std::string& url, const std::string& detail) {
  std::lock_guard lock(mu_);
  for (auto& s : states_) {
    if (s.service != service) continue;
    s.state = state;
    s.url = url;
    s.detail = detail;
    s.checked_at = std::chrono::system_clock::now();
  }
}

asio::awaitable<ApiResult> RegistrationManager::Register(const handlers::WantedRegistration& want) {
  boost::json::object body{{"name", want.service}, {"url", want.url}};
  if (!want.username.empty()) body["username"] = want.username;
  if (!want.password.Empty()) body["password"] = want.password.Reveal();
  co_return co_await client_.Call(http::verb::post, "/callbacks/" + config_.account,
                                  boost::json::serialize(body));
}

asio::awaitable<ApiResult> RegistrationManager::Deregister(const std::string& service) {
  co_return co_await client_.Call(http::verb::delete_,
                                  "/callbacks/" + config_.account + "/name/" + service);
}

asio::awaitable<CheckResult> RegistrationManager::Check(bool apply) {
  CheckResult result;
  ApiResult listing = co_await client_.Call(http::verb::get, "/callbacks/" + config_.account);
  if (!listing.Ok()) {
    result.error = "listing callbacks failed: " + listing.Describe();
    co_return result;
  }
  std::vector<handlers::ListedRegistration> listed;
  try {
    listed = ParseListing(listing.body);
  } catch (const std::exception& e) {
    result.error = e.what();
    co_return result;
  }
  result.plan =
      handlers::PlanRegistrations(wanted_, listed, OriginOf(config_.registration.public_url),
                                  config_.registration.replace_foreign);
  result.ok = true;
  if (!apply) co_return result;

  for (std::size_t i = 0; i < result.plan.size(); ++i) {
    const auto& step = result.plan[i];
    const auto& want = wanted_[i];
    switch (step.step) {
      case RegistrationStep::kKeep:
        Record(step.service, "registered", want.url, "up to date");
        if (metrics_) metrics_->CountRegistration(step.service, "kept");
        continue;
      case RegistrationStep::kLeaveForeign:
        spdlog::error(
            "registration: {} is registered to {}, which is not this daemon's; left alone "
            "(set registration.replace_foreign to take it over)",
            step.service, step.current_url);
        Record(step.service, "foreign", step.current_url, step.reason);
        if (metrics_) metrics_->CountRegistration(step.service, "foreign");
        continue;
      case RegistrationStep::kReplace:
      case RegistrationStep::kTakeOver: {
        // One endpoint per service per account: deregister, then register.
        spdlog::warn("registration: {} drifted ({}): was {}, registering {}", step.service,
                     step.reason, step.current_url, want.url);
        ApiResult removed = co_await Deregister(step.service);
        if (!removed.Ok())
          spdlog::warn("registration: deregistering {} before re-registering failed: {}",
                       step.service, removed.Describe());
        break;
      }
      case RegistrationStep::kRegister:
        break;
    }
    // Missing although we registered it before: ThingSpace lost it (drift).
    bool was_registered = false;
    {
      std::lock_guard lock(mu_);
      for (const auto& s : states_)
        if (s.service == step.service) was_registered = s.state == "registered";
    }
    if (step.step == RegistrationStep::kRegister && was_registered)
      spdlog::warn("registration: {} drifted (no longer registered); registering {}", step.service,
                   want.url);
    ApiResult registered = co_await Register(want);
    ++result.changes;
    if (registered.Ok()) {
      bool drift = step.step != RegistrationStep::kRegister || was_registered;
      spdlog::info("registration: {} registered at {}{}", step.service, want.url,
                   drift ? " (drift repaired)" : "");
      Record(step.service, "registered", want.url,
             drift ? "re-registered: " + step.reason : "registered");
      if (metrics_)
        metrics_->CountRegistration(step.service, drift ? "drift_repaired" : "registered");
    } else {
      spdlog::error("registration: registering {} at {} failed: {}", step.service, want.url,
                    registered.Describe());
      Record(step.service, "failed", step.current_url, registered.Describe());
      if (metrics_) metrics_->CountRegistration(step.service, "failed");
      result.ok = false;
      if (result.error.empty()) result.error = step.service + ": " + registered.Describe();
    }
  }
  co_return result;
}

asio::awaitable<void> RegistrationManager::Run() {
  std::mt19937_64 rng(std::random_device{}());
  handlers::Backoff backoff({config_.thingspace.retry_initial, config_.thingspace.retry_max, 2.0},
                            [&] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); });
  int failures = 0;
  wait_ = std::make_unique<asio::steady_timer>(ioc_);
  while (!stopping_) {
    CheckResult r = co_await Check(true);
    if (stopping_) break;
    std::chrono::milliseconds next = config_.registration.interval;
    if (r.ok) {
      failures = 0;
      spdlog::debug("registration: check done, {} change(s)", r.changes);
    } else {
      next = std::min(next, backoff.Delay(++failures));
      spdlog::error("registration: check failed: {}; next try in {} ms", r.error, next.count());
      std::lock_guard lock(mu_);
      for (auto& s : states_)
        if (s.state == "unknown") s.detail = r.error;
    }
    wait_->expires_after(next);
    co_await wait_->async_wait(kUse);
  }
}

void RegistrationManager::Stop() {
  stopping_ = true;
  if (wait_) wait_->cancel();
}

std::string FormatPlan(const std::vector<handlers::PlannedRegistration>& plan,
                       const RegistrationManager& manager) {
  std::ostringstream out;
  for (const auto& p : plan) {
    out << p.service << ": " << handlers::Describe(p.step);
    switch (p.step) {
      case RegistrationStep::kKeep:
        out << " (" << p.current_url << ")";
        break;
      case RegistrationStep::kRegister:
        out << " -> " << manager.UrlFor(p.service);
        break;
      case RegistrationStep::kReplace:
      case RegistrationStep::kTakeOver:
        out << " " << p.current_url << " -> " << manager.UrlFor(p.service) << " (" << p.reason
            << ")";
        break;
      case RegistrationStep::kLeaveForeign:
        out << " " << p.current_url << " (" << p.reason << ")";
        break;
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace tscb::daemon
