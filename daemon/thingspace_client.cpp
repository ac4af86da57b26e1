#include "daemon/thingspace_client.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <deque>

namespace tscb::daemon {

using handlers::ApiOutcome;
using handlers::ApiVerdict;
using Clock = std::chrono::steady_clock;

namespace {

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// A string member of a JSON object body, "" when absent or not JSON.
std::string JsonString(const std::string& body, const char* key) {
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object()) return {};
  auto* found = value.as_object().if_contains(key);
  return found && found->is_string() ? std::string(found->as_string()) : std::string();
}

std::int64_t JsonInt(const std::string& body, const char* key, std::int64_t fallback) {
  boost::system::error_code ec;
  auto value = boost::json::parse(body, ec);
  if (ec || !value.is_object()) return fallback;
  auto* found = value.as_object().if_contains(key);
  if (found && found->is_int64()) return found->as_int64();
  if (found && found->is_string()) {
    try {
      return std::stoll(std::string(found->as_string()));
    } catch (...) {
    }
  }
  return fallback;
}

// The M2M base is .../api/m2m/v1; "/v2/..." paths go under .../api/m2m/v2.
std::string UrlFor(const std::string& m2m_url, const std::string& path) {
  if (path.rfind("/v2/", 0) == 0 && m2m_url.ends_with("/v1"))
    return m2m_url.substr(0, m2m_url.size() - 3) + path;
  return m2m_url + path;
}

ApiOutcome Success() {
  ApiOutcome out;
  out.verdict = ApiVerdict::kSuccess;
  return out;
}

std::string DescribeOutcome(const ApiOutcome& outcome) {
  ApiResult r;
  r.outcome = outcome;
  return r.Describe();
}

ApiOutcome Refused(const std::string& why) {
  ApiOutcome out;
  out.verdict = ApiVerdict::kRetryable;
  out.error_message = why;
  return out;
}

// The path without query, for logs and limiter keys.
std::string PathOnly(const std::string& path) { return path.substr(0, path.find('?')); }

}  // namespace

std::string ApiResult::Describe() const {
  std::string text = outcome.http_status ? "HTTP " + std::to_string(outcome.http_status)
                                         : std::string("no answer");
  if (!outcome.error_code.empty()) text += " " + outcome.error_code;
  if (!outcome.error_message.empty()) text += ": " + outcome.error_message;
  return text;
}

// Shared by everyone waiting for one token fetch or login.
struct ThingSpaceClient::Flight {
  explicit Flight(asio::io_context& ioc) : done(ioc, Clock::time_point::max()) {}
  asio::steady_timer done;
  ApiOutcome result;
};

struct ThingSpaceClient::Limiter {
  Limiter(const config::EndpointLimit& limit, Clock::time_point now)
      : bucket(limit.rate, limit.burst, now), max_in_flight(limit.concurrency) {}
  handlers::TokenBucket bucket;
  int max_in_flight;
  int in_flight = 0;
  std::deque<asio::steady_timer*> waiting;
};

namespace {

// Keeps as many idle connections as calls may be in flight at once, so that
// a busy period never pays a TLS handshake per call.
ClientOptions PoolOptions(const config::ThingSpaceConfig& config) {
  ClientOptions o{config.ca_file, true, config.connect_timeout, config.request_timeout};
  std::size_t most = static_cast<std::size_t>(config.default_limit.concurrency);
  for (const auto& l : config.limits)
    most = std::max(most, static_cast<std::size_t>(l.concurrency));
  o.max_idle_per_host = std::max<std::size_t>(o.max_idle_per_host, most);
  return o;
}

}  // namespace

ThingSpaceClient::ThingSpaceClient(asio::io_context& ioc, const config::ThingSpaceConfig& config,
                                   Metrics* metrics)
    : ioc_(ioc),
      config_(config),
      metrics_(metrics),
      http_(ioc.get_executor(), PoolOptions(config)),
      rng_(std::random_device{}()),
      backoff_(handlers::BackoffPolicy{config.retry_initial, config.retry_max, 2.0},
               [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }),
      breaker_(
          handlers::CircuitBreaker::Policy{config.breaker_failures, config.breaker_open_for, 1}) {}

ThingSpaceClient::~ThingSpaceClient() = default;

AuthStatus ThingSpaceClient::Status() const {
  AuthStatus s;
  s.logins_stopped = logins_stopped_.load();
  s.failed_logins = failed_logins_.load();
  s.has_session = has_session_.load();
  std::lock_guard lock(error_mu_);
  s.last_error = last_error_;
  return s;
}

