#pragma once
// The TLS stream of the callback listener and of the outgoing HTTPS client:
// OpenSSL over a beast::tcp_stream, with memory BIOs that hold only what is
// in transit, and buffers that Trim() lets go, so an idle keep-alive
// connection holds a few KiB instead of the ~66 KiB of fixed buffers in
// Asio's ssl::stream engine (measured with 2,000 idle connections). A busy
// connection keeps its buffers from one request to the next (the HTTPS
// client sets SSL_MODE_RELEASE_BUFFERS instead: its calls are few and wait
// long for their answers). Written here because neither Asio nor Beast
// offers a TLS stream whose buffers are sized by the traffic.
//
// It meets Beast's AsyncReadStream and AsyncWriteStream requirements, and
// beast::get_lowest_layer() reaches the tcp_stream (timeouts, cancel). One
// read and one write may be outstanding at a time, on the stream's executor
// (a strand), as with any Asio stream. Errors are Asio's: the SSL category
// for TLS errors, ssl::error::stream_truncated when the peer closed without
// close_notify, asio::error::eof after a close_notify.
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/compose.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <iterator>
#include <memory>
#include <string>

#include "daemon/net.hpp"

namespace tscb::daemon {

class TlsStream {
 public:
  using executor_type = beast::tcp_stream::executor_type;
  using next_layer_type = beast::tcp_stream;

  enum class Role { kServer, kClient };
  // A TLS stream over `tcp` with the context's settings: as a server, its
  // certificate and session cache; as a client, its trust store and verify
  // mode (set SNI and the expected peer name on native_handle() before the
  // handshake).
  TlsStream(beast::tcp_stream&& tcp, ssl::context& ctx, Role role = Role::kServer);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  executor_type get_executor() { return tcp_.get_executor(); }
  next_layer_type& next_layer() { return tcp_; }
  SSL* native_handle() { return ssl_; }
  // Received bytes OpenSSL holds, decrypted or not: a read would not wait.
  bool HasBufferedInput() const { return SSL_pending(ssl_) > 0 || BIO_ctrl_pending(in_) > 0; }
  // While idle between requests: lets go of the buffers traffic grew,
  // OpenSSL's record buffers included (the next request allocates them
  // again). Only with no operation outstanding.
  void Trim();
  // Heap bytes of the stream's own buffers (OpenSSL's not counted): 0 after
  // Trim().
  std::size_t BufferBytes() const;

