#include "daemon/https_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/url/parse.hpp>
#include <cctype>

#include "daemon/tls_stream.hpp"
#include "handlers/json_fields.hpp"

namespace tscb::daemon {

struct HttpsClient::Connection {
  std::unique_ptr<TlsStream> tls;
  std::unique_ptr<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;

  beast::tcp_stream& Tcp() { return tls ? tls->next_layer() : *plain; }
  // Back in the pool: let go of what the exchange grew (the response buffer,
  // the TLS stream's own buffers and BIOs; OpenSSL's record buffers are
  // already gone, SSL_MODE_RELEASE_BUFFERS). The next use allocates them
  // again (a few microseconds), so a pool of idle connections holds a few
  // KiB each instead of about 100 KiB with Asio's ssl::stream.
  void Trim() {
    buffer.clear();
    buffer.shrink_to_fit();
    if (tls) tls->Trim();
  }
  void Close() {
    beast::error_code ignored;
    Tcp().socket().close(ignored);
  }
};

namespace {

bool IsStaleConnectionError(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

}  // namespace

HttpsClient::HttpsClient(asio::any_io_executor executor, ClientOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      tls_(std::make_shared<ssl::context>(ssl::context::tls_client)) {
  SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
  if (options_.verify_peer) {
    tls_->set_verify_mode(ssl::verify_peer);
    if (options_.ca_file.empty())
      tls_->set_default_verify_paths();
    else
      tls_->load_verify_file(options_.ca_file);  // throws naming nothing; callers check the file
  } else {
    tls_->set_verify_mode(ssl::verify_none);
  }
}

HttpsClient::~HttpsClient() { CloseIdle(); }

void HttpsClient::CloseIdle() {
  for (auto& [key, host] : hosts_) {
    for (auto& conn : host.idle) conn->Close();
    host.idle.clear();
  }
}

void HttpsClient::WakeOne(Host& host) {
  // A waiter whose deadline has just passed is on its way already.
  while (!host.waiting.empty()) {
    asio::steady_timer* next = host.waiting.front();
    host.waiting.pop_front();
    if (next->cancel() > 0) return;
  }
}

asio::awaitable<std::unique_ptr<HttpsClient::Connection>> HttpsClient::Acquire(Host& host) {
  const auto deadline = std::chrono::steady_clock::now() + options_.connect_timeout;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    while (!host.idle.empty()) {
      auto candidate = std::move(host.idle.back());
      host.idle.pop_back();
      if (now - candidate->idle_since < options_.keep_idle) co_return candidate;
      candidate->Close();
    }
    if (host.connecting < options_.max_connecting_per_host || now >= deadline) co_return nullptr;
    asio::steady_timer wake(executor_, deadline);
    host.waiting.push_back(&wake);
    co_await wake.async_wait(kUse);
    std::erase(host.waiting, &wake);
  }
}

asio::awaitable<std::unique_ptr<HttpsClient::Connection>> HttpsClient::Open(const Target& target,
                                                                            std::string& error) {
  tcp::resolver resolver(executor_);
  auto [rec, endpoints] = co_await resolver.async_resolve(target.host, target.port, kUse);
  if (rec) {
    error = "resolve " + target.host + ": " + rec.message();
    co_return nullptr;
  }
  beast::tcp_stream tcp(executor_);
  tcp.expires_after(options_.connect_timeout);
  auto [cec, ep] = co_await tcp.async_connect(endpoints, kUse);
  if (cec) {
    error = "connect " + target.host + ":" + target.port + ": " +
            (cec == beast::error::timeout ? std::string("timed out") : cec.message());
    co_return nullptr;
  }
  auto conn = std::make_unique<Connection>();
  if (!target.tls) {
    conn->plain = std::make_unique<beast::tcp_stream>(std::move(tcp));
    co_return conn;
  }
  conn->tls = std::make_unique<TlsStream>(std::move(tcp), *tls_, TlsStream::Role::kClient);
  SSL* ssl = conn->tls->native_handle();
  // OpenSSL's record buffers (about 17 KiB each way) only while a record is
  // read or written: a call waiting for ThingSpace's answer on a reused
  // connection holds none, so a burst of actions in flight costs a few KiB
  // each. (The listener keeps them on busy connections instead: at its
  // request rates, freeing and allocating them per record cost about 7 % of
  // the CPU per callback; an action is a far costlier exchange.)
  SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  // SNI, and the certificate must name the host we asked for: a DNS name,
  // or the IP address itself when the URL gives one.
  if (!SSL_set_tlsext_host_name(ssl, target.host.c_str())) {
    error = "TLS SNI for " + target.host + " failed";
    co_return nullptr;
  }
  if (options_.verify_peer) {
    boost::system::error_code not_ip;
    (void)asio::ip::make_address(target.host, not_ip);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const int named = not_ip ? X509_VERIFY_PARAM_set1_host(param, target.host.c_str(), 0)
                             : X509_VERIFY_PARAM_set1_ip_asc(param, target.host.c_str());
    if (named != 1) {
      error = "TLS peer name " + target.host + " not accepted by OpenSSL";
      co_return nullptr;
    }
  }
  auto [hec] = co_await conn->tls->async_handshake(kUse);
  if (hec) {
    error = "TLS handshake with " + target.host + ":" + target.port + ": ";
    if (hec == beast::error::timeout) {
      error += "timed out";
    } else if (const long v = SSL_get_verify_result(ssl); v != X509_V_OK) {
      error += std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
    } else {
      error += hec.message();
    }
    co_return nullptr;
  }
  co_return conn;
}

asio::awaitable<ClientResponse> HttpsClient::Exchange(Connection& conn, const Target& target,
                                                      const ClientRequest& request, Fate& fate) {
  ClientResponse out;
  http::request<http::string_body> req{request.method, target.path, 11};
  req.set(http::field::host, target.host);
  req.set(http::field::user_agent, "ts-callbackd/0.1");
  req.keep_alive(true);
  for (const auto& [name, value] : request.headers) req.set(name, value);
  if (!request.body.empty() || request.method == http::verb::post ||
      request.method == http::verb::put) {
    req.body() = request.body;
    req.prepare_payload();
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  parser.header_limit(64 * 1024);
  conn.Tcp().expires_after(options_.request_timeout);
  beast::error_code ec;
  if (conn.tls) {
    std::tie(ec, std::ignore) = co_await http::async_write(*conn.tls, req, kUse);
    if (!ec)
      std::tie(ec, std::ignore) = co_await http::async_read(*conn.tls, conn.buffer, parser, kUse);
  } else {
    std::tie(ec, std::ignore) = co_await http::async_write(*conn.plain, req, kUse);
    if (!ec)
      std::tie(ec, std::ignore) = co_await http::async_read(*conn.plain, conn.buffer, parser, kUse);
  }
  // Closed before any answer byte on a reused connection: the request never
  // reached the server.
  fate.stale = !parser.got_some() && ec && IsStaleConnectionError(ec);
  fate.reusable = !ec && parser.is_done() && parser.get().keep_alive();
  if (ec) {
    out.error = std::string(http::to_string(request.method)) + " " + target.host + ":" +
                target.port + target.path.substr(0, target.path.find('?')) + ": " +
                (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    co_return out;
  }
  auto& res = parser.get();
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res)
    out.headers[handlers::AsciiLower(field.name_string())] = std::string(field.value());
  out.body = std::move(res.body());
  co_return out;
}

asio::awaitable<ClientResponse> HttpsClient::Send(ClientRequest request) {
  ClientResponse failed;
  auto parsed = boost::urls::parse_uri(request.url);
  if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http") ||
      parsed->host().empty()) {
    failed.error = "not an http(s) URL: " + request.url.substr(0, 200);
    failed.not_sent = true;
    co_return failed;
  }
  Target target;
  target.tls = parsed->scheme() == "https";
  target.host = parsed->host_address().empty() ? std::string(parsed->encoded_host())
                                               : std::string(parsed->host_address());
  target.port = parsed->has_port() ? std::string(parsed->port()) : (target.tls ? "443" : "80");
  target.path = parsed->encoded_path().empty() ? "/" : std::string(parsed->encoded_path());
  if (parsed->has_query()) target.path += "?" + std::string(parsed->encoded_query());

  Host& host = hosts_[target.Key()];
  for (int round = 0; round < 2; ++round) {
    // The second round only follows a stale pooled connection: a new one.
    std::unique_ptr<Connection> conn;
    if (round == 0) conn = co_await Acquire(host);
    const bool reused = conn != nullptr;
    if (!conn) {
      std::string error;
      ++host.connecting;
      conn = co_await Open(target, error);
      --host.connecting;
      WakeOne(host);
      if (!conn) {
        failed.error = error;
        failed.not_sent = true;
        co_return failed;
      }
    }
    Fate fate;
    ClientResponse res = co_await Exchange(*conn, target, request, fate);
    if (res.status != 0) {
      if (fate.reusable) {
        conn->idle_since = std::chrono::steady_clock::now();
        auto& back = host.idle;
        // Reuse takes the newest, so the oldest wait at the front: close
        // those idle too long now, not when a burst digs down to them.
        while (!back.empty() && conn->idle_since - back.front()->idle_since >= options_.keep_idle) {
          back.front()->Close();
          back.erase(back.begin());
        }
        conn->Trim();
        if (back.size() < options_.max_idle_per_host) {
          back.push_back(std::move(conn));
          WakeOne(host);
        } else {
          conn->Close();
        }
      } else {
        conn->Close();
      }
      co_return res;
    }
    conn->Close();
    // A pooled connection the server had closed: the request never reached
    // it, so sending it again on a fresh connection is safe.
    if (!(reused && fate.stale)) co_return res;
  }
  co_return failed;
}

handlers::ApiOutcome OutcomeOf(const ClientResponse& res) {
  if (res.status == 0) return handlers::TransportFailure(res.error);
  return handlers::ClassifyResponse(res.status, res.body, res.Header("retry-after"));
}

bool MaybeCarriedOut(const ClientResponse& res) {
  if (res.status == 0) return !res.not_sent;
  if (res.status >= 200 && res.status < 300) return false;
  return res.status == 408 || (res.status >= 500 && res.status != 503);
}

}  // namespace tscb::daemon
