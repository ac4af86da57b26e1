#pragma once
// OCSP stapling for the callback listener (issue 7). When the certificate
// names an OCSP responder (Authority Information Access, http://) and its
// issuer is in the certificate file's chain, a thread of the stapler's own
// fetches the certificate's status with OpenSSL's HTTP client, verifies the
// response (signed by the issuer or a responder it delegated to, this
// certificate, within its validity), and the TLS context staples it to every
// handshake that asks for it. The response is refreshed halfway to its
// nextUpdate (at least hourly), retried every `retry` after a failure, and
// dropped once past its nextUpdate; until there is one, handshakes go on
// without a staple. The stapler lives as long as the TLS context it is
// attached to (a reload makes a new one for the new certificate).
#include <memory>
#include <string>

#include "daemon/metrics.hpp"
#include "daemon/net.hpp"

namespace tscb::daemon {

struct OcspOptions {
  std::chrono::seconds retry{60};
  std::chrono::seconds timeout{5};  // connect, send, receive
};

// Attaches stapling to `ctx` (whose certificate and chain are loaded) and
// returns what keeps it running, or null, with the reason logged, when the
// certificate allows none. `metrics` may be null.
std::shared_ptr<void> AttachOcspStapling(ssl::context& ctx, const std::string& certificate_file,
                                         Metrics* metrics, OcspOptions options = {});

}  // namespace tscb::daemon
