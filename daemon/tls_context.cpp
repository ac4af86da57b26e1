#include "daemon/tls_context.hpp"

#include "daemon/ocsp_stapler.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <stdexcept>

namespace tscb::daemon {
namespace {
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char kSessionIdContext[] = "ts-callbackd";
}  // namespace

std::shared_ptr<ssl::context> MakeServerTlsContext(const config::TlsConfig& tls, Metrics* metrics) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::no_compression | ssl::context::single_dh_use);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1)
    throw std::runtime_error("TLS: cipher list rejected by OpenSSL");
  SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof(kSessionIdContext) - 1);
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(native, 20000);

  boost::system::error_code ec;
  ctx->use_certificate_chain_file(tls.certificate_file, ec);
  if (ec) throw std::runtime_error("TLS certificate " + tls.certificate_file + ": " + ec.message());
  ctx->use_private_key_file(tls.private_key_file, ssl::context::pem, ec);
  if (ec) throw std::runtime_error("TLS private key " + tls.private_key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1)
    throw std::runtime_error("TLS private key " + tls.private_key_file +
                             " does not match certificate " + tls.certificate_file);
  if (!tls.ocsp_stapling) return ctx;
  auto stapler = AttachOcspStapling(*ctx, tls.certificate_file, metrics);
  if (!stapler) return ctx;
  // The stapler lives exactly as long as the context it staples for.
  auto both = std::make_shared<std::pair<std::shared_ptr<ssl::context>, std::shared_ptr<void>>>(
      ctx, std::move(stapler));
  return std::shared_ptr<ssl::context>(both, both->first.get());
}

}  // namespace tscb::daemon
