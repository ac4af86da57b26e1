#pragma once
// The ThingSpace Connectivity Management client (DESIGN.md section 7, spec
// sections 2 and 7): OAuth2 client-credentials token cached until shortly
// before it expires, the VZ-M2M session from POST /session/login, both
// renewed once when a call says they went stale, one renewal shared by every
// caller waiting for it (single flight). Logins stop after
// `max_failed_logins` failures in a row (5 lock the UWS account for good)
// until the daemon is restarted. Each call goes through a circuit breaker, a
// per-endpoint rate and concurrency limit, and retries with backoff (and
// Retry-After) on transport errors, 408, 429 and 5xx.
//
// Runs on one single-threaded io_context; Call() and Logout() only from its
// thread. Status() may be read from any thread.
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>

#include "config/config.hpp"
#include "daemon/https_client.hpp"
#include "daemon/metrics.hpp"
#include "handlers/api_outcome.hpp"
#include "handlers/backoff.hpp"
#include "handlers/circuit_breaker.hpp"
#include "handlers/token_bucket.hpp"

namespace tscb::daemon {

struct ApiResult {
  handlers::ApiOutcome outcome;  // kSuccess, or why not (kRetryable after the last attempt)
  std::string body;              // the answer's body (success or error)
  int attempts = 0;              // HTTP exchanges made, renewals included
  // Not idempotent calls only: the last attempt may have been carried out
  // although no success came back (timeout, 500...), so it was not repeated.
  bool maybe_performed = false;
  bool Ok() const { return outcome.verdict == handlers::ApiVerdict::kSuccess; }
  std::string Describe() const;  // "HTTP 400 UnifiedWebService...: message" for logs
};

struct AuthStatus {
  bool logins_stopped = false;  // too many failed logins in a row
  int failed_logins = 0;        // in a row
  bool has_session = false;
  std::string last_error;  // last auth failure, "" when fine
};

class ThingSpaceClient {
 public:
  ThingSpaceClient(asio::io_context& ioc, const config::ThingSpaceConfig& config, Metrics* metrics);
  ~ThingSpaceClient();

  // `path` is under thingspace.m2m_url, e.g. "/callbacks/0000123456-00001"
  // ("/v2/..." goes under the v2 base). A call that is not `idempotent`
  // (sending an SMS, activating) is repeated only after answers that say it
  // was not carried out: no connection, 429, 503, an expired token or
  // session; never after a timeout or another 5xx.
  asio::awaitable<ApiResult> Call(http::verb method, std::string path, std::string body = {},
                                  bool idempotent = true);
  // POST /session/logout when a session is open; never retried.
  asio::awaitable<void> Logout();

  AuthStatus Status() const;
  // From now on nothing is retried: calls waiting for a retry give up, new
  // calls get one attempt.
  void Shutdown();

 private:
  struct Limiter;
  struct Flight;
  asio::awaitable<handlers::ApiOutcome> EnsureToken(bool force);
  asio::awaitable<handlers::ApiOutcome> EnsureSession(bool force, const std::string& stale);
  asio::awaitable<handlers::ApiOutcome> FetchToken();
  asio::awaitable<handlers::ApiOutcome> Login();
  Limiter& LimiterFor(const std::string& path);
  asio::awaitable<void> Sleep(std::chrono::milliseconds delay);
  void SetAuthError(const std::string& error);

  asio::io_context& ioc_;
  const config::ThingSpaceConfig& config_;
  Metrics* metrics_;
  HttpsClient http_;
  std::mt19937_64 rng_;
  handlers::Backoff backoff_;
  handlers::CircuitBreaker breaker_;

  std::string access_token_;
  std::chrono::steady_clock::time_point token_renew_at_{};
  std::chrono::steady_clock::time_point token_expires_at_{};
  std::string session_token_;
  std::shared_ptr<Flight> token_flight_;
  std::shared_ptr<Flight> session_flight_;
  std::map<std::string, std::unique_ptr<Limiter>> limiters_;
  bool stopping_ = false;
  std::set<asio::steady_timer*> sleepers_;

  std::atomic<int> failed_logins_{0};
  std::atomic<bool> logins_stopped_{false};
  std::atomic<bool> has_session_{false};
  mutable std::mutex error_mu_;
  std::string last_error_;
};

}  // namespace tscb::daemon
