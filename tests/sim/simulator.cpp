#include "tests/sim/simulator.hpp"

#include <openssl/evp.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/url/parse.hpp>
#include <cmath>
#include <iostream>
#include <map>
#include <set>
#include <unordered_map>

#include "handlers/json_fields.hpp"
#include "handlers/token_bucket.hpp"

namespace tscb::sim {
namespace json = boost::json;
using daemon::MakeJsonResponse;
using daemon::Request;
using daemon::Response;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kOauthPath = "/api/ts/v1/oauth2/token";
constexpr std::string_view kV1 = "/api/m2m/v1";
constexpr std::string_view kV2 = "/api/m2m/v2";

Response Json(http::status status, const Request& req, const json::value& body) {
  return MakeJsonResponse(status, req.version(), json::serialize(body));
}

// A Connectivity Management error (spec 2.5).
Response M2mError(const Request& req, const std::string& code, const std::string& message,
                  http::status status = http::status::bad_request) {
  return Json(status, req, json::object{{"errorCode", code}, {"errorMessage", message}});
}

// A gateway error (spec 2.5, WSO2 style).
Response GatewayFault(const Request& req, http::status status, const std::string& code,
                      const std::string& message) {
  return Json(status, req,
              json::object{{"fault", json::object{{"code", code},
                                                  {"message", message},
                                                  {"description", message + " (simulator)"}}}});
}

std::string Header(const Request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

std::string Base64Decode(const std::string& in) {
  std::string out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0) return {};
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '\0') out.pop_back();  // padding
  return out;
}

