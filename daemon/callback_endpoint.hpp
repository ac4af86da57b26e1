#pragma once
// The callback listener's request handling, in the gate order of spec
// section 9: source address, route, method, then (body read) parse,
// credentials, durable write, and only then 2xx. Every verdict becomes an
// HTTP status here and nowhere else. Shared by all network threads; the
// settings a reload may change (allow-list, credentials) are an immutable
// snapshot swapped whole by Apply().
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "config/config.hpp"
#include "daemon/http_server.hpp"
#include "daemon/inbox_writer.hpp"
#include "daemon/metrics.hpp"
#include "handlers/allow_list.hpp"
#include "handlers/log_throttle.hpp"
#include "handlers/router.hpp"

namespace tscb::daemon {

class CallbackEndpoint final : public HttpHandler {
 public:
  CallbackEndpoint(const config::Config& config, InboxWriter& writer, Metrics& metrics);

  std::optional<Response> OnHeader(const http::request_header<>& header,
                                   RequestContext& ctx) override;
  asio::awaitable<Response> OnRequest(Request& request, RequestContext& ctx) override;
  void OnRejected(Rejection rejection, const std::string& peer) override;

  // Takes the reloadable settings of `config` (SIGHUP): the allow-list,
  // trusted proxies and service credentials. Requests already past their
  // check are not affected. The services themselves must be the same.
  void Apply(const config::Config& config);

 private:
  struct Settings {
    handlers::AllowList allow;
    std::vector<config::ServiceConfig> services;
  };
  static std::shared_ptr<const Settings> MakeSettings(const config::Config& config);
  std::shared_ptr<const Settings> Current() const;

  Response Reject(Rejection why, http::status status, unsigned version, const std::string& message,
                  const RequestContext& ctx, std::string_view target);

  handlers::Router router_;
  mutable std::mutex settings_mu_;
  std::shared_ptr<const Settings> settings_;
  InboxWriter& writer_;
  Metrics& metrics_;
  // Refusals are always counted, but logged a few a second at most.
  handlers::LogThrottle refused_log_;
  handlers::LogThrottle protocol_log_;
  handlers::LogThrottle rejected_body_log_;
  handlers::LogThrottle unavailable_log_;
};

}  // namespace tscb::daemon