void ThingSpaceClient::SetAuthError(const std::string& error) {
  std::lock_guard lock(error_mu_);
  last_error_ = error;
}

asio::awaitable<void> ThingSpaceClient::Sleep(std::chrono::milliseconds delay) {
  if (stopping_) co_return;
  asio::steady_timer timer(ioc_, delay);
  sleepers_.insert(&timer);
  co_await timer.async_wait(kUse);
  sleepers_.erase(&timer);
}

void ThingSpaceClient::Shutdown() {
  stopping_ = true;
  for (auto* timer : sleepers_) timer->cancel();
  for (auto& [key, limiter] : limiters_)
    for (auto* waiter : limiter->waiting) waiter->cancel();
}

ThingSpaceClient::Limiter& ThingSpaceClient::LimiterFor(const std::string& path) {
  const config::EndpointLimit* best = &config_.default_limit;
  // By default every endpoint has its own limiter: the path with its
  // account names and ids reduced to {}, so that status polls of a thousand
  // requests share one (and the map does not grow with every requestId).
  std::string key = Metrics::EndpointOf(path);
  std::size_t best_len = 0;
  for (const auto& limit : config_.limits) {
    if (path.rfind(limit.path, 0) == 0 && limit.path.size() >= best_len) {
      best = &limit;
      best_len = limit.path.size();
      key = "limit:" + limit.path;
    }
  }
  auto& slot = limiters_[key];
  if (!slot) slot = std::make_unique<Limiter>(*best, Clock::now());
  return *slot;
}

asio::awaitable<ApiOutcome> ThingSpaceClient::FetchToken() {
  ClientRequest req;
  req.method = http::verb::post;
  req.url = config_.oauth_url;
  req.headers = {{"Authorization",
                  "Basic " + Base64(config_.app_key.Reveal() + ":" + config_.app_secret.Reveal())},
                 {"Content-Type", "application/x-www-form-urlencoded"},
                 {"Accept", "application/json"}};
  req.body = "grant_type=client_credentials";
  const auto asked_at = Clock::now();
  auto res = co_await http_.Send(std::move(req));
  ApiOutcome outcome = OutcomeOf(res);
  std::string token = outcome.verdict == ApiVerdict::kSuccess ? JsonString(res.body, "access_token")
                                                              : std::string();
  if (outcome.verdict == ApiVerdict::kSuccess && token.empty()) {
    outcome.verdict = ApiVerdict::kFinal;
    outcome.error_message = "token answer without access_token";
  }
  if (outcome.verdict != ApiVerdict::kSuccess) {
    if (metrics_) metrics_->CountLogin("token_failed");
    std::string why = "OAuth token request failed: " + DescribeOutcome(outcome);
    spdlog::error("thingspace: {}", why);
    SetAuthError(why);
    co_return outcome;
  }
  // One hour from first issue; asking again inside the hour returns the same
  // token (spec 2.1), so renew a margin before the end, counted from the
  // first issue (from when we asked, so never later than the gateway's).
  // A repeat answer with the same token cannot be improved on: keep it
  // until it expires, then ask again.
  std::chrono::milliseconds lifetime(
      1000 * std::clamp<std::int64_t>(JsonInt(res.body, "expires_in", 3600), 1, 3600));
  if (token != access_token_ || token_expires_at_ == Clock::time_point{}) {
    token_expires_at_ = asked_at + lifetime;
    auto margin = std::min<std::chrono::milliseconds>(config_.token_refresh_margin, lifetime / 2);
    token_renew_at_ = token_expires_at_ - margin;
  } else {
    token_renew_at_ = token_expires_at_;
  }
  access_token_ = token;
  auto renew_in =
      std::chrono::duration_cast<std::chrono::seconds>(token_renew_at_ - Clock::now()).count();
  spdlog::info("thingspace: OAuth token obtained, renewed in {} s",
               std::max<long long>(renew_in, 0));
  if (metrics_) metrics_->CountLogin("token_ok");
  co_return outcome;
}

asio::awaitable<ApiOutcome> ThingSpaceClient::EnsureToken(bool force) {
  if (!force && !access_token_.empty() && Clock::now() < token_renew_at_) co_return Success();
  if (auto flight = token_flight_) {
    co_await flight->done.async_wait(kUse);
    co_return flight->result;
  }
  auto flight = std::make_shared<Flight>(ioc_);
  token_flight_ = flight;
  flight->result = co_await FetchToken();
  token_flight_.reset();
  flight->done.cancel();
  co_return flight->result;
}

