#include "daemon/callback_endpoint.hpp"

#include <spdlog/spdlog.h>

#include "handlers/ingest.hpp"

namespace tscb::daemon {
namespace {

std::vector<std::string> ServiceNames(const std::vector<config::ServiceConfig>& services) {
  std::vector<std::string> names;
  for (const auto& s : services) names.push_back(s.name);
  return names;
}

// The request target is the client's text: keep it short and printable.
std::string Printable(std::string_view text) {
  std::string out(text.substr(0, 200));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return out;
}

// " (N more like it not logged)" when a throttle held lines back.
std::string Suppressed(std::uint64_t n) {
  return n ? " (" + std::to_string(n) + " more like it not logged)" : std::string();
}

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

CallbackEndpoint::CallbackEndpoint(const config::Config& config, InboxWriter& writer,
                                   Metrics& metrics)
    : router_(config.listener.base_path, ServiceNames(config.services)),
      settings_(MakeSettings(config)),
      writer_(writer),
      metrics_(metrics) {}

std::shared_ptr<const CallbackEndpoint::Settings> CallbackEndpoint::MakeSettings(
    const config::Config& config) {
  return std::make_shared<const Settings>(
      Settings{handlers::AllowList(config.listener.allow_from, config.listener.trusted_proxies),
               config.services});
}

void CallbackEndpoint::Apply(const config::Config& config) {
  auto next = MakeSettings(config);
  std::lock_guard lock(settings_mu_);
  settings_ = std::move(next);
}

std::shared_ptr<const CallbackEndpoint::Settings> CallbackEndpoint::Current() const {
  std::lock_guard lock(settings_mu_);
  return settings_;
}

void CallbackEndpoint::OnRejected(Rejection rejection, const std::string& peer) {
  metrics_.Count(rejection);
  if (auto held = protocol_log_.Admit(std::chrono::steady_clock::now()))
    spdlog::warn("refused connection or request from {}: {}{}", peer.empty() ? "?" : peer,
                 Name(rejection), Suppressed(*held));
}

Response CallbackEndpoint::Reject(Rejection why, http::status status, unsigned version,
                                  const std::string& message, const RequestContext& ctx,
                                  std::string_view target) {
  metrics_.Count(why);
  if (auto held = refused_log_.Admit(std::chrono::steady_clock::now()))
    spdlog::warn("refused request {} from {}: {} ({}){}", Printable(target), ctx.client_ip, message,
                 static_cast<int>(status), Suppressed(*held));
  return MakeError(status, version, message);
}

std::optional<Response> CallbackEndpoint::OnHeader(const http::request_header<>& header,
                                                   RequestContext& ctx) {
  auto decision = Current()->allow.Check(ctx.peer_ip, header["X-Forwarded-For"]);
  ctx.client_ip = decision.client;
  auto target = header.target();
  unsigned version = header.version();
  if (!decision.allowed)
    return Reject(Rejection::kForbidden, http::status::forbidden, version,
                  "source address not allowed", ctx, target);
  auto match = router_.Route(target);
  if (match.kind == handlers::Router::Kind::kBadTarget)
    return Reject(Rejection::kBadRequest, http::status::bad_request, version,
                  "malformed request target", ctx, target);
  if (match.kind == handlers::Router::Kind::kNotFound)
    return Reject(Rejection::kNotFound, http::status::not_found, version, "no such callback path",
                  ctx, target);
  if (header.method() != http::verb::post) {
    auto res = Reject(Rejection::kMethod, http::status::method_not_allowed, version,
                      "callbacks are POSTed", ctx, target);
    res.set(http::field::allow, "POST");
    return res;
  }
  ctx.route = match.service_index;
  return std::nullopt;
}

asio::awaitable<Response> CallbackEndpoint::OnRequest(Request& request, RequestContext& ctx) {
  auto settings = Current();
  const config::ServiceConfig& service = settings->services[ctx.route];
  unsigned version = request.version();
  auto decision = handlers::DecideCallback(service, ctx.client_ip, request.body());
  if (decision.verdict != handlers::Verdict::kAccept) {
    Outcome outcome = Outcome::kNotJson;
    http::status status = http::status::bad_request;
    switch (decision.verdict) {
      case handlers::Verdict::kNotObject:
        outcome = Outcome::kNotObject;
        break;
      case handlers::Verdict::kUnstorable:
        outcome = Outcome::kUnstorable;
        break;
      case handlers::Verdict::kBadCredentials:
        outcome = Outcome::kBadCredentials;
        status = http::status::unauthorized;
        break;
      default:
        break;
    }
    metrics_.Count(ctx.route, outcome);
    if (auto held = rejected_body_log_.Admit(std::chrono::steady_clock::now()))
      spdlog::warn("callback {} from {} refused: {} ({}){}", service.name, ctx.client_ip,
                   handlers::Describe(decision.verdict), static_cast<int>(status),
                   Suppressed(*held));
    co_return MakeError(status, version, handlers::Describe(decision.verdict));
  }

  std::string request_id = decision.record->request_id;
  WriteResult result =
      co_await writer_.AsyncWrite(std::move(*decision.record), asio::use_awaitable);
  double latency_ms = MillisecondsSince(ctx.started);
  switch (result.status) {
    case WriteStatus::kStored:
    case WriteStatus::kDuplicate: {
      bool stored = result.status == WriteStatus::kStored;
      metrics_.Count(ctx.route, stored ? Outcome::kStored : Outcome::kDuplicate);
      metrics_.ObserveAckLatency(latency_ms / 1000.0);
      spdlog::info("callback {} service={} inbox_id={} request_id={} client={} latency_ms={:.2f}",
                   stored ? "stored" : "duplicate", service.name, result.inbox_id,
                   Printable(request_id), ctx.client_ip, latency_ms);
      co_return MakeJsonResponse(http::status::ok, version,
                                 stored ? R"({"status":"stored"})" : R"({"status":"duplicate"})");
    }
    case WriteStatus::kSpooled:
      // Durable on local disk (fsync'd); the drainer moves it into the inbox.
      metrics_.Count(ctx.route, Outcome::kSpooled);
      metrics_.ObserveAckLatency(latency_ms / 1000.0);
      spdlog::info("callback spooled service={} request_id={} client={} latency_ms={:.2f}",
                   service.name, Printable(request_id), ctx.client_ip, latency_ms);
      co_return MakeJsonResponse(http::status::ok, version, R"({"status":"spooled"})");
    case WriteStatus::kFailed:
      break;
  }
  // Not stored: ThingSpace must resend (spec 3.7), so never a 2xx here.
  metrics_.Count(ctx.route, Outcome::kUnavailable);
  if (auto held = unavailable_log_.Admit(std::chrono::steady_clock::now()))
    spdlog::warn("callback {} request_id={} not stored (database unavailable): answered 503{}",
                 service.name, Printable(request_id), Suppressed(*held));
  auto res =
      MakeError(http::status::service_unavailable, version, "storage unavailable, retry later");
  res.set(http::field::retry_after, "60");
  co_return res;
}

}  // namespace tscb::daemon