json::object ParseObject(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

std::string Str(const json::object& o, const char* key, std::string fallback = {}) {
  std::string s = handlers::StringField(o, key);
  return s.empty() ? fallback : s;
}

std::int64_t Int(const json::object& o, const char* key, std::int64_t fallback) {
  auto* v = o.if_contains(key);
  if (v && v->is_int64()) return v->as_int64();
  if (v && v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v && v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return fallback;
}

double Num(const json::object& o, const char* key, double fallback) {
  auto* v = o.if_contains(key);
  if (v && v->is_number()) return v->to_number<double>();
  return fallback;
}

}  // namespace

Simulator::Simulator(asio::io_context& ioc, SimOptions options)
    : ioc_(ioc),
      options_(std::move(options)),
      client_(ioc.get_executor(),
              daemon::ClientOptions{options_.ca_file, options_.verify_listeners,
                                    std::chrono::milliseconds(options_.delivery_timeout_ms),
                                    std::chrono::milliseconds(options_.delivery_timeout_ms),
                                    std::chrono::milliseconds(20'000), 1024 * 1024, 512}) {
  ApplyFaults(options_.faults);
}

bool Simulator::Roll(double rate) {
  return rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < rate;
}

void Simulator::ApplyFaults(const json::object& spec) {
  if (spec.contains("clear")) faults_ = Faults{};
  if (auto* e = spec.if_contains("endpoints"); e && e->is_object()) {
    for (const auto& [key, value] : e->as_object()) {
      if (!value.is_object()) continue;
      const auto& o = value.as_object();
      EndpointFault f;
      f.fail_next = static_cast<int>(Int(o, "fail_next", 0));
      f.error_rate = Num(o, "error_rate", 0);
      f.status = static_cast<int>(Int(o, "status", 503));
      f.retry_after = static_cast<int>(Int(o, "retry_after", -1));
      f.latency_ms = static_cast<int>(Int(o, "latency_ms", 0));
      f.error_code = Str(o, "error_code");
      faults_.endpoints[std::string(key)] = f;
    }
  }
  faults_.login_fail_next = static_cast<int>(Int(spec, "login_fail_next", faults_.login_fail_next));
  faults_.duplicate_rate = Num(spec, "duplicate_rate", faults_.duplicate_rate);
  faults_.drop_rate = Num(spec, "drop_rate", faults_.drop_rate);
  if (auto* v = spec.if_contains("out_of_order"); v && v->is_bool())
    faults_.out_of_order = v->as_bool();
  faults_.callback_delay_ms =
      static_cast<int>(Int(spec, "callback_delay_ms", faults_.callback_delay_ms));
  if (auto* v = spec.if_contains("retry_interval_ms"); v && v->is_number())
    options_.retry_interval_ms = static_cast<int>(v->to_number<double>());
}

std::optional<Response> Simulator::OnHeader(const http::request_header<>&,
                                            daemon::RequestContext&) {
  return std::nullopt;
}

asio::awaitable<void> Simulator::Sleep(int ms) {
  if (ms <= 0) co_return;
  asio::steady_timer timer(ioc_, std::chrono::milliseconds(ms));
  co_await timer.async_wait(daemon::kUse);
}

asio::awaitable<Response> Simulator::OnRequest(Request& req, daemon::RequestContext&) {
  std::string target(req.target());
  std::string path = target.substr(0, target.find('?'));
  std::string query =
      target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  if (path.rfind("/_sim/", 0) == 0) {
    if (path == "/_sim/load") co_return co_await Load(req);
    co_return Control(req, path, query);
  }

  LogEntry entry;
  entry.seq = next_seq_++;
  entry.at_ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
  entry.method = std::string(req.method_string());
  entry.target = target;
  entry.authorization = Header(req, "Authorization");
  entry.session = Header(req, "VZ-M2M-Token");
  entry.content_type = Header(req, "Content-Type");
  entry.body = req.body();
  // Logged on arrival (status 0 while it is being answered), so a test can
  // see a request that is still in progress (latency faults).
  const std::uint64_t seq = entry.seq;
  log_.push_back(entry);
  if (log_.size() > 100'000) log_.pop_front();
  Response res;
  if (path == kOauthPath) {
    res = Token(req);
  } else if (path.rfind(kV1, 0) == 0 || path.rfind(kV2, 0) == 0) {
    std::string rel =
        path.rfind(kV1, 0) == 0 ? path.substr(kV1.size()) : "/v2" + path.substr(kV2.size());
    if (!query.empty()) rel += "?" + query;
    res = co_await Api(req, rel, entry);
  } else {
    res = GatewayFault(req, http::status::not_found, "900906", "No matching resource found");
  }
  for (auto it = log_.rbegin(); it != log_.rend(); ++it)
    if (it->seq == seq) {
      it->status = static_cast<int>(res.result_int());
      break;
    }
  co_return res;
}

Response Simulator::Token(Request& req) {
  if (req.method() != http::verb::post)
    return GatewayFault(req, http::status::method_not_allowed, "900906", "Use POST");
  std::string auth = Header(req, "Authorization");
  if (auth.rfind("Basic ", 0) != 0)
    return GatewayFault(req, http::status::unauthorized, "900902", "Missing Credentials");
  std::string pair = Base64Decode(auth.substr(6));
  auto colon = pair.find(':');
  std::string key = pair.substr(0, colon);
  std::string secret = colon == std::string::npos ? "" : pair.substr(colon + 1);
  if ((!options_.app_key.empty() && key != options_.app_key) ||
      (!options_.app_secret.empty() && secret != options_.app_secret))
    return GatewayFault(req, http::status::unauthorized, "900901", "Invalid Credentials");
  if (req.body().find("grant_type=client_credentials") == std::string::npos)
    return Json(http::status::bad_request, req, json::object{{"error", "unsupported_grant_type"}});
  auto now = Clock::now();
  if (current_token_.empty() || now >= token_expires_) {
    if (!current_token_.empty()) old_tokens_.insert(current_token_);
    current_token_ = NewUuid();
    token_expires_ = now + std::chrono::seconds(options_.token_lifetime_s);
  }
  auto left = std::chrono::duration_cast<std::chrono::seconds>(token_expires_ - now).count();
  return Json(http::status::ok, req,
              json::object{{"access_token", current_token_},
                           {"scope", "ts.mtas ts.nw.m2m"},
                           {"token_type", "Bearer"},
                           {"expires_in", left}});
}

asio::awaitable<Response> Simulator::Api(Request& req, const std::string& rel_with_query,
                                         LogEntry&) {
  std::string rel = rel_with_query.substr(0, rel_with_query.find('?'));
  std::string method(req.method_string());

  // Injected faults first: latency, then failures.
  for (auto& [key, fault] : faults_.endpoints) {
    auto space = key.find(' ');
    if (space == std::string::npos || key.substr(0, space) != method ||
        rel.rfind(key.substr(space + 1), 0) != 0)
      continue;
    co_await Sleep(fault.latency_ms);
    bool fail = fault.fail_next > 0 ? (--fault.fail_next, true) : Roll(fault.error_rate);
    if (fail) {
      Response res = fault.error_code.empty()
                         ? daemon::MakeError(static_cast<http::status>(fault.status), req.version(),
                                             "simulated failure")
                         : M2mError(req, fault.error_code, "simulated failure",
                                    static_cast<http::status>(fault.status));
      if (fault.retry_after >= 0)
        res.set(http::field::retry_after, std::to_string(fault.retry_after));
      co_return res;
    }
    break;
  }

  std::map<std::string, std::string> params;
  const Endpoint* endpoint = Match(method, rel, params);
  if (!endpoint)
    co_return GatewayFault(req, http::status::bad_request, "900906",
                           "No matching resource found for given API Request");

  // Gateway: a live OAuth token.
  std::string auth = Header(req, "Authorization");
  if (auth.rfind("Bearer ", 0) != 0)
    co_return GatewayFault(req, http::status::unauthorized, "900902", "Missing Credentials");
  std::string bearer = auth.substr(7);
  if (bearer != current_token_ || Clock::now() >= token_expires_)
    co_return GatewayFault(req, http::status::unauthorized, "900901", "Invalid Credentials");

  json::object body = ParseObject(req.body());
  if (rel == "/session/login") {
    if (faults_.login_fail_next > 0) {
      --faults_.login_fail_next;
      co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.InvalidCredentials",
                         "Login failed: invalid username or password (simulated)");
    }
    if ((!options_.uws_user.empty() && Str(body, "username") != options_.uws_user) ||
        (!options_.uws_password.empty() && Str(body, "password") != options_.uws_password))
      co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.InvalidCredentials",
                         "Login failed: invalid username or password");
    std::string token = NewUuid();
    sessions_[token] = Clock::now();
    co_return Json(http::status::ok, req, json::object{{"sessionToken", token}});
  }

  // Connectivity Management: a live session.
  std::string session = Header(req, "VZ-M2M-Token");
  if (session.empty())
    co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.SessionToken.Format",
                       "VZ-M2M-Token header missing");
  auto it = sessions_.find(session);
  if (it != sessions_.end() &&
      Clock::now() - it->second > std::chrono::seconds(options_.session_idle_s)) {
    expired_sessions_.insert(session);
    sessions_.erase(it);
    it = sessions_.end();
  }
  if (it == sessions_.end()) {
    if (expired_sessions_.count(session))
      co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired",
                         "Session token expired");
    co_return M2mError(req, "UnifiedWebService.INPUT_INVALID.SessionToken.Invalid",
                       "Session token is not valid");
  }
  it->second = Clock::now();

  if (rel == "/session/logout") {
    sessions_.erase(it);
    expired_sessions_.insert(session);
    co_return Json(http::status::ok, req, json::object{{"sessionToken", session}});
  }

  if (endpoint->kind == Kind::kSpecial) {
    std::string account = params["account"];
    if (rel.rfind("/callbacks/", 0) == 0) {
      auto& services = registry_[account];
      if (method == "GET") {
        json::array list;
        for (const auto& [name, r] : services) {
          json::object o{{"accountName", account}, {"serviceName", name}, {"url", r.url}};
          if (!r.username.empty()) o["username"] = r.username;
          if (!r.password.empty()) o["password"] = r.password;
          list.push_back(std::move(o));
        }
        co_return Json(http::status::ok, req, list);
      }
      if (method == "DELETE") {
        std::string service = params["service"];
        if (!services.erase(service))
          co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.CallbackNotFound",
                             "No callback registered for " + service);
        co_return Json(http::status::ok, req,
                       json::object{{"accountName", account}, {"serviceName", service}});
      }
      std::string name = Str(body, "name");
      std::string url = Str(body, "url");
      if (name.empty() || url.empty())
        co_return M2mError(req, "UnifiedWebService.INPUT_INVALID.UnexpectedError",
                           "name and url are required");
      if (Str(body, "username").size() > 40 || Str(body, "password").size() > 40)
        co_return M2mError(req, "UnifiedWebService.INPUT_INVALID.Callback.TooLong",
                           "username and password take at most 40 characters");
      if (auto found = services.find(name); found != services.end() && found->second.url != url)
        co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.CallbackAlreadyRegistered",
                           "Deregister " + name + " before registering another URL");
      services[name] = {url, Str(body, "username"), Str(body, "password")};
      co_return Json(http::status::ok, req,
                     json::object{{"accountName", account}, {"serviceName", name}});
    }
    // Request status, v1 and v2 (spec 5.2, 5.3).
    auto found = requests_.find(params["requestId"]);
    if (found == requests_.end())
      co_return M2mError(req, "UnifiedWebService.REQUEST_FAILED.RequestNotFound",
                         "Unknown request id");
    const RequestState& r = found->second;
    std::string status = r.done < r.total ? "Pending" : r.failed_devices ? "Failure" : "Success";
    json::object answer{{"requestId", found->first}, {"status", status}};
    if (rel.rfind("/v2/", 0) == 0) answer["subrequests"] = json::array{};
    co_return Json(http::status::ok, req, answer);
  }

  if (endpoint->kind == Kind::kSync) {
    if (rel == "/sms/" + params["account"] + "/startCallbacks") {
      PlannedCallback mo;
      if (MakeUnsolicited("EnhancedConnectivityService", params["account"], 1, mo))
        Enqueue(params["account"], "", {std::move(mo)});
    }
    co_return Json(http::status::ok, req, SyncAnswer(*endpoint, params, body));
  }

  std::string account = Str(body, "accountName", "0000000000-00000");
  std::string request_id = NewUuid();
  Enqueue(account, request_id, CallbacksFor(*endpoint, request_id, account, body));
  co_return Json(http::status::ok, req, json::object{{"requestId", request_id}});
}

