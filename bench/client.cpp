// tscb-client-bench: the CPU cost of one call through the daemon's outgoing
// HTTPS client (daemon/https_client: pooled keep-alive connections, TLS) as
// the dispatcher makes them, against a listener in a child process on
// 127.0.0.1 that answers 200 at once. Prints calls/s and the client's CPU
// microseconds per call (getrusage of this process only), per round:
//   . scripts/certs.sh && make_certs /tmp/certs
//   build/bench/tscb-client-bench /tmp/certs [CALLS [CONCURRENCY [ROUNDS]]]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "daemon/http_server.hpp"
#include "daemon/https_client.hpp"
#include "daemon/tls_context.hpp"

namespace {

namespace asio = tscb::daemon::asio;
namespace http = tscb::daemon::http;

class Answer200 final : public tscb::daemon::HttpHandler {
 public:
  std::optional<tscb::daemon::Response> OnHeader(const http::request_header<>&,
                                                 tscb::daemon::RequestContext&) override {
    return std::nullopt;
  }
  asio::awaitable<tscb::daemon::Response> OnRequest(tscb::daemon::Request& req,
                                                    tscb::daemon::RequestContext&) override {
    co_return tscb::daemon::MakeJsonResponse(
        http::status::ok, req.version(), R"({"requestId":"0d5e5c1b-3c1f-4b5e-9d36-6e1f0f3a2b11"})");
  }
  void OnRejected(tscb::daemon::Rejection, const std::string&) override {}
};

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: tscb-client-bench CERT_DIR [CALLS [CONCURRENCY [ROUNDS]]]\n");
    return 2;
  }
  const std::string certs = argv[1];
  const long calls = argc > 2 ? std::atol(argv[2]) : 20000;
  const int concurrency = argc > 3 ? std::atoi(argv[3]) : 16;
  const int rounds = argc > 4 ? std::atoi(argv[4]) : 5;
  if (calls <= 0 || calls > 10'000'000 || concurrency <= 0 || concurrency > 1024 || rounds <= 0 ||
      rounds > 100) {
    std::fprintf(stderr,
                 "tscb-client-bench: CALLS 1..10000000, CONCURRENCY 1..1024, ROUNDS 1..100\n");
    return 2;
  }

  int ready[2];
  if (pipe(ready) != 0) return 1;
  const pid_t child = fork();
  if (child < 0) return 1;
  if (child == 0) {
    close(ready[0]);
    asio::io_context ioc(1);
    auto tls = tscb::daemon::MakeServerTlsContext(
        tscb::config::TlsConfig{true, certs + "/cert.pem", certs + "/key.pem", false});
    Answer200 handler;
    tscb::daemon::HttpServer server(ioc, "bench", tls, tscb::daemon::ServerLimits{}, handler,
                                    nullptr);
    const std::uint16_t port = server.Bind("127.0.0.1", 0);
    server.Start();
    (void)!write(ready[1], &port, sizeof port);
    ioc.run_for(std::chrono::minutes(10));  // bounded; the parent stops it first
    _exit(0);
  }
  close(ready[1]);
  std::uint16_t port = 0;
  const bool listening = read(ready[0], &port, sizeof port) == sizeof port;
  close(ready[0]);
  int status = 1;
  if (listening) {
    asio::io_context ioc(1);
    tscb::daemon::ClientOptions options;
    options.ca_file = certs + "/ca.pem";
    options.max_idle_per_host = static_cast<std::size_t>(concurrency);
    tscb::daemon::HttpsClient client(ioc.get_executor(), options);
    const std::string url =
        "https://localhost:" + std::to_string(port) + "/api/m2m/v1/devices/actions/activate";
    const std::string body =
        R"({"devices":[{"deviceIds":[{"id":"990013907835573","kind":"imei"}]}],"accountName":"0000123456-00001","servicePlan":"m2m_4G"})";
    status = 0;
    for (int r = 0; r < rounds; ++r) {
      long left = calls, failed = 0;
      const double cpu0 = CpuSeconds();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < concurrency; ++i) {
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
              while (left > 0) {
                --left;
                tscb::daemon::ClientRequest req{
                    http::verb::post,
                    url,
                    {{"Content-Type", "application/json"}, {"Authorization", "Bearer x"}},
                    body};
                auto res = co_await client.Send(std::move(req));
                if (res.status != 200) ++failed;
              }
            },
            asio::detached);
      }
      ioc.run_for(std::chrono::minutes(2));
      ioc.restart();
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double cpu = CpuSeconds() - cpu0;
      std::printf(
          "{\"round\":%d,\"calls\":%ld,\"failed\":%ld,\"concurrency\":%d,\"calls_per_s\":%.0f,"
          "\"client_cpu_us_per_call\":%.2f}\n",
          r + 1, calls, failed, concurrency, calls / secs, cpu / calls * 1e6);
      std::fflush(stdout);
      if (failed > 0) status = 1;
    }
    client.CloseIdle();
  }
  kill(child, SIGTERM);
  waitpid(child, nullptr, 0);
  return status;
}
