// The outgoing HTTPS client (daemon/https_client) against a real TLS
// listener in this process: how many connections a burst of calls opens (the
// listener's TLS context counts the handshakes it completed), what a pooled
// connection holds, and which peers it refuses.
#include <gtest/gtest.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <csignal>

#include "daemon/http_server.hpp"
#include "daemon/https_client.hpp"
#include "daemon/tls_context.hpp"
#include "tests/support/daemon_process.hpp"

namespace tscb::testing {
namespace {

namespace asio = daemon::asio;
namespace http = daemon::http;

// malloc's bytes in use count glibc's allocator; under a sanitizer (its own
// allocator) the figure is printed, not checked.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// Answers every request 200, after `delay` (at once by default).
class Answer200 final : public daemon::HttpHandler {
 public:
  explicit Answer200(std::chrono::milliseconds delay = {}) : delay_(delay) {}
  std::optional<daemon::Response> OnHeader(const http::request_header<>&,
                                           daemon::RequestContext&) override {
    return std::nullopt;
  }
  asio::awaitable<daemon::Response> OnRequest(daemon::Request& req,
                                              daemon::RequestContext&) override {
    if (delay_.count() > 0) {
      asio::steady_timer wait(co_await asio::this_coro::executor, delay_);
      co_await wait.async_wait(asio::use_awaitable);
    }
    co_return daemon::MakeJsonResponse(http::status::ok, req.version(), "{}");
  }
  void OnRejected(daemon::Rejection, const std::string&) override {}

 private:
  std::chrono::milliseconds delay_;
};

class HttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeTestCertificates(certs_.Path()); }

  // `calls` calls sent at once to `host` (the listener on `address`); the
  // handshakes the listener completed. `pooled`, when given, gets malloc's
  // bytes in use per connection the client keeps idle once the listener has
  // stopped (its own connections gone).
  long Burst(int calls, int max_connecting, const std::string& host = "localhost",
             const std::string& address = "127.0.0.1", daemon::ClientOptions options = {},
             double* pooled = nullptr) {
    asio::io_context ioc(1);
    auto tls = daemon::MakeServerTlsContext(
        config::TlsConfig{true, certs_.Path() + "/cert.pem", certs_.Path() + "/key.pem", false});
    Answer200 handler;
    daemon::HttpServer server(ioc, "test", tls, daemon::ServerLimits{}, handler, nullptr);
    const std::uint16_t port = server.Bind(address, 0);
    server.Start();

    if (options.ca_file.empty() && options.verify_peer) options.ca_file = certs_.Path() + "/ca.pem";
    options.max_connecting_per_host = max_connecting;
    options.max_idle_per_host = static_cast<std::size_t>(calls);
    daemon::HttpsClient client(ioc.get_executor(), options);
    int left = calls;
    bool stopped = false;
    answered_ = 0;
    errors_.clear();
    for (int i = 0; i < calls; ++i) {
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            daemon::ClientRequest req{http::verb::post,
                                      "https://" + host + ":" + std::to_string(port) + "/x",
                                      {{"Content-Type", "application/json"}},
                                      std::string(2000, ' ') + "{}"};
            auto res = co_await client.Send(std::move(req));
            if (res.status == 200) ++answered_;
            if (res.status == 0) errors_.push_back(res.error);
            if (--left == 0) server.Stop([&] { stopped = true; });
          },
          asio::detached);
    }
    ioc.run_for(std::chrono::seconds(30));
    EXPECT_TRUE(stopped);
    if (pooled) {
      const double with_pool = static_cast<double>(mallinfo2().uordblks);
      client.CloseIdle();
      *pooled = (with_pool - static_cast<double>(mallinfo2().uordblks)) / calls;
    }
    client.CloseIdle();
    return SSL_CTX_sess_accept_good(tls->native_handle());
  }

  int answered_ = 0;
  std::vector<std::string> errors_;

  TempDir certs_;
};

// A burst of calls to one host shares the connections a few handshakes
// open, and those that come back, instead of opening one each.
TEST_F(HttpsClientTest, ABurstOfCallsSharesAFewNewConnections) {
  constexpr int kCalls = 64;
  const long capped = Burst(kCalls, 4);
  std::printf("[ info ] %d calls at once: %ld handshakes\n", kCalls, capped);
  EXPECT_EQ(answered_, kCalls);
  EXPECT_GE(capped, 4);
  EXPECT_LE(capped, kCalls / 2);
  // Without the cap, every call that finds no idle connection opens one.
  EXPECT_EQ(Burst(kCalls, kCalls), kCalls);
  EXPECT_EQ(answered_, kCalls);
}