std::string Simulator::Enqueue(const std::string& account, const std::string& request_id,
                               std::vector<PlannedCallback> callbacks) {
  if (faults_.out_of_order) std::reverse(callbacks.begin(), callbacks.end());
  if (!request_id.empty()) {
    RequestState& r = requests_[request_id];
    r.account = account;
    r.total = static_cast<int>(callbacks.size());
  }
  int delay = faults_.callback_delay_ms;
  for (auto& cb : callbacks) {
    StartDelivery(account, request_id, std::move(cb), delay, 1);
    if (faults_.out_of_order) delay += 20;  // keep the reversed order on the wire
  }
  return request_id;
}

void Simulator::StartDelivery(const std::string& account, const std::string& request_id,
                              PlannedCallback cb, int delay_ms, int first_attempt) {
  bool duplicate = first_attempt > 1;
  Delivery d;
  d.id = next_delivery_++;
  d.account = account;
  d.service = cb.service;
  d.request_id = request_id;
  // Unsolicited callbacks belong to no request of ours: their own requestId.
  if (d.request_id.empty())
    if (auto* own = cb.body.if_contains("requestId"); own && own->is_string())
      d.request_id = std::string(own->as_string());
  d.body = std::move(cb.body);
  d.duplicate = duplicate;
  if (cb.failed) d.body["__failed"] = true;  // stripped before sending
  bool drop = !duplicate && Roll(faults_.drop_rate);
  if (drop) d.state = "dropped";
  auto id = d.id;
  deliveries_.emplace(id, std::move(d));
  if (drop) {
    Finish(deliveries_[id], cb.failed);
    return;
  }
  asio::co_spawn(ioc_, Deliver(id, delay_ms, first_attempt), asio::detached);
}

