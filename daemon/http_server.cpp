#include "daemon/http_server.hpp"

#include "daemon/tls_stream.hpp"

#include <spdlog/spdlog.h>

#include <type_traits>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>

namespace tscb::daemon {

// Per-connection state Stop() may touch; only ever used on the session's
// executor (a network thread, or a strand).
struct HttpServer::Live {
  asio::any_io_executor executor;
  beast::tcp_stream* lowest = nullptr;  // null once the stream is gone
  bool idle = false;                    // waiting for a request, nothing received yet
  // While waiting for a request's first byte without a timer of its own:
  // when SweepIdle() closes it (steady clock, ns); 0 when not waiting.
  std::atomic<std::int64_t> wait_until{0};
  // When that wait began, and whether the connection still holds the
  // buffers of its last request: SweepIdle() has them released once the
  // wait passes kKeepBuffers.
  std::atomic<std::int64_t> wait_since{0};
  std::atomic<bool> holds_buffers{false};
  // Releases them; set by Serve(), used only on `executor`, and only while
  // wait_until is set (the session is suspended in its wait).
  std::function<void()> release;
};

namespace {

constexpr std::size_t kFirstRead = 4096;  // a whole callback, most of the time
// A busy connection (its last request came within this time of the answer
// before it) waits for the next one with its buffers, for this long at
// most: allocating them again for each request cost about 7 % of the
// daemon's CPU per callback. Any other connection lets them go before it
// waits, so idle ones hold a few KiB, and connections that send one
// callback each never interleave buffers with what outlives them.
constexpr auto kKeepBuffers = std::chrono::seconds(1);

bool IsHttpParseError(const boost::system::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

bool IsQuietClose(const boost::system::error_code& ec) {
  return ec == http::error::end_of_stream || ec == http::error::partial_message ||
         ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == ssl::error::stream_truncated;
}

// Clears Live's stream pointer before the stream it points to is destroyed.
struct Detach {
  std::function<void()> fn;
  ~Detach() { fn(); }
};

}  // namespace

Response MakeJsonResponse(http::status status, unsigned version, const std::string& json_body) {
  Response res{status, version};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "ts-callbackd");
  // An API's answers: never sniffed as another type, never cached.
  res.set("X-Content-Type-Options", "nosniff");
  res.set(http::field::cache_control, "no-store");
  res.body() = json_body;
  return res;
}

Response MakeError(http::status status, unsigned version, const std::string& message) {
  return MakeJsonResponse(
      status, version,
      "{\"error\":" + boost::json::serialize(boost::json::string_view(message)) + "}");
}

HttpServer::HttpServer(asio::io_context& ioc, std::string name, std::shared_ptr<ssl::context> tls,
                       ServerLimits limits, HttpHandler& handler,
                       prometheus::Gauge* open_connections, IoPool* sessions)
    : ioc_(ioc),
      sessions_(sessions),
      name_(std::move(name)),
      tls_(std::move(tls)),
      limits_(limits),
      handler_(handler),
      acceptor_(asio::make_strand(ioc)),
      registry_(std::make_shared<Registry>()) {
  registry_->gauge = open_connections;
}

std::uint16_t HttpServer::Bind(const std::string& address, std::uint16_t port) {
  tcp::endpoint endpoint(asio::ip::make_address(address), port);
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  if (endpoint.address().is_v6()) acceptor_.set_option(asio::ip::v6_only(false));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  return acceptor_.local_endpoint().port();
}

void HttpServer::Start() {
  asio::co_spawn(acceptor_.get_executor(), AcceptLoop(), asio::detached);
  asio::co_spawn(acceptor_.get_executor(), SweepIdle(), asio::detached);
}

asio::awaitable<void> HttpServer::SweepIdle() {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  auto registry = registry_;
  while (!stopping_) {
    tick.expires_after(std::chrono::milliseconds(250));
    co_await tick.async_wait(kUse);
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    const auto keep = std::chrono::nanoseconds(kKeepBuffers).count();
    std::vector<std::shared_ptr<Live>> overdue;
    std::vector<std::shared_ptr<Live>> quiet;
    {
      std::lock_guard lock(registry->mu);
      for (auto& [id, live] : registry->live) {
        auto until = live->wait_until.load();
        if (until == 0) continue;
        if (until <= now)
          overdue.push_back(live);
        else if (live->holds_buffers.load() && now - live->wait_since.load() >= keep)
          quiet.push_back(live);
      }
    }
    for (auto& live : quiet) {
      live->holds_buffers = false;
      asio::post(live->executor, [live] {
        // On the session's executor: still suspended in a wait (this one or
        // a later one), so nothing uses the buffers.
        if (live->wait_until.load() != 0 && live->release) live->release();
      });
    }
    for (auto& live : overdue)
      asio::post(live->executor, [live] {
        // Checked again on the session's executor: by now it may be waiting
        // for a later request, with a later deadline.
        auto until = live->wait_until.load();
        if (until != 0 && until <= std::chrono::steady_clock::now().time_since_epoch().count() &&
            live->lowest)
          live->lowest->cancel();
      });
  }
}

void HttpServer::Stop(std::function<void()> on_drained) {
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  std::vector<std::shared_ptr<Live>> sessions;
  bool drained;
  {
    std::lock_guard lock(registry_->mu);
    for (auto& [id, live] : registry_->live) sessions.push_back(live);
    drained = registry_->live.empty();
    if (!drained) registry_->on_drained = std::move(on_drained);
  }
  // Idle keep-alive connections are closed now; busy ones finish their request.
  for (auto& live : sessions)
    asio::post(live->executor, [live] {
      if (live->idle && live->lowest) live->lowest->cancel();
    });
  if (drained && on_drained) on_drained();
}

std::uint64_t HttpServer::Registry::Add(std::shared_ptr<Live> session) {
  std::uint64_t id;
  {
    std::lock_guard lock(mu);
    id = next_id++;
    live.emplace(id, std::move(session));
  }
  ++open;
  if (gauge) gauge->Increment();
  return id;
}

void HttpServer::Registry::Remove(std::uint64_t id) {
  std::function<void()> done;
  {
    std::lock_guard lock(mu);
    live.erase(id);
    if (live.empty() && on_drained) done = std::exchange(on_drained, nullptr);
  }
  --open;
  if (gauge) gauge->Decrement();
  if (done) done();
}

asio::awaitable<void> HttpServer::AcceptLoop() {
  for (;;) {
    // Chosen in a statement of its own: with the conditional expression
    // inside the co_await's operands, GCC 12 called Next() on a null
    // sessions_ (the admin listener) and the daemon crashed.
    asio::any_io_executor home;
    if (sessions_)
      home = sessions_->Next();
    else
      home = asio::make_strand(ioc_);
    auto [ec, socket] = co_await acceptor_.async_accept(home, kUse);
    if (stopping_) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted) co_return;
      // Out of descriptors and the like: log (once a minute at most),
      // breathe, go on.
      auto now = std::chrono::steady_clock::now();
      ++accept_failures_;
      if (now - last_accept_log_ > std::chrono::minutes(1)) {
        spdlog::warn("{}: accept failed: {} ({} time(s) since the last report)", name_,
                     ec.message(), accept_failures_);
        accept_failures_ = 0;
        last_accept_log_ = now;
      }
      asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(kUse);
      continue;
    }
    if (registry_->open.load() >= limits_.max_connections) {
      boost::system::error_code pec;
      auto who = socket.remote_endpoint(pec);
      handler_.OnRejected(Rejection::kConnectionLimit, pec ? "" : who.address().to_string());
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(socket.get_executor(), Session(std::move(socket)), asio::detached);
  }
}

