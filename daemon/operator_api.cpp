#include "daemon/operator_api.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <regex>

#include "daemon/http_server.hpp"
#include "daemon/time_format.hpp"
#include "handlers/correlate.hpp"
#include "handlers/ingest.hpp"
#include "handlers/json_fields.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/pg_processing_store.hpp"

namespace tscb::daemon {
namespace json = boost::json;
namespace {

constexpr std::string_view kPrefix = "/v1/requests";

// "30m", "2h", "90s", or a number of seconds.
std::optional<std::chrono::seconds> ParseDeadline(const json::value& v) {
  if (v.is_int64() && v.as_int64() > 0) return std::chrono::seconds(v.as_int64());
  if (!v.is_string()) return std::nullopt;
  std::smatch m;
  std::string s(v.as_string());
  if (!std::regex_match(s, m, std::regex("([0-9]+)(s|m|h|d)"))) return std::nullopt;
  long n = std::stol(m[1]);
  char unit = m[2].str()[0];
  long mult = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : 86400;
  return std::chrono::seconds(n * mult);
}

}  // namespace

std::string ParsePendingRequest(const std::string& body, const config::Config& config,
                                storage::PendingRequestRecord& out) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return "the body must be a JSON object";
  const auto& o = v.as_object();
  out.request_id = handlers::StringField(o, "requestId");
  if (out.request_id.empty() || out.request_id.size() > 200)
    return "requestId is required (a string of at most 200 characters)";
  out.account = handlers::StringField(o, "account");
  if (out.account.empty()) out.account = config.account;
  out.action = handlers::StringField(o, "action");
  if (!std::regex_match(out.action, std::regex("[a-z][a-z_]{0,40}")))
    return "action is required: a lower-case name such as activate, suspend, sms, nidd, "
           "reachability";
  if (auto* nb = o.if_contains("nbiot")) {
    if (!nb->is_bool()) return "nbiot must be true or false";
    out.nbiot = nb->as_bool();
  }
  // Devices: [[{id, kind}, ...], ...] or ThingSpace's [{"deviceIds": [...]}, ...].
  auto* devices = o.if_contains("devices");
  if (!devices || !devices->is_array() || devices->as_array().empty())
    return "devices is required: a non-empty list of devices, each a list of {id, kind}";
  json::array normalised;
  for (const auto& d : devices->as_array()) {
    const json::value* ids = &d;
    if (d.is_object()) ids = d.as_object().if_contains("deviceIds");
    if (!ids || !ids->is_array() || ids->as_array().empty())
      return "each device must be a non-empty list of {id, kind}";
    for (const auto& id : ids->as_array())
      if (!id.is_object() || handlers::StringField(id.as_object(), "id").empty())
        return "each device identifier must be an object with a string id";
    normalised.push_back(*ids);
  }
  out.devices_json = json::serialize(normalised);
  auto deadline = config.requests.DeadlineFor(out.action);
  std::chrono::seconds after = std::chrono::duration_cast<std::chrono::seconds>(deadline);
  if (auto* d = o.if_contains("deadline")) {
    auto parsed = ParseDeadline(*d);
    if (!parsed) return "deadline must be a duration such as 30m or a number of seconds";
    after = *parsed;
  }
  out.deadline_at = IsoUtc(std::chrono::system_clock::now() + after);
  return {};
}

OperatorApi::OperatorApi(const config::Config& config, Processor& processor, Metrics* metrics)
    : config_(config), processor_(processor), metrics_(metrics) {}

OperatorApi::~OperatorApi() { pool_.join(); }

bool OperatorApi::Owns(std::string_view target) {
  return target.substr(0, kPrefix.size()) == kPrefix;
}

asio::awaitable<Response> OperatorApi::Answer(Request& request) {
  unsigned version = request.version();
  std::string auth(request[http::field::authorization]);
  const std::string& token = config_.admin.api_token.Reveal();
  if (token.empty())
    co_return MakeError(http::status::not_found, version,
                        "the operator API is off (set admin.api_token)");
  if (auth.rfind("Bearer ", 0) != 0 || !handlers::ConstantTimeEquals(auth.substr(7), token)) {
    auto res = MakeError(http::status::unauthorized, version, "a valid bearer token is required");
    res.set(http::field::www_authenticate, "Bearer");
    co_return res;
  }
  std::string target(request.target());
  target = target.substr(0, target.find('?'));
  auto back = co_await asio::this_coro::executor;
  // The database work blocks: off the network thread, then back.
  co_await asio::post(pool_, asio::use_awaitable);
  Response res;
  try {
    if (target == kPrefix && request.method() == http::verb::post) {
      res = Register(request);
    } else if (target.size() > kPrefix.size() + 1 && target[kPrefix.size()] == '/' &&
               request.method() == http::verb::get) {
      res = Read(request, target.substr(kPrefix.size() + 1));
    } else {
      res = MakeError(http::status::not_found, version, "not found");
    }
  } catch (const storage::StorageError& e) {
    store_.reset();
    spdlog::error("operator API: {}", e.what());
    res = MakeError(http::status::service_unavailable, version, "database unavailable");
  }
  co_await asio::post(back, asio::use_awaitable);
  co_return res;
}

asio::awaitable<Response> OperatorApi::Handle(Request& request) {
  Response res = co_await Answer(request);
  int status = static_cast<int>(res.result_int());
  if (metrics_) metrics_->CountOperatorApi(status);
  // Refusals once each, with our own reason (the body never echoes input).
  if (status >= 400)
    spdlog::warn("operator API: {} {} answered {}: {}", std::string(request.method_string()),
                 std::string(request.target().substr(0, 200)), status, res.body());
  co_return res;
}

Response OperatorApi::Register(const Request& request) {
  storage::PendingRequestRecord record;
  record.origin = "api";
  std::string error = ParsePendingRequest(request.body(), config_, record);
  if (!error.empty()) return MakeError(http::status::bad_request, request.version(), error);
  if (!store_)
    store_ = std::make_unique<storage::pg::PgProcessingStore>(
        config_.database.ConnectionString("operator"));
  if (!processor_.RegisterRequest(*store_, record))
    return MakeError(http::status::conflict, request.version(),
                     "a request with this requestId is already registered");
  Response res = Read(request, record.request_id);
  if (res.result() == http::status::ok) res.result(http::status::created);
  return res;
}

Response OperatorApi::Read(const Request& request, const std::string& request_id) {
  if (!store_)
    store_ = std::make_unique<storage::pg::PgProcessingStore>(
        config_.database.ConnectionString("operator"));
  auto batch = store_->Begin();
  auto found = batch->RequestJson(request_id);
  batch->Commit();
  if (!found) return MakeError(http::status::not_found, request.version(), "no such request");
  return MakeJsonResponse(http::status::ok, request.version(), *found);
}

}  // namespace tscb::daemon