// A pooled connection the listener has closed meanwhile (its idle timeout)
// fails before any answer byte: the call goes again on a new connection,
// once, and is answered.
TEST_F(HttpsClientTest, AConnectionTheServerClosedIsReplacedAndTheCallAnswered) {
  asio::io_context ioc(1);
  auto tls = daemon::MakeServerTlsContext(
      config::TlsConfig{true, certs_.Path() + "/cert.pem", certs_.Path() + "/key.pem", false});
  Answer200 handler;
  daemon::ServerLimits limits;
  limits.idle_timeout = std::chrono::milliseconds(100);
  daemon::HttpServer server(ioc, "test", tls, limits, handler, nullptr);
  const std::uint16_t port = server.Bind("127.0.0.1", 0);
  server.Start();
  daemon::ClientOptions options;
  options.ca_file = certs_.Path() + "/ca.pem";
  daemon::HttpsClient client(ioc.get_executor(), options);
  std::vector<int> statuses;
  std::vector<std::string> errors;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
          if (i > 0) {  // past the idle timeout and the sweep that applies it
            asio::steady_timer wait(ioc, std::chrono::milliseconds(700));
            co_await wait.async_wait(asio::use_awaitable);
          }
          // A named request: GCC 12 destroys a braced temporary inside co_await
          // through a bad pointer (ASan: "free on address which was not malloc()-ed").
          daemon::ClientRequest req{
              http::verb::post, "https://localhost:" + std::to_string(port) + "/x", {}, "{}"};
          auto res = co_await client.Send(std::move(req));
          statuses.push_back(res.status);
          errors.push_back(res.error);
        }
        server.Stop([] {});
      },
      asio::detached);
  ioc.run_for(std::chrono::seconds(20));
  client.CloseIdle();
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[0], 200) << errors[0];
  EXPECT_EQ(statuses[1], 200) << errors[1];
  EXPECT_EQ(SSL_CTX_sess_accept_good(tls->native_handle()), 2);
}

// A connection waiting in the pool lets go of its TLS record buffers and its
// response buffer: 24.5 KiB each here (OpenSSL's connection and session),
// against 107.4 KiB with Asio's ssl::stream (its engine's fixed buffers and
// OpenSSL's records), which the daemon's dozens of connections to
// ThingSpace made a swing of megabytes as the pool grew and shrank.
TEST_F(HttpsClientTest, APooledConnectionHoldsFewBytes) {
  constexpr int kCalls = 32;
  double pooled = 0;
  EXPECT_EQ(Burst(kCalls, kCalls, "localhost", "127.0.0.1", {}, &pooled), kCalls);
  EXPECT_EQ(answered_, kCalls);
  std::printf("[ info ] %d pooled connections: %.1f KiB of heap each\n", kCalls, pooled / 1024);
  if (kSanitized) return;
  EXPECT_GT(pooled, 1024);  // the measure sees the connections at all
  EXPECT_LT(pooled, 48 * 1024);
}

