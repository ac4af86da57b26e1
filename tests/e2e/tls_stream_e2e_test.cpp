// The listener's TLS stream (daemon/tls_stream) between two ends in this
// process, over loopback, with real certificates: what an idle connection
// keeps after Trim().
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "daemon/tls_context.hpp"
#include "daemon/tls_stream.hpp"
#include "tests/support/daemon_process.hpp"

namespace tscb::testing {
namespace {

namespace asio = daemon::asio;
namespace beast = daemon::beast;
namespace ssl = daemon::ssl;
using tcp = asio::ip::tcp;
using daemon::TlsStream;

// One exchange: the client sends `request`, the server reads it and answers
// `head` + `body` in one write of two buffers (as Beast writes a response).
asio::awaitable<void> Exchange(TlsStream& server, TlsStream& client, const std::string& request,
                               const std::string& head, const std::string& body,
                               std::string& received, std::string& answered) {
  co_await asio::async_write(client, asio::buffer(request), asio::use_awaitable);
  received.assign(request.size(), '\0');
  co_await asio::async_read(server, asio::buffer(received), asio::use_awaitable);
  std::array<asio::const_buffer, 2> reply{asio::buffer(head), asio::buffer(body)};
  co_await asio::async_write(server, reply, asio::use_awaitable);
  answered.assign(head.size() + body.size(), '\0');
  co_await asio::async_read(client, asio::buffer(answered), asio::use_awaitable);
}

TEST(TlsStreamTest, TrimLeavesAnIdleConnectionNoBuffersAndItStillWorks) {
  TempDir certs;
  MakeTestCertificates(certs.Path());
  auto server_ctx = daemon::MakeServerTlsContext(
      config::TlsConfig{true, certs.Path() + "/cert.pem", certs.Path() + "/key.pem", false});
  ssl::context client_ctx(ssl::context::tls_client);
  client_ctx.load_verify_file(certs.Path() + "/ca.pem");
  client_ctx.set_verify_mode(ssl::verify_peer);

  asio::io_context ioc(1);
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client_socket(ioc);
  client_socket.connect(acceptor.local_endpoint());
  tcp::socket server_socket = acceptor.accept();
  TlsStream server(beast::tcp_stream(std::move(server_socket)), *server_ctx);
  TlsStream client(beast::tcp_stream(std::move(client_socket)), client_ctx,
                   TlsStream::Role::kClient);
  SSL_set_tlsext_host_name(client.native_handle(), "localhost");

  const std::string request(700, 'q');
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n";
  const std::string body(600, 'a');
  std::string received, answered, failure;
  bool done = false;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto [sec] = co_await server.async_handshake(asio::as_tuple(asio::use_awaitable));
        if (sec) failure = "server handshake: " + sec.message();
      },
      asio::detached);
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        auto [cec] = co_await client.async_handshake(asio::as_tuple(asio::use_awaitable));
        if (cec) {
          failure = "client handshake: " + cec.message();
          co_return;
        }
        co_await Exchange(server, client, request, head, body, received, answered);
        done = true;
      },
      [&](std::exception_ptr e) {
        if (e) failure = "exchange failed";
      });
  ioc.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(done) << failure;
  EXPECT_EQ(received, request);
  EXPECT_EQ(answered, head + body);
  // The answer went out through both of the stream's own buffers (the two
  // pieces gathered, then the ciphertext), and the request came in through
  // the third.
  EXPECT_GT(server.BufferBytes(), head.size() + body.size());

  server.Trim();
  EXPECT_EQ(server.BufferBytes(), 0u);

  // Trimmed, it still carries the next exchange.
  done = false;
  ioc.restart();
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        co_await Exchange(server, client, "again", head, body, received, answered);
        done = true;
      },
      [&](std::exception_ptr e) {
        if (e) failure = "second exchange failed";
      });
  ioc.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(done) << failure;
  EXPECT_EQ(received, "again");
  EXPECT_EQ(answered, head + body);
}

}  // namespace
}  // namespace tscb::testing