void Simulator::Finish(const Delivery& d, bool device_failed) {
  if (d.duplicate || d.request_id.empty()) return;
  auto it = requests_.find(d.request_id);
  if (it == requests_.end()) return;
  ++it->second.done;
  if (device_failed) ++it->second.failed_devices;
}

asio::awaitable<void> Simulator::Deliver(std::uint64_t id, int delay_ms, int first_attempt) {
  co_await Sleep(delay_ms);
  for (int attempt = first_attempt; attempt <= options_.max_attempts; ++attempt) {
    while (in_flight_ >= options_.delivery_concurrency) co_await Sleep(5);
    auto found = deliveries_.find(id);
    if (found == deliveries_.end()) co_return;  // /_sim/reset
    Delivery& d = found->second;
    bool device_failed = d.body.contains("__failed");
    auto account = registry_.find(d.account);
    const Registration* reg = nullptr;
    if (account != registry_.end()) {
      auto s = account->second.find(d.service);
      if (s != account->second.end()) reg = &s->second;
    }
    if (!reg) {  // ThingSpace keeps it in its archive; nothing is sent
      d.state = "no_listener";
      Finish(d, device_failed);
      co_return;
    }
    json::object body = d.body;
    body.erase("__failed");
    // Registered credentials first, as ThingSpace copies them (spec 3.6).
    json::object sent{{"username", reg->username}, {"password", reg->password}};
    for (auto& [k, v] : body) sent[k] = v;
    sent["callbackCount"] = attempt;
    sent["maxCallbackThreshold"] = options_.max_attempts;
    daemon::ClientRequest creq;
    creq.method = http::verb::post;
    creq.url = reg->url;
    creq.headers = {{"Content-Type", "application/json"}};
    creq.body = json::serialize(sent);
    d.state = "sending";
    ++in_flight_;
    auto res = co_await client_.Send(std::move(creq));
    --in_flight_;
    auto again_found = deliveries_.find(id);  // the map changed meanwhile
    if (again_found == deliveries_.end()) co_return;
    Delivery& after = again_found->second;
    after.statuses.push_back(res.status);
    if (res.status >= 200 && res.status < 300) {
      after.state = "acked";
      Finish(after, device_failed);
      if (!after.duplicate && attempt < options_.max_attempts && Roll(faults_.duplicate_rate)) {
        // The ack "got lost": ThingSpace sends it again.
        PlannedCallback again{after.service, after.body, false};
        std::string account_name = after.account, request_id = after.request_id;
        StartDelivery(account_name, request_id, std::move(again), 0, attempt + 1);
      }
      co_return;
    }
    if (attempt == options_.max_attempts) {
      after.state = "failed";
      Finish(after, device_failed);
      co_return;
    }
    after.state = "queued";
    co_await Sleep(options_.retry_interval_ms);
  }
}