// A call waiting for its answer on a pooled connection holds no TLS record
// buffers (OpenSSL allocates them only while it reads or writes a record):
// a burst of actions in flight, the daemon's dispatcher at up to 64 at once,
// costs a few KiB each beyond the connections. The listener runs in a child
// process, so that malloc's count here is the client's alone.
TEST_F(HttpsClientTest, ACallWaitingForItsAnswerHoldsFewBytes) {
  constexpr int kCalls = 32;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child only listens: whatever happens, it ends here, never back in
    // the test runner.
    try {
      asio::io_context ioc(1);
      auto tls = daemon::MakeServerTlsContext(
          config::TlsConfig{true, certs_.Path() + "/cert.pem", certs_.Path() + "/key.pem", false});
      Answer200 handler(std::chrono::milliseconds(500));
      daemon::HttpServer server(ioc, "test", tls, daemon::ServerLimits{}, handler, nullptr);
      const std::uint16_t bound = server.Bind("127.0.0.1", 0);
      server.Start();
      (void)!write(ready[1], &bound, sizeof bound);
      ioc.run_for(std::chrono::seconds(20));
    } catch (...) {
      _exit(1);
    }
    _exit(0);
  }
  close(ready[1]);
  std::uint16_t port = 0;
  const bool listening = read(ready[0], &port, sizeof port) == sizeof port;
  close(ready[0]);
  if (!listening) {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    FAIL() << "the listener in the child process did not start";
  }

  asio::io_context ioc(1);
  daemon::ClientOptions options;
  options.ca_file = certs_.Path() + "/ca.pem";
  options.max_connecting_per_host = kCalls;
  options.max_idle_per_host = kCalls;
  daemon::HttpsClient client(ioc.get_executor(), options);
  int answered = 0;
  auto round = [&] {
    for (int i = 0; i < kCalls; ++i) {
      asio::co_spawn(
          ioc,
          [&]() -> asio::awaitable<void> {
            daemon::ClientRequest req{http::verb::post,
                                      "https://localhost:" + std::to_string(port) + "/x",
                                      {{"Content-Type", "application/json"}},
                                      R"({"deviceIds":[{"id":"1","kind":"imei"}]})"};
            auto res = co_await client.Send(std::move(req));
            if (res.status == 200) ++answered;
          },
          asio::detached);
    }
  };
  auto heap = [] { return static_cast<double>(mallinfo2().uordblks); };
  // The first round opens the connections; they wait in the pool after it.
  round();
  ioc.run_for(std::chrono::seconds(10));
  ioc.restart();
  const double pooled = heap();
  // The second round reuses them: every call is sent well within the
  // answer's delay, then waits for it.
  round();
  ioc.run_for(std::chrono::milliseconds(300));
  const double waiting = (heap() - pooled) / kCalls;
  ioc.run_for(std::chrono::seconds(10));
  client.CloseIdle();
  const double connection = (pooled - heap()) / kCalls;
  kill(child, SIGTERM);
  int status = 0;
  waitpid(child, &status, 0);

  EXPECT_EQ(answered, 2 * kCalls);
  std::printf(
      "[ info ] %d calls waiting: %.1f KiB of heap each beyond their pooled connection "
      "(%.1f KiB)\n",
      kCalls, waiting / 1024, connection / 1024);
  if (kSanitized) return;
  EXPECT_GT(waiting, 512);  // the measure sees the calls at all
  // The call's frames, request and read buffer; with OpenSSL's record
  // buffers held, 17 KiB or more beyond that.
  EXPECT_LT(waiting, 12 * 1024);
}

// The peer's certificate must be signed by a trusted CA and name the host
// of the URL: a DNS name, or the IP address itself.
TEST_F(HttpsClientTest, APeerIsVerifiedByItsCertificateAndName) {
  // The test certificate names localhost, 127.0.0.1 and ::1.
  EXPECT_EQ(Burst(2, 2, "127.0.0.1"), 2);
  EXPECT_EQ(answered_, 2);

  // 127.0.0.2 is loopback too, but not in the certificate.
  Burst(1, 1, "127.0.0.2", "127.0.0.2");
  EXPECT_EQ(answered_, 0);
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("TLS handshake with 127.0.0.2:"), std::string::npos) << errors_[0];
  EXPECT_NE(errors_[0].find("certificate verify failed: IP address mismatch"), std::string::npos)
      << errors_[0];

  // Signed by a CA the client does not trust (another test CA, same name).
  TempDir other;
  MakeTestCertificates(other.Path());
  daemon::ClientOptions other_ca;
  other_ca.ca_file = other.Path() + "/ca.pem";
  Burst(1, 1, "localhost", "127.0.0.1", other_ca);
  EXPECT_EQ(answered_, 0);
  ASSERT_EQ(errors_.size(), 1u);
  EXPECT_NE(errors_[0].find("certificate verify failed: "), std::string::npos) << errors_[0];

  // Unless verification is off (config: a test peer only).
  daemon::ClientOptions unverified;
  unverified.verify_peer = false;
  Burst(1, 1, "127.0.0.2", "127.0.0.2", unverified);
  EXPECT_EQ(answered_, 1);
}

}  // namespace
}  // namespace tscb::testing
