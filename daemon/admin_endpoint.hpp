#pragma once
// The admin listener (loopback by default): GET /healthz (the process
// answers), GET /readyz (database, schema, listener; 503 when not ready)
// and GET /metrics (Prometheus text). Shared by all network threads.
#include "daemon/health.hpp"
#include "daemon/http_server.hpp"
#include "daemon/metrics.hpp"

namespace tscb::daemon {

class AdminEndpoint final : public HttpHandler {
 public:
  AdminEndpoint(const Health& health, const Metrics& metrics)
      : health_(health), metrics_(metrics) {}

  std::optional<Response> OnHeader(const http::request_header<>& header,
                                   RequestContext& ctx) override;
  asio::awaitable<Response> OnRequest(Request& request, RequestContext& ctx) override;
  void OnRejected(Rejection, const std::string&) override {}

 private:
  const Health& health_;
  const Metrics& metrics_;
};

}  // namespace tscb::daemon