asio::awaitable<ApiOutcome> ThingSpaceClient::Login() {
  for (int renewals = 0;; ++renewals) {
    ApiOutcome token = co_await EnsureToken(renewals > 0);
    if (token.verdict != ApiVerdict::kSuccess) co_return token;
    ClientRequest req;
    req.method = http::verb::post;
    req.url = config_.m2m_url + "/session/login";
    req.headers = {{"Authorization", "Bearer " + access_token_},
                   {"Content-Type", "application/json"},
                   {"Accept", "application/json"}};
    req.body = boost::json::serialize(boost::json::object{{"username", config_.username},
                                                          {"password", config_.password.Reveal()}});
    auto res = co_await http_.Send(std::move(req));
    ApiOutcome outcome = OutcomeOf(res);
    if (outcome.verdict == ApiVerdict::kRenewToken && renewals == 0) continue;
    std::string session = outcome.verdict == ApiVerdict::kSuccess
                              ? JsonString(res.body, "sessionToken")
                              : std::string();
    if (outcome.verdict == ApiVerdict::kSuccess && session.empty()) {
      outcome.verdict = ApiVerdict::kFinal;
      outcome.error_message = "login answer without sessionToken";
    }
    if (outcome.verdict == ApiVerdict::kSuccess) {
      session_token_ = session;
      has_session_ = true;
      failed_logins_ = 0;
      SetAuthError({});
      if (metrics_) metrics_->CountLogin("session_ok");
      spdlog::info("thingspace: session started for UWS user {}", config_.username);
      co_return outcome;
    }
    // A refusal the login service itself gave counts towards the lock-out
    // (spec 2.2); transport errors, 408, 429 and 5xx never reached a verdict
    // on the credentials and are retried like any call.
    bool counts = outcome.http_status >= 400 && outcome.http_status < 500 &&
                  outcome.verdict != ApiVerdict::kRetryable &&
                  outcome.verdict != ApiVerdict::kRenewToken;
    std::string why = "login failed: " + DescribeOutcome(outcome);
    SetAuthError(why);
    if (!counts) {
      if (metrics_) metrics_->CountLogin("session_unavailable");
      spdlog::warn("thingspace: {}", why);
      co_return outcome;
    }
    int failures = ++failed_logins_;
    if (metrics_) metrics_->CountLogin("session_failed");
    if (failures >= config_.max_failed_logins) {
      logins_stopped_ = true;
      if (metrics_) metrics_->LoginLocked().Set(1);
      spdlog::critical(
          "thingspace: {} ({} failed logins in a row); no more logins until restart, because 5 "
          "lock the UWS account for good. Check thingspace.username/password, then restart",
          why, failures);
    } else {
      spdlog::error("thingspace: {} ({} of at most {} in a row)", why, failures,
                    config_.max_failed_logins);
    }
    outcome.verdict = ApiVerdict::kFinal;
    co_return outcome;
  }
}

asio::awaitable<ApiOutcome> ThingSpaceClient::EnsureSession(bool force, const std::string& stale) {
  if (!session_token_.empty() && (!force || session_token_ != stale)) co_return Success();
  if (auto flight = session_flight_) {
    co_await flight->done.async_wait(kUse);
    co_return flight->result;
  }
  if (logins_stopped_) {
    ApiOutcome out;
    out.verdict = ApiVerdict::kFinal;
    out.error_message = "logins stopped after " + std::to_string(failed_logins_.load()) +
                        " failures in a row; restart after fixing the credentials";
    co_return out;
  }
  auto flight = std::make_shared<Flight>(ioc_);
  session_flight_ = flight;
  session_token_.clear();
  has_session_ = false;
  flight->result = co_await Login();
  session_flight_.reset();
  flight->done.cancel();
  co_return flight->result;
}

