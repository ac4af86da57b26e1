#include "tests/support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace tscb::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct HttpClient::Impl {
  asio::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  int port = 0;
  std::string ca;
  std::string host;
  bool connected = false;

  beast::tcp_stream& Lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

  template <class Fn>
  auto WithStream(Fn&& fn) {
    if (tls) return fn(*tls);
    return fn(*plain);
  }
};

HttpClient::HttpClient(int port, std::string ca_file, std::string host)
    : impl_(std::make_unique<Impl>()) {
  impl_->port = port;
  impl_->ca = std::move(ca_file);
  impl_->host = std::move(host);
  if (!impl_->ca.empty()) {
    impl_->ctx.load_verify_file(impl_->ca);
    impl_->ctx.set_verify_mode(ssl::verify_peer);
  }
}

HttpClient::~HttpClient() {
  if (impl_) Close();
}

HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

bool HttpClient::Connect() {
  Close();
  auto& d = *impl_;
  boost::system::error_code ec;
  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(d.port));
  d.buffer.clear();
  if (d.ca.empty()) {
    d.plain.emplace(d.ioc);
    d.plain->expires_after(std::chrono::seconds(10));
    d.plain->connect(endpoint, ec);
    if (ec) return false;
  } else {
    d.tls.emplace(d.ioc, d.ctx);
    SSL_set_tlsext_host_name(d.tls->native_handle(), d.host.c_str());
    d.tls->set_verify_callback(ssl::host_name_verification(d.host));
    auto& lowest = beast::get_lowest_layer(*d.tls);
    lowest.expires_after(std::chrono::seconds(10));
    lowest.connect(endpoint, ec);
    if (ec) return false;
    d.tls->handshake(ssl::stream_base::client, ec);
    if (ec) return false;
  }
  d.connected = true;
  return true;
}

void HttpClient::Close() {
  auto& d = *impl_;
  boost::system::error_code ec;
  if (d.tls) beast::get_lowest_layer(*d.tls).socket().close(ec);
  if (d.plain) d.plain->socket().close(ec);
  d.tls.reset();
  d.plain.reset();
  d.connected = false;
}

HttpReply HttpClient::Request(const std::string& method, const std::string& target,
                              const std::string& body,
                              const std::map<std::string, std::string>& headers) {
  HttpReply reply;
  if (!impl_->connected && !Connect()) {
    reply.error = "connect failed";
    return reply;
  }
  auto& d = *impl_;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, d.host);
  req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == "POST") req.prepare_payload();
  req.keep_alive(true);

  boost::system::error_code ec;
  d.Lowest().expires_after(std::chrono::seconds(15));
  d.WithStream([&](auto& s) { http::write(s, req, ec); });
  // A server may answer and close before reading all we sent; try to read
  // its answer anyway.
  reply = ReadReply(15'000);
  if (reply.status == 0 && ec) reply.error = ec.message() + "; " + reply.error;
  return reply;
}

HttpReply HttpClient::ReadReply(int timeout_ms) {
  HttpReply reply;
  if (!impl_->connected) {
    reply.error = "not connected";
    return reply;
  }
  auto& d = *impl_;
  d.Lowest().expires_after(std::chrono::milliseconds(timeout_ms));
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  boost::system::error_code rec;
  d.WithStream([&](auto& s) { http::read(s, d.buffer, parser, rec); });
  if (rec) {
    reply.error = rec.message();
    Close();
    return reply;
  }
  auto res = parser.release();
  reply.status = res.result_int();
  reply.body = res.body();
  for (const auto& field : res)
    reply.headers[std::string(field.name_string())] = std::string(field.value());
  if (!res.keep_alive()) Close();
  return reply;
}

bool HttpClient::WriteRaw(const std::string& bytes) {
  if (!impl_->connected && !Connect()) return false;
  boost::system::error_code ec;
  impl_->Lowest().expires_after(std::chrono::seconds(10));
  impl_->WithStream([&](auto& s) { asio::write(s, asio::buffer(bytes), ec); });
  return !ec;
}

bool HttpClient::WaitForClose(int timeout_ms) {
  if (!impl_->connected) return true;
  auto& d = *impl_;
  d.Lowest().expires_after(std::chrono::milliseconds(timeout_ms));
  char byte;
  boost::system::error_code ec;
  for (;;) {
    d.WithStream([&](auto& s) { s.read_some(asio::buffer(&byte, 1), ec); });
    if (!ec) continue;  // the server sent something (an error page); keep reading
    bool timed_out = ec == beast::error::timeout;
    Close();
    return !timed_out;
  }
}

}  // namespace tscb::testing