Response Simulator::Control(Request& req, const std::string& path, const std::string& query) {
  json::object body = ParseObject(req.body());
  if (path == "/_sim/log") {
    std::uint64_t since = 0;
    if (query.rfind("since=", 0) == 0) since = std::stoull(query.substr(6));
    json::array out;
    for (const auto& e : log_) {
      if (e.seq <= since) continue;
      out.push_back(json::object{{"seq", e.seq},
                                 {"at_ms", e.at_ms},
                                 {"method", e.method},
                                 {"target", e.target},
                                 {"authorization", e.authorization},
                                 {"session", e.session},
                                 {"content_type", e.content_type},
                                 {"body", e.body},
                                 {"status", e.status}});
    }
    return Json(http::status::ok, req, json::object{{"requests", out}});
  }
  if (path == "/_sim/deliveries") {
    json::array out;
    json::object counts;
    for (const auto& [id, d] : deliveries_) {
      json::array statuses;
      for (int s : d.statuses) statuses.push_back(s);
      out.push_back(json::object{{"id", id},
                                 {"account", d.account},
                                 {"service", d.service},
                                 {"requestId", d.request_id},
                                 {"state", d.state},
                                 {"duplicate", d.duplicate},
                                 {"statuses", statuses}});
      auto& c = counts[d.state];
      c = (c.is_int64() ? c.as_int64() : 0) + 1;
    }
    return Json(http::status::ok, req, json::object{{"deliveries", out}, {"counts", counts}});
  }
  if (path == "/_sim/registrations") {
    json::object out;
    for (const auto& [account, services] : registry_) {
      json::object s;
      for (const auto& [name, r] : services) s[name] = r.url;
      out[account] = s;
    }
    return Json(http::status::ok, req, out);
  }
  if (req.method() != http::verb::post)
    return daemon::MakeError(http::status::not_found, req.version(), "unknown control path");
  if (path == "/_sim/faults") {
    ApplyFaults(body);
    return Json(http::status::ok, req, json::object{{"ok", true}});
  }
  if (path == "/_sim/reset") {
    log_.clear();
    deliveries_.clear();
    requests_.clear();
    return Json(http::status::ok, req, json::object{{"ok", true}});
  }
  if (path == "/_sim/expire-sessions") {
    for (const auto& [token, used] : sessions_) expired_sessions_.insert(token);
    auto n = sessions_.size();
    sessions_.clear();
    return Json(http::status::ok, req, json::object{{"expired", n}});
  }
  if (path == "/_sim/revoke-token") {  // the gateway forgets the OAuth token (spec 2.1)
    if (!current_token_.empty()) old_tokens_.insert(current_token_);
    current_token_.clear();
    return Json(http::status::ok, req, json::object{{"ok", true}});
  }
  if (path == "/_sim/registry/drop") {
    auto n = registry_[Str(body, "account")].erase(Str(body, "service"));
    return Json(http::status::ok, req, json::object{{"dropped", n}});
  }
  if (path == "/_sim/registry/set") {
    registry_[Str(body, "account")][Str(body, "service")] = {
        Str(body, "url"), Str(body, "username"), Str(body, "password")};
    return Json(http::status::ok, req, json::object{{"ok", true}});
  }
  if (path == "/_sim/unsolicited") {
    std::string account = Str(body, "account");
    std::string service = Str(body, "service");
    int count = static_cast<int>(Int(body, "count", 1));
    for (int i = 0; i < count; ++i) {
      PlannedCallback cb;
      if (!MakeUnsolicited(service, account, i, cb))
        return daemon::MakeError(http::status::bad_request, req.version(),
                                 "unknown unsolicited service");
      Enqueue(account, "", {std::move(cb)});
    }
    return Json(http::status::ok, req, json::object{{"queued", count}});
  }
  if (path == "/_sim/send") {  // one given body to one service, delivered like any callback
    auto* b = body.if_contains("body");
    if (!b || !b->is_object())
      return daemon::MakeError(http::status::bad_request, req.version(), "body must be an object");
    PlannedCallback cb{Str(body, "service"), b->as_object(), false};
    cb.body.erase("username");
    cb.body.erase("password");
    cb.body.erase("callbackCount");
    cb.body.erase("maxCallbackThreshold");
    Enqueue(Str(body, "account"), "", {std::move(cb)});
    return Json(http::status::ok, req, json::object{{"queued", 1}});
  }
  if (path == "/_sim/trigger") {  // run an API endpoint's callbacks without a session
    std::map<std::string, std::string> params;
    const Endpoint* e = Match(Str(body, "method", "POST"), Str(body, "path"), params);
    if (!e || e->kind != Kind::kAsync)
      return daemon::MakeError(http::status::bad_request, req.version(),
                               "not an asynchronous endpoint");
    json::object request;
    if (auto* r = body.if_contains("request"); r && r->is_object()) request = r->as_object();
    std::string account = Str(request, "accountName", "0000000000-00000");
    std::string id = NewUuid();
    auto callbacks = CallbacksFor(*e, id, account, request);
    auto n = callbacks.size();
    Enqueue(account, id, std::move(callbacks));
    return Json(http::status::ok, req, json::object{{"requestId", id}, {"callbacks", n}});
  }
  return daemon::MakeError(http::status::not_found, req.version(), "unknown control path");
}

