#pragma once
// One HTTP(S)/1.1 listener: an accept loop and one C++20 coroutine per
// connection, on a network thread of an IoPool (or on its own strand of the
// listener's io_context without one), with a deadline on every read and write,
// header and body size limits, and a connection cap. What to answer is
// decided by an HttpHandler (the callback endpoint, the admin endpoint).
// Stop() closes the acceptor, closes idle keep-alive connections and lets
// requests in flight finish; `on_drained` fires when the last one ends.
// Start/Stop are called from the io_context's threads or before run().
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "daemon/io_pool.hpp"
#include "daemon/metrics.hpp"
#include "daemon/net.hpp"

namespace tscb::daemon {

struct RequestContext {
  std::string peer_ip;                            // TCP peer
  std::size_t route = 0;                          // set by the handler in OnHeader
  std::string client_ip;                          // set by the handler (after X-Forwarded-For)
  std::chrono::steady_clock::time_point started;  // header fully read
};

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  // Called once the header is read. A response returned here is sent
  // instead of handling the request (the body is drained first when it is
  // within limits) and the connection is closed.
  virtual std::optional<Response> OnHeader(const http::request_header<>& header,
                                           RequestContext& ctx) = 0;
  virtual asio::awaitable<Response> OnRequest(Request& request, RequestContext& ctx) = 0;
  // A connection or request refused before it reached OnHeader/OnRequest
  // (limits, malformed HTTP, too slow, TLS handshake). `peer` may be "".
  virtual void OnRejected(Rejection rejection, const std::string& peer) = 0;
};

struct ServerLimits {
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_header_bytes = 8 * 1024;
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::size_t max_connections = 10'000;
};

// A short JSON error body: {"error": "..."}; never echoes input.
Response MakeJsonResponse(http::status status, unsigned version, const std::string& json_body);
Response MakeError(http::status status, unsigned version, const std::string& message);

class HttpServer {
 public:
  // `tls` null means plain HTTP. `open_connections` may be null. The accept
  // loop runs on `ioc`; connections on `sessions` when given (which must
  // outlive them), else each on a strand of `ioc`.
  HttpServer(asio::io_context& ioc, std::string name, std::shared_ptr<ssl::context> tls,
             ServerLimits limits, HttpHandler& handler, prometheus::Gauge* open_connections,
             IoPool* sessions = nullptr);

  // Binds and listens; throws boost::system::system_error. Returns the port.
  std::uint16_t Bind(const std::string& address, std::uint16_t port);
  void Start();
  void Stop(std::function<void()> on_drained);
  std::size_t OpenConnections() const { return registry_->open.load(); }
  // Certificate rotation: handshakes from now on use `tls`; connections
  // already open keep the context they started with. Only for a server
  // constructed with TLS.
  void SetTls(std::shared_ptr<ssl::context> tls);

 private:
  struct Live;
  asio::awaitable<void> AcceptLoop();
  // Closes connections whose wait for a request passed its deadline
  // (Live::wait_until), and has those waiting longer than kKeepBuffers let
  // go of their buffers, a few times a second: one timer for all of them
  // instead of one per request.
  asio::awaitable<void> SweepIdle();
  asio::awaitable<void> Session(tcp::socket socket);
  template <class Stream>
  asio::awaitable<void> Serve(Stream& stream, Live& live, const std::string& peer);
  template <class Stream>
  asio::awaitable<bool> Send(Stream& stream, Response& response);
  template <class Stream>
  asio::awaitable<void> SendAndClose(Stream& stream, Response& response);

  asio::io_context& ioc_;
  IoPool* sessions_;
  std::string name_;
  std::shared_ptr<ssl::context> CurrentTls() const;

  mutable std::mutex tls_mu_;
  std::shared_ptr<ssl::context> tls_;
  ServerLimits limits_;
  HttpHandler& handler_;
  tcp::acceptor acceptor_;

  std::atomic<bool> stopping_{false};
  // Only the accept loop (one coroutine) touches these.
  std::uint64_t accept_failures_ = 0;
  std::chrono::steady_clock::time_point last_accept_log_{};
  // The open connections. Shared with every session coroutine, because a
  // session can outlive the server: when the event loop is stopped with
  // connections open, their coroutine frames are destroyed with the
  // io_context, after this object.
  struct Registry {
    prometheus::Gauge* gauge = nullptr;
    std::atomic<std::size_t> open{0};
    std::mutex mu;
    std::uint64_t next_id = 0;
    std::map<std::uint64_t, std::shared_ptr<Live>> live;
    std::function<void()> on_drained;
    std::uint64_t Add(std::shared_ptr<Live> live);
    void Remove(std::uint64_t id);
  };
  std::shared_ptr<Registry> registry_;
};

}  // namespace tscb::daemon
