#pragma once
// Builds the server TLS context: TLS 1.2 and 1.3 only, forward-secret AEAD
// ciphers, no compression or renegotiation, a server-side session cache and
// tickets for resumption. Throws std::runtime_error naming the file on a bad
// certificate or key. The context is shared read-only by all connections.
#include <memory>

#include "config/config.hpp"
#include "daemon/metrics.hpp"
#include "daemon/net.hpp"

namespace tscb::daemon {

// With tls.ocsp_stapling, the context staples the certificate's OCSP status
// where the certificate allows it (daemon/ocsp_stapler); `metrics` may be null.
std::shared_ptr<ssl::context> MakeServerTlsContext(const config::TlsConfig& tls,
                                                   Metrics* metrics = nullptr);

}  // namespace tscb::daemon
