// tscb-load: posts realistic ThingSpace callbacks over HTTPS and reports
// throughput and latency, for bench/run.sh. Each connection is a coroutine
// that sends one request at a time (keep-alive, or a new TLS connection per
// request). Every request carries a unique requestId, so the receiver's
// table must end with exactly one row per 2xx. Bounded by --seconds.
// --hold: each connection sends one callback, then stays open and silent
// until --seconds have passed (the memory of many idle TLS connections);
// "holding N" goes to stderr once all N have been answered.
#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

struct Options {
  int port = 0;
  std::string ca;
  std::string target = "/callbacks/CarrierService";
  std::string username = "bench";
  std::string password = "bench";
  std::string run_id = "run";
  int connections = 64;
  double seconds = 10;
  bool new_connection = false;
  bool resume = false;  // with new_connection: offer the previous connection's session
  bool hold = false;
  int threads = 1;
};

struct Stats {
  std::vector<std::uint32_t> latency_us;
  long ok = 0, non_2xx = 0, errors = 0, connects = 0, resumed = 0;
};

std::string Body(const Options& o, int conn, long i) {
  char iccid[32];
  std::snprintf(iccid, sizeof iccid, "891480000%02d%09ld", conn % 100, i % 1000000000);
  std::string id = o.run_id + "-" + std::to_string(conn) + "-" + std::to_string(i);
  return std::string(R"({"username":")") + o.username + R"(","password":")" + o.password +
         R"(","requestId":")" + id + R"(","deviceIds":[{"id":")" + iccid +
         R"(","kind":"iccid"},{"id":"99001390783)" + std::to_string(1000 + conn) +
         R"(","kind":"imei"}],"deviceResponse":{"activateResponse":{"deviceIds":[{"id":"1555555)" +
         std::to_string(1000 + conn % 9000) +
         R"(","kind":"msisdn"}],"ipAddress":"10.0.0.17","servicePlan":"M2M5GB","state":"active"}},)" +
         R"("status":"Success","callbackCount":1,"maxCallbackThreshold":4})";
}

asio::awaitable<void> Connection(const Options& o, ssl::context& ctx, int conn,
                                 Clock::time_point end, Stats& stats) {
  auto ex = co_await asio::this_coro::executor;
  static std::atomic<int> held{0};
  asio::steady_timer timer(ex);
  if (o.hold) {  // 500 new connections a second, not all at once
    timer.expires_after(std::chrono::milliseconds(2) * conn);
    co_await timer.async_wait(kUse);
  }
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(o.port));
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> stream;
  beast::flat_buffer buffer;
  // The last session the server gave this connection (--resume).
  std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)> session(nullptr, SSL_SESSION_free);
  long i = 0;
  const std::string head = "POST " + o.target +
                           " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
                           (o.new_connection ? "Connection: close\r\n" : "") + "Content-Length: ";
  std::string request;
  while (Clock::now() < end) {
    // A new connection per callback: its latency includes the connect and
    // the handshake. Keep-alive: from the request's write, so that opening
    // the connections at the start (256 handshakes at once) is not counted
    // as the first callbacks' wait for their answer.
    auto start = Clock::now();
    if (!stream) {
      stream = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex, ctx);
      SSL_set_tlsext_host_name(stream->native_handle(), "localhost");
      if (session) SSL_set_session(stream->native_handle(), session.get());
      auto& lowest = beast::get_lowest_layer(*stream);
      lowest.expires_after(std::chrono::seconds(10));
      auto [cec] = co_await lowest.async_connect(endpoint, kUse);
      if (!cec) std::tie(cec) = co_await stream->async_handshake(ssl::stream_base::client, kUse);
      ++stats.connects;
      if (cec) {
        ++stats.errors;
        stream.reset();
        continue;
      }
      if (SSL_session_reused(stream->native_handle())) ++stats.resumed;
      buffer.clear();
    }
    // Written as one string (one TLS record) instead of through Beast's
    // serializer: this client shares the 2 cores with the server it
    // measures, so it should take as little of them as it can.
    if (!o.new_connection) start = Clock::now();
    const std::string body = Body(o, conn, i++);
    request.assign(head);
    request += std::to_string(body.size());
    request += "\r\n\r\n";
    request += body;
    beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(10));
    auto [wec, wn] = co_await asio::async_write(*stream, asio::buffer(request), kUse);
    http::response<http::string_body> res;
    boost::system::error_code rec = wec;
    if (!wec) std::tie(rec, wn) = co_await http::async_read(*stream, buffer, res, kUse);
    if (rec) {
      ++stats.errors;
      stream.reset();
      continue;
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
    stats.latency_us.push_back(static_cast<std::uint32_t>(us));
    if (res.result_int() / 100 == 2)
      ++stats.ok;
    else
      ++stats.non_2xx;
    if (o.hold && res.result_int() / 100 == 2) {
      if (++held == o.connections) std::fprintf(stderr, "holding %d\n", o.connections);
      timer.expires_at(end);
      co_await timer.async_wait(kUse);
      co_return;
    }
    // Read with the answer: the server's TLS 1.3 tickets came before it.
    if (o.resume) session.reset(SSL_get1_session(stream->native_handle()));
    if (o.new_connection || !res.keep_alive()) {
      beast::get_lowest_layer(*stream).expires_after(std::chrono::seconds(1));
      co_await stream->async_shutdown(kUse);
      stream.reset();
    }
  }
}