asio::awaitable<ApiResult> ThingSpaceClient::Call(http::verb method, std::string path,
                                                  std::string body, bool idempotent) {
  ApiResult result;
  Limiter& limiter = LimiterFor(PathOnly(path));
  bool renewed_token = false;
  bool renewed_session = false;
  int attempt = 0;
  auto finish = [&](const char* label) {
    if (metrics_) metrics_->CountApiCall(std::string(http::to_string(method)), path, label);
    return result;
  };
  while (true) {
    // Shutting down: a call's first attempt still goes out (deregistration,
    // logout), but nothing is retried.
    if (stopping_ && result.attempts > 0) {
      result.outcome = Refused("shutting down: not retried");
      co_return finish("shutting_down");
    }
    if (!breaker_.Allow(Clock::now())) {
      result.outcome = Refused("circuit breaker open after repeated failures");
      co_return finish("circuit_open");
    }
    ApiOutcome token = co_await EnsureToken(false);
    if (token.verdict == ApiVerdict::kSuccess) token = co_await EnsureSession(false, {});
    if (token.verdict != ApiVerdict::kSuccess) {
      result.outcome = token;
      if (token.verdict == ApiVerdict::kRetryable) breaker_.OnFailure(Clock::now());
      co_return finish("not_logged_in");
    }

    // Concurrency, then rate.
    while (limiter.in_flight >= limiter.max_in_flight && !stopping_) {
      asio::steady_timer wake(ioc_, Clock::time_point::max());
      limiter.waiting.push_back(&wake);
      co_await wake.async_wait(kUse);
      std::erase(limiter.waiting, &wake);
    }
    ++limiter.in_flight;
    while (auto wait = limiter.bucket.TryTake(Clock::now())) co_await Sleep(*wait);

    const std::string session_used = session_token_;
    ClientRequest req;
    req.method = method;
    req.url = UrlFor(config_.m2m_url, path);
    req.headers = {{"Authorization", "Bearer " + access_token_},
                   {"VZ-M2M-Token", session_used},
                   {"Content-Type", "application/json"},
                   {"Accept", "application/json"}};
    req.body = body;
    auto res = co_await http_.Send(std::move(req));
    --limiter.in_flight;
    if (!limiter.waiting.empty()) {
      limiter.waiting.front()->cancel();
      limiter.waiting.pop_front();
    }
    ++result.attempts;
    result.maybe_performed = !idempotent && MaybeCarriedOut(res);
    result.outcome = OutcomeOf(res);
    result.body = std::move(res.body);

    switch (result.outcome.verdict) {
      case ApiVerdict::kSuccess:
        breaker_.OnSuccess();
        if (metrics_) metrics_->CircuitOpen().Set(0);
        co_return finish("success");
      case ApiVerdict::kRenewToken:
        if (renewed_token) break;
        renewed_token = true;
        spdlog::info("thingspace: {} {}: OAuth token refused, fetching a new one",
                     http::to_string(method), PathOnly(path));
        co_await EnsureToken(true);
        continue;
      case ApiVerdict::kRenewSession:
        if (renewed_session) break;
        renewed_session = true;
        spdlog::info("thingspace: {} {}: session expired ({}), logging in again",
                     http::to_string(method), PathOnly(path), result.outcome.error_code);
        co_await EnsureSession(true, session_used);
        continue;
      case ApiVerdict::kRetryable: {
        breaker_.OnFailure(Clock::now());
        if (breaker_.GetState(Clock::now()) == handlers::CircuitBreaker::State::kOpen && metrics_)
          metrics_->CircuitOpen().Set(1);
        if (result.maybe_performed) {
          spdlog::warn("thingspace: {} {}: {}; not repeated: the call may have been carried out",
                       http::to_string(method), PathOnly(path), result.Describe());
          co_return finish("maybe_performed");
        }
        if (++attempt >= config_.max_attempts) co_return finish("retryable");
        auto delay = backoff_.Delay(attempt, result.outcome.retry_after);
        spdlog::warn("thingspace: {} {}: {}; retry {} of {} in {} ms", http::to_string(method),
                     PathOnly(path), result.Describe(), attempt, config_.max_attempts - 1,
                     delay.count());
        co_await Sleep(delay);
        continue;
      }
      case ApiVerdict::kFinal:
        break;
    }
    // A final answer: ThingSpace is up and said no; that is not an outage.
    breaker_.OnSuccess();
    co_return finish("final");
  }
}

asio::awaitable<void> ThingSpaceClient::Logout() {
  if (session_token_.empty()) co_return;
  ClientRequest req;
  req.method = http::verb::post;
  req.url = config_.m2m_url + "/session/logout";
  req.headers = {{"Authorization", "Bearer " + access_token_},
                 {"VZ-M2M-Token", session_token_},
                 {"Accept", "application/json"}};
  auto res = co_await http_.Send(std::move(req));
  session_token_.clear();
  has_session_ = false;
  if (res.status >= 200 && res.status < 300)
    spdlog::info("thingspace: session ended (logout)");
  else
    spdlog::warn("thingspace: logout failed: {}",
                 res.status ? "HTTP " + std::to_string(res.status) : res.error);
  http_.CloseIdle();
}

}  // namespace tscb::daemon