void HttpServer::SetTls(std::shared_ptr<ssl::context> tls) {
  std::lock_guard lock(tls_mu_);
  tls_ = std::move(tls);
}

std::shared_ptr<ssl::context> HttpServer::CurrentTls() const {
  std::lock_guard lock(tls_mu_);
  return tls_;
}

asio::awaitable<void> HttpServer::Session(tcp::socket socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  std::string peer = ec ? std::string() : endpoint.address().to_string();
  auto live = std::make_shared<Live>();
  live->executor = socket.get_executor();
  auto registry = registry_;  // kept alive by this frame (see Registry)
  std::uint64_t id = registry->Add(live);
  Detach ended{[registry, id] { registry->Remove(id); }};

  if (auto tls = CurrentTls()) {  // kept alive by this frame across a rotation
    // Nothing TLS-sized (the TLS stream's buffers are tens of KiB) exists
    // until the client sends its first byte: a connection that never does
    // costs a socket and this frame until the request timeout.
    std::optional<beast::tcp_stream> tcp(std::in_place, std::move(socket));
    {
      using namespace asio::experimental::awaitable_operators;
      live->lowest = &*tcp;
      live->idle = true;
      Detach detach{[&live] {
        live->lowest = nullptr;
        live->idle = false;
      }};
      asio::steady_timer deadline(live->executor, limits_.request_timeout);
      auto first = co_await (tcp->socket().async_wait(tcp::socket::wait_read, kUse) ||
                             deadline.async_wait(kUse));
      if (first.index() == 1) {
        handler_.OnRejected(Rejection::kTimeout, peer);
        co_return;
      }
      if (std::get<0>(std::get<0>(first))) co_return;  // cancelled by Stop(), or closed
    }
    TlsStream stream(std::move(*tcp), *tls);
    // Beast moves a stream's state into a new allocation and leaves the
    // moved-from one its own (about 0.5 KiB): let it go now, not at close.
    tcp.reset();
    live->lowest = &beast::get_lowest_layer(stream);
    Detach detach{[&live] { live->lowest = nullptr; }};
    live->lowest->expires_after(limits_.request_timeout);
    auto [hec] = co_await stream.async_handshake(kUse);
    if (hec) {
      if (!IsQuietClose(hec))
        handler_.OnRejected(
            hec == beast::error::timeout ? Rejection::kTimeout : Rejection::kTlsHandshake, peer);
      co_return;
    }
    co_await Serve(stream, *live, peer);
    live->lowest->expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(kUse);
  } else {
    beast::tcp_stream stream(std::move(socket));
    live->lowest = &stream;
    Detach detach{[&live] { live->lowest = nullptr; }};
    co_await Serve(stream, *live, peer);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
}

template <class Stream>
asio::awaitable<bool> HttpServer::Send(Stream& stream, Response& response) {
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>)
    response.set(http::field::strict_transport_security, "max-age=31536000");
  response.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(limits_.request_timeout);
  auto [ec, n] = co_await http::async_write(stream, response, kUse);
  co_return !ec;
}

