// The outgoing HTTPS client (daemon/https_client) against a real TLS
// listener in this process: how many connections a burst of calls opens.
// The listener's TLS context counts the handshakes it completed.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "daemon/http_server.hpp"
#include "daemon/https_client.hpp"
#include "daemon/tls_context.hpp"
#include "tests/support/daemon_process.hpp"

namespace tscb::testing {
namespace {

namespace asio = daemon::asio;
namespace http = daemon::http;

// Answers every request 200 at once.
class Answer200 final : public daemon::HttpHandler {
 public:
  std::optional<daemon::Response> OnHeader(const http::request_header<>&,
                                           daemon::RequestContext&) override {
    return std::nullopt;
  }
  asio::awaitable<daemon::Response> OnRequest(daemon::Request& req,
                                              daemon::RequestContext&) override {
    co_return daemon::MakeJsonResponse(http::status::ok, req.version(), "{}");
  }
  void OnRejected(daemon::Rejection, const std::string&) override {}
};

class HttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeTestCertificates(certs_.Path()); }

  // `calls` calls sent at once; the handshakes the listener completed.
  long Burst(int calls, int max_connecting) {
    asio::io_context ioc(1);
    auto tls = daemon::MakeServerTlsContext(
        config::TlsConfig{true, certs_.Path() + "/cert.pem", certs_.Path() + "/key.pem", false});
    Answer200 handler;
    daemon::HttpServer server(ioc, "test", tls, daemon::ServerLimits{}, handler, nullptr);
    const std::uint16_t port = server.Bind("127.0.0.1", 0);
    server.Start();

    daemon::ClientOptions options;
    options.ca_file = certs_.Path() + "/ca.pem";
    options.max_connecting_per_host = max_connecting;
    daemon::HttpsClient client(ioc.get_executor(), options);
    int answered = 0, left = calls;
    for (int i = 0; i < calls; ++i) {
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            daemon::ClientRequest req{http::verb::post,
                                      "https://localhost:" + std::to_string(port) + "/x",
                                      {{"Content-Type", "application/json"}},
                                      "{}"};
            auto res = co_await client.Send(std::move(req));
            if (res.status == 200) ++answered;
            if (--left == 0) server.Stop([] {});
          },
          asio::detached);
    }
    ioc.run_for(std::chrono::seconds(30));
    EXPECT_EQ(answered, calls);
    client.CloseIdle();
    return SSL_CTX_sess_accept_good(tls->native_handle());
  }

  TempDir certs_;
};

// A burst of calls to one host shares the connections a few handshakes
// open, and those that come back, instead of opening one each.
TEST_F(HttpsClientTest, ABurstOfCallsSharesAFewNewConnections) {
  constexpr int kCalls = 64;
  const long capped = Burst(kCalls, 4);
  std::printf("[ info ] %d calls at once: %ld handshakes\n", kCalls, capped);
  EXPECT_GE(capped, 4);
  EXPECT_LE(capped, kCalls / 2);
  // Without the cap, every call that finds no idle connection opens one.
  EXPECT_EQ(Burst(kCalls, kCalls), kCalls);
}

}  // namespace
}  // namespace tscb::testing
