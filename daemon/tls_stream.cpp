#include "daemon/tls_stream.hpp"

#include <openssl/err.h>

#include <new>

namespace tscb::daemon {

TlsStream::TlsStream(beast::tcp_stream&& tcp, ssl::context& ctx, Role role) : tcp_(std::move(tcp)) {
  ssl_ = SSL_new(ctx.native_handle());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !in_ || !out_) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  BIO_set_mem_eof_return(in_, -1);  // empty means "wait for more", not end of stream
  SSL_set_bio(ssl_, in_, out_);     // owned by ssl_ from here
  if (role == Role::kServer)
    SSL_set_accept_state(ssl_);
  else
    SSL_set_connect_state(ssl_);
}

TlsStream::~TlsStream() { SSL_free(ssl_); }

namespace {

// Lets a string's memory go. Assigning an empty string would not:
// libstdc++ copies a short string into the buffer the target already has.
void Release(std::string& s) { std::string().swap(s); }

}  // namespace

bool TlsStream::TakeOutput() {
  const std::size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return false;
  const std::size_t at = outgoing_.size();
  outgoing_.resize(at + pending);
  int n = BIO_read(out_, outgoing_.data() + at, static_cast<int>(pending));
  outgoing_.resize(at + static_cast<std::size_t>(std::max(n, 0)));
  return !outgoing_.empty();
}

void TlsStream::Feed(std::size_t n) {
  if (n > 0) BIO_write(in_, incoming_.get(), static_cast<int>(n));
}

asio::mutable_buffer TlsStream::IncomingBuffer() {
  if (!incoming_) incoming_ = std::make_unique<char[]>(kIncoming);
  return asio::buffer(incoming_.get(), kIncoming);
}

TlsStream::Want TlsStream::Check(int result, boost::system::error_code& ec) {
  ec = {};
  Want want = Want::kDone;
  if (result != 1) {
    switch (SSL_get_error(ssl_, result)) {
      case SSL_ERROR_WANT_READ:
        want = Want::kRead;
        break;
      case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify
        ec = asio::error::eof;
        want = Want::kError;
        break;
      case SSL_ERROR_SSL:
        if (unsigned long e = ERR_peek_last_error())
          ec = boost::system::error_code(static_cast<int>(e), asio::error::get_ssl_category());
        else
          ec = ssl::error::unspecified_system_error;
        want = Want::kError;
        break;
      default:
        ec = ssl::error::unspecified_system_error;
        want = Want::kError;
        break;
    }
  }
  // The error queue is per thread: leave it empty for the next call.
  ERR_clear_error();
  return want;
}

bool TlsStream::Resume(Step& step, boost::system::error_code& ec, std::size_t n) {
  switch (step) {
    case Step::kRead:
      if (ec) {
        // Closed without close_notify: what Asio's ssl::stream reports too.
        if (ec == asio::error::eof) ec = ssl::error::stream_truncated;
        return true;
      }
      Feed(n);
      break;
    case Step::kFlush:
      if (ec) return true;
      outgoing_.clear();
      break;
    default:
      break;
  }
  step = Step::kStart;
  return false;
}

void TlsStream::Trim() {
  // The listener trims here instead of setting SSL_MODE_RELEASE_BUFFERS,
  // which frees and allocates the record buffers (about 17 KiB each) at
  // every record of a busy connection; the HTTPS client sets the mode (its
  // calls wait long for their answers), and then this finds none to free.
  (void)SSL_free_buffers(ssl_);  // 0 (kept) only while they hold data
  incoming_.reset();
  Release(outgoing_);
  Release(gathered_);
  // A memory BIO keeps the largest buffer it ever held: start afresh.
  if (BIO_ctrl_pending(in_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      BIO_set_mem_eof_return(fresh, -1);
      SSL_set0_rbio(ssl_, fresh);  // frees the old one
      in_ = fresh;
    }
  }
  if (BIO_ctrl_pending(out_) == 0) {
    if (BIO* fresh = BIO_new(BIO_s_mem())) {
      SSL_set0_wbio(ssl_, fresh);
      out_ = fresh;
    }
  }
}

std::size_t TlsStream::BufferBytes() const {
  const auto heap = [](const std::string& s) {
    return s.capacity() > std::string().capacity() ? s.capacity() : 0;
  };
  return heap(outgoing_) + heap(gathered_) + (incoming_ ? kIncoming : 0);
}

void TlsStream::AfterHandshake() {
  // The handshake's flights were the largest writes: let their memory go.
  Release(outgoing_);
  BIO* fresh = BIO_new(BIO_s_mem());
  if (fresh && BIO_ctrl_pending(out_) == 0) {
    SSL_set0_wbio(ssl_, fresh);  // frees the old one
    out_ = fresh;
  } else {
    BIO_free(fresh);
  }
}

}  // namespace tscb::daemon
