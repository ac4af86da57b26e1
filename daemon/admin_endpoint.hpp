#pragma once
// The admin listener (loopback by default): GET /healthz (the process
// answers), GET /readyz (database, schema, listener; 503 when not ready)
// and GET /metrics (Prometheus text). Shared by all network threads.
#include <boost/json/object.hpp>
#include <functional>

#include "daemon/health.hpp"
#include "daemon/http_server.hpp"
#include "daemon/metrics.hpp"
#include "daemon/operator_api.hpp"

namespace tscb::daemon {

class AdminEndpoint final : public HttpHandler {
 public:
  AdminEndpoint(const Health& health, Metrics& metrics) : health_(health), metrics_(metrics) {}

  std::optional<Response> OnHeader(const http::request_header<>& header,
                                   RequestContext& ctx) override;
  asio::awaitable<Response> OnRequest(Request& request, RequestContext& ctx) override;
  void OnRejected(Rejection, const std::string&) override {}

  // Adds members to the /readyz body; returns false when that part is not
  // ready. Set before the listener starts.
  using ReadinessPart = std::function<bool(boost::json::object&)>;
  void AddReadinessPart(ReadinessPart part) { parts_.push_back(std::move(part)); }
  // Routes /v1/... to the operator API (set before the listener starts).
  void SetOperatorApi(OperatorApi* api) { api_ = api; }

 private:
  std::vector<ReadinessPart> parts_;
  OperatorApi* api_ = nullptr;
  const Health& health_;
  Metrics& metrics_;
};

}  // namespace tscb::daemon
