#pragma once
// The carrier simulator: a local HTTPS server that behaves like ThingSpace
// for ts-callbackd (OAuth token, session login/logout, the callback registry,
// every endpoint of the API list) and delivers callbacks to the registered
// URLs like ThingSpace does: registered username/password in the body, up to
// 4 attempts with callbackCount counting up, at a configurable interval.
// Faults are set at start (--faults JSON) or through the control API under
// /_sim/ (see tests/sim/README.md). Everything runs on one thread.
#include <boost/json.hpp>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "daemon/http_server.hpp"
#include "daemon/https_client.hpp"
#include "tests/sim/catalogue.hpp"

namespace tscb::sim {

namespace asio = daemon::asio;
namespace http = daemon::http;

struct SimOptions {
  std::string ca_file;  // verifies the callback listeners' certificates
  bool verify_listeners = true;
  std::string app_key, app_secret;     // "" = any accepted
  std::string uws_user, uws_password;  // "" = any accepted
  int token_lifetime_s = 3600;
  int session_idle_s = 1200;
  int retry_interval_ms = 300'000;  // ThingSpace: 5 minutes
  int max_attempts = 4;
  int delivery_timeout_ms = 10'000;
  int delivery_concurrency = 32;
  boost::json::object faults;
};

struct EndpointFault {
  int fail_next = 0;       // the next N calls fail
  double error_rate = 0;   // then this share of calls fails
  int status = 503;        // with this status
  int retry_after = -1;    // Retry-After seconds when >= 0
  int latency_ms = 0;      // added to every call
  std::string error_code;  // errorCode in the failure body ("" = a plain text error)
};

struct Faults {
  std::map<std::string, EndpointFault> endpoints;  // "METHOD /path-prefix" under /api/m2m/v1
  int login_fail_next = 0;
  double duplicate_rate = 0;  // acked callbacks sent once more
  double drop_rate = 0;       // callbacks never sent
  bool out_of_order = false;  // a request's callbacks in reverse order
  int callback_delay_ms = 0;  // before the first attempt
};

class Simulator final : public daemon::HttpHandler {
 public:
  Simulator(asio::io_context& ioc, SimOptions options);

  std::optional<daemon::Response> OnHeader(const http::request_header<>& header,
                                           daemon::RequestContext& ctx) override;
  asio::awaitable<daemon::Response> OnRequest(daemon::Request& request,
                                              daemon::RequestContext& ctx) override;
  void OnRejected(daemon::Rejection, const std::string&) override {}

 private:
  struct Registration {
    std::string url, username, password;
  };
  struct Delivery {
    std::uint64_t id = 0;
    std::string account, service, request_id;
    boost::json::object body;
    std::string state = "queued";  // queued, sending, acked, failed, dropped, no_listener
    std::vector<int> statuses;     // per attempt, 0 = no answer
    bool duplicate = false;
  };
  struct RequestState {
    std::string account;
    int total = 0, done = 0, failed_devices = 0;
  };
  struct LogEntry {
    std::uint64_t seq = 0;
    double at_ms = 0;  // since the simulator started
    std::string method, target, authorization, session, content_type, body;
    int status = 0;
  };

  asio::awaitable<daemon::Response> Api(daemon::Request& req, const std::string& rel,
                                        LogEntry& log);
  daemon::Response Token(daemon::Request& req);
  daemon::Response Control(daemon::Request& req, const std::string& path, const std::string& query);
  asio::awaitable<daemon::Response> Load(daemon::Request& req);

  std::string Enqueue(const std::string& account, const std::string& request_id,
                      std::vector<PlannedCallback> callbacks);
  // `first_attempt` > 1: a resend of a callback whose acknowledgement was lost.
  void StartDelivery(const std::string& account, const std::string& request_id, PlannedCallback cb,
                     int delay_ms, int first_attempt);
  asio::awaitable<void> Deliver(std::uint64_t id, int delay_ms, int first_attempt);
  asio::awaitable<void> Sleep(int ms);
  void Finish(const Delivery& d, bool device_failed);
  void ApplyFaults(const boost::json::object& spec);
  bool Roll(double rate);

  asio::io_context& ioc_;
  SimOptions options_;
  Faults faults_;
  daemon::HttpsClient client_;
  std::mt19937_64 rng_{std::random_device{}()};
  int in_flight_ = 0;

  // OAuth: one token per key for its lifetime (spec 2.1).
  std::string current_token_;
  std::chrono::steady_clock::time_point token_expires_{};
  std::set<std::string> old_tokens_;
  std::map<std::string, std::chrono::steady_clock::time_point> sessions_;  // token -> last use
  std::set<std::string> expired_sessions_;
  std::map<std::string, std::map<std::string, Registration>> registry_;
  std::map<std::string, RequestState> requests_;
  std::map<std::uint64_t, Delivery> deliveries_;
  std::uint64_t next_delivery_ = 1;
  std::deque<LogEntry> log_;
  std::uint64_t next_seq_ = 1;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace tscb::sim