  template <class Token>
  auto async_handshake(Token&& token) {
    return asio::async_compose<Token, void(boost::system::error_code)>(
        HandshakeOp{*this, Step::kStart}, token, tcp_);
  }
  // Sends close_notify; does not wait for the peer's.
  template <class Token>
  auto async_shutdown(Token&& token) {
    return asio::async_compose<Token, void(boost::system::error_code)>(
        ShutdownOp{*this, Step::kStart}, token, tcp_);
  }
  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        ReadOp{*this, FirstBuffer(buffers), Step::kStart, 0, {}}, token, tcp_);
  }
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        WriteOp{*this, Gather(buffers), Step::kStart, 0}, token, tcp_);
  }

 private:
  enum class Step { kStart, kRead, kFlush, kDone };
  enum class Want { kDone, kRead, kError };

  template <class Buffers>
  static asio::mutable_buffer FirstBuffer(const Buffers& buffers) {
    for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers);
         ++it)
      if (asio::mutable_buffer b(*it); b.size() > 0) return b;
    return {};
  }
  // One buffer as it is; several copied into one (one TLS record for
  // Beast's header and body), up to 64 KiB (a write may be partial).
  template <class Buffers>
  asio::const_buffer Gather(const Buffers& buffers) {
    auto begin = asio::buffer_sequence_begin(buffers);
    auto end = asio::buffer_sequence_end(buffers);
    if (begin != end && std::next(begin) == end) return asio::const_buffer(*begin);
    gathered_.clear();
    for (auto it = begin; it != end && gathered_.size() < kMaxGather; ++it) {
      asio::const_buffer b(*it);
      gathered_.append(static_cast<const char*>(b.data()),
                       std::min(b.size(), kMaxGather - gathered_.size()));
    }
    return asio::buffer(gathered_);
  }

  // What OpenSSL wrote into the output BIO, moved to `outgoing_`; true if any.
  bool TakeOutput();
  // Hands `n` received bytes of `incoming_` to OpenSSL.
  void Feed(std::size_t n);
  // Lets the handshake's buffers go.
  void AfterHandshake();
  asio::mutable_buffer IncomingBuffer();
  // After an SSL call returned `result`: what it needs, and the error.
  Want Check(int result, boost::system::error_code& ec);

  // Every operation is: call OpenSSL; send what it produced; read when it
  // wants more; repeat. `Step` is where the last I/O left off.
  struct HandshakeOp {
    TlsStream& s;
    Step step = Step::kStart;
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      if (s.Resume(step, ec, n)) return self.complete(ec);
      auto want = s.Check(SSL_do_handshake(s.ssl_), ec);
      if (s.TakeOutput()) return s.Flush(step, std::move(self));
      if (want == Want::kRead) return s.Receive(step, std::move(self));
      if (!ec) s.AfterHandshake();
      self.complete(ec);
    }
  };
  struct ShutdownOp {
    TlsStream& s;
    Step step = Step::kStart;
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      (void)n;
      if (step == Step::kFlush) return self.complete(ec);
      SSL_shutdown(s.ssl_);
      ERR_clear_error();
      if (s.TakeOutput()) return s.Flush(step, std::move(self));
      self.complete(ec);
    }
  };
  struct ReadOp {
    TlsStream& s;
    asio::mutable_buffer buffer;
    Step step = Step::kStart;
    std::size_t got = 0;
    boost::system::error_code result;  // of the read, while its output is sent
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      if (step == Step::kDone) {  // after the flush that follows the last read
        s.outgoing_.clear();
        return self.complete(result, got);
      }
      if (s.Resume(step, ec, n)) return self.complete(ec, 0);
      if (buffer.size() == 0) return self.complete({}, 0);
      auto want = s.Check(SSL_read_ex(s.ssl_, buffer.data(), buffer.size(), &got), ec);
      const bool out = s.TakeOutput();  // an alert, a key update answer, a ticket
      if (want == Want::kRead) {
        if (out) return s.Flush(step, std::move(self));
        return s.Receive(step, std::move(self));
      }
      if (want == Want::kError) got = 0;
      if (!out) return self.complete(ec, got);
      result = ec;
      step = Step::kDone;
      asio::async_write(s.tcp_, asio::buffer(s.outgoing_), std::move(self));
    }
  };
  struct WriteOp {
    TlsStream& s;
    asio::const_buffer buffer;
    Step step = Step::kStart;
    std::size_t put = 0;
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      (void)n;
      if (step == Step::kFlush) {
        s.outgoing_.clear();
        return self.complete(ec, ec ? 0 : put);
      }
      if (buffer.size() == 0) return self.complete({}, 0);
      // Memory BIOs take everything: a write never waits for the socket
      // inside OpenSSL, only for the flush below.
      auto want = s.Check(SSL_write_ex(s.ssl_, buffer.data(), buffer.size(), &put), ec);
      if (want != Want::kDone) return self.complete(ec ? ec : ssl::error::stream_truncated, 0);
      if (s.TakeOutput()) return s.Flush(step, std::move(self));
      self.complete({}, put);
    }
  };

  // Completes an I/O step; true when the operation must end with `ec`.
  bool Resume(Step& step, boost::system::error_code& ec, std::size_t n);
  template <class Self>
  void Flush(Step& step, Self&& self) {
    step = Step::kFlush;
    asio::async_write(tcp_, asio::buffer(outgoing_), std::forward<Self>(self));
  }
  template <class Self>
  void Receive(Step& step, Self&& self) {
    step = Step::kRead;
    tcp_.async_read_some(IncomingBuffer(), std::forward<Self>(self));
  }

  static constexpr std::size_t kMaxGather = 64 * 1024;
  static constexpr std::size_t kIncoming = 4 * 1024;  // ciphertext read at a time

  beast::tcp_stream tcp_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // ciphertext from the peer, for OpenSSL
  BIO* out_ = nullptr;  // ciphertext from OpenSSL, for the peer
  std::unique_ptr<char[]> incoming_;
  std::string outgoing_;
  std::string gathered_;
};

}  // namespace tscb::daemon