// An error answered before the request was read to the end: send it, then
// read and drop what the client is still sending (1 s, 1 MiB at most) before
// closing. Closing with unread data makes the kernel reset the connection,
// and a reset can overtake the answer on its way to the client.
template <class Stream>
asio::awaitable<void> HttpServer::SendAndClose(Stream& stream, Response& response) {
  response.keep_alive(false);
  if (!co_await Send(stream, response)) co_return;
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
  char scratch[16 * 1024];
  std::size_t drained = 0;
  while (drained < 1024 * 1024) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(scratch), kUse);
    if (ec) break;
    drained += n;
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Serve(Stream& stream, Live& live, const std::string& peer) {
  beast::flat_buffer buffer;
  live.release = [&buffer, &stream] {
    // Without buffers: an idle connection holds its TLS state and little
    // else (the memory target for 10,000 idle connections).
    buffer.shrink_to_fit();
    if constexpr (std::is_same_v<Stream, TlsStream>) stream.Trim();
  };
  Detach forget{[&live] { live.release = nullptr; }};
  bool first = true;
  // The last request came within kKeepBuffers of the answer before it (the
  // wait for the first one does not count): the connection waits for the
  // next one with its buffers.
  bool busy = false;
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header_bytes));
    parser.body_limit(limits_.max_body_bytes);
    auto& lowest = beast::get_lowest_layer(stream);
    lowest.expires_after(first ? limits_.request_timeout : limits_.idle_timeout);
    // Idle (Stop() may close it) only until the next request's first bytes.
    if (buffer.size() == 0) {
      live.idle = true;
      bool buffered = false;
      if constexpr (std::is_same_v<Stream, TlsStream>) buffered = stream.HasBufferedInput();
      if (!buffered) {
        if (!busy) live.release();
        auto timeout = first ? limits_.request_timeout : limits_.idle_timeout;
        auto since = std::chrono::steady_clock::now();
        live.wait_since = since.time_since_epoch().count();
        live.holds_buffers = busy;
        live.wait_until = (since + timeout).time_since_epoch().count();
        auto [wec] = co_await lowest.socket().async_wait(tcp::socket::wait_read, kUse);
        live.wait_until = 0;
        if (wec) co_return;  // timed out (SweepIdle), closed or stopped before a request began
        busy = !first && std::chrono::steady_clock::now() - since < kKeepBuffers;
      }
      auto [fec, fn] = co_await stream.async_read_some(buffer.prepare(kFirstRead), kUse);
      live.idle = false;
      buffer.commit(fn);
      if (fec) co_return;
    }
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kUse);
    if (ec) {
      unsigned version = 11;
      if (ec == http::error::header_limit) {
        handler_.OnRejected(Rejection::kHeadersTooLarge, peer);
        auto res = MakeError(http::status::request_header_fields_too_large, version,
                             "request headers too large");
        co_await SendAndClose(stream, res);
      } else if (ec == http::error::body_limit) {
        handler_.OnRejected(Rejection::kBodyTooLarge, peer);
        auto res = MakeError(http::status::payload_too_large, version, "request body too large");
        co_await SendAndClose(stream, res);
      } else if (ec == beast::error::timeout) {
        if (parser.got_some() || buffer.size() > 0) handler_.OnRejected(Rejection::kTimeout, peer);
      } else if (IsHttpParseError(ec) && !IsQuietClose(ec)) {
        handler_.OnRejected(Rejection::kBadRequest, peer);
        auto res = MakeError(http::status::bad_request, version, "malformed HTTP request");
        co_await SendAndClose(stream, res);
      }
      co_return;
    }
    first = false;

    RequestContext ctx;
    ctx.peer_ip = peer;
    ctx.started = std::chrono::steady_clock::now();
    const auto& header = parser.get();
    if (auto early = handler_.OnHeader(header, ctx)) {
      // Read (and drop) a body that fits, so the client sees the answer
      // instead of a reset; then close.
      if (!parser.is_done()) {
        lowest.expires_after(limits_.request_timeout);
        co_await http::async_read(stream, buffer, parser, kUse);
      }
      if (parser.is_done()) {
        early->keep_alive(false);
        co_await Send(stream, *early);
      } else {
        co_await SendAndClose(stream, *early);
      }
      co_return;
    }
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      http::response<http::empty_body> proceed{http::status::continue_, header.version()};
      lowest.expires_after(limits_.request_timeout);
      auto [cec, cn] = co_await http::async_write(stream, proceed, kUse);
      if (cec) co_return;
    }
    lowest.expires_after(limits_.request_timeout);
    std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, kUse);
    if (ec) {
      if (ec == http::error::body_limit) {
        handler_.OnRejected(Rejection::kBodyTooLarge, peer);
        auto res =
            MakeError(http::status::payload_too_large, header.version(), "request body too large");
        co_await SendAndClose(stream, res);
      } else if (ec == beast::error::timeout) {
        handler_.OnRejected(Rejection::kTimeout, peer);
      } else if (IsHttpParseError(ec) && !IsQuietClose(ec)) {
        handler_.OnRejected(Rejection::kBadRequest, peer);
        auto res = MakeError(http::status::bad_request, header.version(), "malformed HTTP request");
        co_await SendAndClose(stream, res);
      }
      co_return;
    }
    Request request = parser.release();
    bool keep_alive = request.keep_alive();
    Response response = co_await handler_.OnRequest(request, ctx);
    response.keep_alive(keep_alive && !stopping_ && response.keep_alive());
    if (!co_await Send(stream, response) || !response.keep_alive()) co_return;
  }
}

}  // namespace tscb::daemon