int main(int argc, char** argv) try {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--port")
      o.port = std::stoi(next());
    else if (a == "--ca")
      o.ca = next();
    else if (a == "--target")
      o.target = next();
    else if (a == "--username")
      o.username = next();
    else if (a == "--password")
      o.password = next();
    else if (a == "--run-id")
      o.run_id = next();
    else if (a == "--connections")
      o.connections = std::stoi(next());
    else if (a == "--seconds")
      o.seconds = std::stod(next());
    else if (a == "--threads")
      o.threads = std::stoi(next());
    else if (a == "--new-connection")
      o.new_connection = true;
    else if (a == "--print-body") {  // one callback body, for other tools (pgbench)
      std::printf("%s\n", Body(o, 0, 0).c_str());
      return 0;
    } else if (a == "--hold")
      o.hold = true;
    else if (a == "--resume")
      o.new_connection = o.resume = true;
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (o.port <= 0 || o.seconds <= 0 || o.seconds > 600 || o.connections < 1 || o.threads < 1 ||
      o.connections > 20000) {
    std::cerr << "usage: tscb-load --port P [--ca FILE] [--connections N] [--seconds S<=600] "
                 "[--new-connection | --resume | --hold] [--target PATH] [--username U --password "
                 "P] [--run-id ID]\n";
    return 2;
  }
  ssl::context ctx(ssl::context::tls_client);
  if (!o.ca.empty()) {
    ctx.load_verify_file(o.ca);
    ctx.set_verify_mode(ssl::verify_peer);
  }
  std::vector<Stats> per_conn(o.connections);
  // One thread (the default): no strands, no locks.
  asio::io_context ioc(o.threads);
  auto start = Clock::now();
  auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  for (int c = 0; c < o.connections; ++c) {
    asio::any_io_executor ex = ioc.get_executor();
    if (o.threads > 1) ex = asio::make_strand(ioc);
    asio::co_spawn(ex, Connection(o, ctx, c, end, per_conn[c]), asio::detached);
  }
  std::vector<std::thread> pool;
  for (int t = 1; t < o.threads; ++t) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  Stats all;
  for (auto& s : per_conn) {
    all.latency_us.insert(all.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
    all.ok += s.ok;
    all.non_2xx += s.non_2xx;
    all.errors += s.errors;
    all.connects += s.connects;
    all.resumed += s.resumed;
  }
  std::sort(all.latency_us.begin(), all.latency_us.end());
  auto pct = [&](double p) -> double {
    if (all.latency_us.empty()) return 0;
    auto idx =
        std::min(all.latency_us.size() - 1, static_cast<std::size_t>(p * all.latency_us.size()));
    return all.latency_us[idx] / 1000.0;
  };
  std::printf(
      "{\"ok\":%ld,\"non_2xx\":%ld,\"errors\":%ld,\"connects\":%ld,\"resumed\":%ld,"
      "\"seconds\":%.2f,"
      "\"rps\":%.0f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"p999_ms\":%.2f}\n",
      all.ok, all.non_2xx, all.errors, all.connects, all.resumed, elapsed, all.ok / elapsed,
      pct(0.50), pct(0.99), pct(0.999));
  return 0;
} catch (const std::exception& e) {
  std::cerr << "tscb-load: " << e.what() << " (check the numeric options)\n";
  return 2;
}