// Load mode for benchmarks: `count` CarrierService callbacks to the
// registered URL, `concurrency` at a time, at most `rate` per second (0 = as
// fast as acknowledged), one attempt each; answers when all are done.
namespace {

// Every string "id" member anywhere in `v`.
std::vector<std::string> Ids(const json::value& v) {
  std::vector<std::string> out;
  if (auto* o = v.if_object()) {
    for (const auto& [key, item] : *o) {
      if (key == "id" && item.is_string()) out.emplace_back(item.as_string());
      auto more = Ids(item);
      out.insert(out.end(), more.begin(), more.end());
    }
  } else if (auto* a = v.if_array()) {
    for (const auto& item : *a) {
      auto more = Ids(item);
      out.insert(out.end(), more.begin(), more.end());
    }
  }
  return out;
}

}  // namespace

asio::awaitable<Response> Simulator::Load(Request& req) {
  json::object spec = ParseObject(req.body());
  std::string account = Str(spec, "account");
  std::string service = Str(spec, "service", "CarrierService");
  int count = static_cast<int>(Int(spec, "count", 1000));
  int concurrency = std::max<int>(1, static_cast<int>(Int(spec, "concurrency", 16)));
  double rate = Num(spec, "rate", 0);
  auto reg_account = registry_.find(account);
  if (reg_account == registry_.end() || !reg_account->second.count(service))
    co_return daemon::MakeError(http::status::bad_request, req.version(),
                                "no registration for that account and service");
  Registration reg = reg_account->second.at(service);
  // Follow-ups (benchmarks of rules): requests whose target contains
  // `follow_up` and whose body names a device this load sent, timed from
  // the callback's send to the request's arrival (one clock: this one).
  const std::string follow_up = Str(spec, "follow_up");
  const int follow_up_wait_ms = static_cast<int>(Int(spec, "follow_up_wait_ms", 10'000));
  // Follow-ups of callbacks sent in the load's first `warm_up_ms` are left
  // out of the steady figures (the pools and caches filling up).
  const double warm_up_ms = Num(spec, "warm_up_ms", 0);
  std::unordered_map<std::string, double> sent_at;
  const std::uint64_t first_seq = next_seq_;
  auto start = Clock::now();
  handlers::TokenBucket bucket(rate > 0 ? rate : 1, std::max(1.0, rate / 10), start);
  int next = 0, acked = 0, failed = 0;
  std::vector<double> latencies;
  latencies.reserve(static_cast<std::size_t>(count));
  auto worker = [&]() -> asio::awaitable<void> {
    while (next < count) {
      int n = next++;
      if (rate > 0)
        while (auto wait = bucket.TryTake(Clock::now()))
          co_await Sleep(static_cast<int>(wait->count()) + 1);
      const std::string device = std::to_string(89148000000000000LL + n);
      json::object body{
          {"username", reg.username},
          {"password", reg.password},
          {"requestId", NewUuid()},
          {"deviceIds", json::array{json::object{{"id", device}, {"kind", "iccid"}}}},
          {"deviceResponse", json::object{{"activateResponse", json::object{{"state", "active"}}}}},
          {"status", "Success"},
          {"callbackCount", 1},
          {"maxCallbackThreshold", options_.max_attempts}};
      daemon::ClientRequest creq{
          http::verb::post, reg.url, {{"Content-Type", "application/json"}}, json::serialize(body)};
      auto t0 = Clock::now();
      if (!follow_up.empty())
        sent_at[device] = std::chrono::duration<double, std::milli>(t0 - started_).count();
      auto res = co_await client_.Send(std::move(creq));
      latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      if (res.status >= 200 && res.status < 300)
        ++acked;
      else
        ++failed;
    }
  };
  int running = concurrency;
  asio::steady_timer all_done(ioc_, Clock::time_point::max());
  for (int i = 0; i < concurrency; ++i)
    asio::co_spawn(ioc_, worker(), [&](std::exception_ptr) {
      if (--running == 0) all_done.cancel();
    });
  co_await all_done.async_wait(daemon::kUse);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> follow_ups, steady;
  // By the second of the load they were sent in: where the tail comes from.
  std::map<std::size_t, std::vector<double>> by_second;
  const double load_started_ms =
      std::chrono::duration<double, std::milli>(start - started_).count();
  if (!follow_up.empty()) {
    std::set<std::string> seen;
    auto collect = [&] {
      for (const auto& e : log_) {
        if (e.seq < first_seq || e.target.find(follow_up) == std::string::npos) continue;
        boost::system::error_code ec;
        auto body = json::parse(e.body, ec);
        if (ec) continue;
        for (const auto& id : Ids(body)) {
          auto sent = sent_at.find(id);
          if (sent != sent_at.end() && seen.insert(id).second) {
            follow_ups.push_back(e.at_ms - sent->second);
            if (sent->second - load_started_ms >= warm_up_ms)
              steady.push_back(e.at_ms - sent->second);
            by_second[static_cast<std::size_t>(std::max(0.0, sent->second - load_started_ms) /
                                               1000)]
                .push_back(e.at_ms - sent->second);
          }
        }
      }
    };
    auto deadline = Clock::now() + std::chrono::milliseconds(follow_up_wait_ms);
    while (Clock::now() < deadline) {
      std::size_t found = 0;
      for (const auto& e : log_)
        if (e.seq >= first_seq && e.target.find(follow_up) != std::string::npos) ++found;
      if (found >= static_cast<std::size_t>(acked)) break;
      co_await Sleep(100);
    }
    collect();
    std::sort(follow_ups.begin(), follow_ups.end());
    std::sort(steady.begin(), steady.end());
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0
                             : latencies[std::min(latencies.size() - 1,
                                                  static_cast<std::size_t>(p * latencies.size()))];
  };
  auto pct_of = [](const std::vector<double>& v, double p) {
    return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
  };
  json::object out{{"sent", count},
                   {"acked", acked},
                   {"failed", failed},
                   {"seconds", seconds},
                   {"per_second", seconds > 0 ? acked / seconds : 0},
                   {"p50_ms", pct(0.5)},
                   {"p99_ms", pct(0.99)}};
  if (!follow_up.empty()) {
    out["follow_ups"] = follow_ups.size();
    out["follow_up_p50_ms"] = pct_of(follow_ups, 0.5);
    out["follow_up_p99_ms"] = pct_of(follow_ups, 0.99);
    out["follow_up_max_ms"] = follow_ups.empty() ? 0.0 : follow_ups.back();
    if (warm_up_ms > 0) {
      out["follow_ups_steady"] = steady.size();
      out["follow_up_steady_p50_ms"] = pct_of(steady, 0.5);
      out["follow_up_steady_p99_ms"] = pct_of(steady, 0.99);
    }
    json::array seconds_p99;
    for (auto& [second, v] : by_second) {
      std::sort(v.begin(), v.end());
      seconds_p99.push_back(std::round(pct_of(v, 0.99) * 10) / 10);
    }
    out["follow_up_p99_ms_by_second"] = std::move(seconds_p99);
  }
  co_return Json(http::status::ok, req, out);
}

}  // namespace tscb::sim
