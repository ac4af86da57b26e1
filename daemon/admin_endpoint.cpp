#include "daemon/admin_endpoint.hpp"

#include <boost/json.hpp>

namespace tscb::daemon {
namespace {
enum Route : std::size_t { kHealthz, kReadyz, kMetrics, kOperator };
}

std::optional<Response> AdminEndpoint::OnHeader(const http::request_header<>& header,
                                                RequestContext& ctx) {
  std::string_view target = header.target();
  target = target.substr(0, target.find('?'));
  if (target == "/healthz")
    ctx.route = kHealthz;
  else if (target == "/readyz")
    ctx.route = kReadyz;
  else if (target == "/metrics")
    ctx.route = kMetrics;
  else if (api_ && OperatorApi::Owns(target)) {
    ctx.route = kOperator;
    return std::nullopt;  // the API checks methods and its token itself
  } else
    return MakeError(http::status::not_found, header.version(), "not found");
  if (header.method() != http::verb::get) {
    auto res = MakeError(http::status::method_not_allowed, header.version(), "use GET");
    res.set(http::field::allow, "GET");
    return res;
  }
  return std::nullopt;
}

asio::awaitable<Response> AdminEndpoint::OnRequest(Request& request, RequestContext& ctx) {
  unsigned version = request.version();
  if (ctx.route == kOperator) co_return co_await api_->Handle(request);
  if (ctx.route == kHealthz)
    co_return MakeJsonResponse(http::status::ok, version, R"({"status":"alive"})");
  if (ctx.route == kMetrics) {
    Response res{http::status::ok, version};
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics_.Serialize();
    co_return res;
  }
  HealthReport r = health_.Report();
  boost::json::object body{
      {"ready", r.ready},
      {"listener_bound", r.listener_bound},
      {"database_ok", r.database_ok},
      {"schema_version", r.schema_version},
      {"schema_expected", r.schema_expected},
      {"stopping", r.stopping},
  };
  if (!r.database_error.empty()) body["database_error"] = r.database_error;
  bool ready = r.ready;
  for (const auto& part : parts_) ready = part(body) && ready;
  body["ready"] = ready;
  co_return MakeJsonResponse(ready ? http::status::ok : http::status::service_unavailable, version,
                             boost::json::serialize(body));
}

}  // namespace tscb::daemon
