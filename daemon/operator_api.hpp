#pragma once
// The operator API on the admin listener (bearer token from
// admin.api_token): register a pending request sent by another system so its
// callbacks are matched (POST /v1/requests), and read one back
// (GET /v1/requests/{id}). Database work runs on the API's own thread, never
// on a network thread.
#include <boost/asio/thread_pool.hpp>
#include <memory>

#include "config/config.hpp"
#include "daemon/metrics.hpp"
#include "daemon/net.hpp"
#include "daemon/processor.hpp"

namespace tscb::daemon {

class OperatorApi {
 public:
  // `metrics` may be null.
  OperatorApi(const config::Config& config, Processor& processor, Metrics* metrics);
  ~OperatorApi();

  // Whether `target` is one of ours (so the admin endpoint routes it here).
  static bool Owns(std::string_view target);
  asio::awaitable<Response> Handle(Request& request);

 private:
  asio::awaitable<Response> Answer(Request& request);
  Response Register(const Request& request);
  Response Read(const Request& request, const std::string& request_id);

  const config::Config& config_;
  Processor& processor_;
  Metrics* metrics_;
  asio::thread_pool pool_{1};
  std::unique_ptr<storage::ProcessingStore> store_;  // used on pool_ only
};

// Validates a request registration body (POST /v1/requests or `pending
// add`) into a record; returns "" or what is wrong.
std::string ParsePendingRequest(const std::string& body, const config::Config& config,
                                storage::PendingRequestRecord& out);

}  // namespace tscb::daemon
