#include "daemon/ocsp_stapler.hpp"

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include "daemon/thread_name.hpp"

namespace tscb::daemon {
namespace {

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string OpenSslError() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

struct State {
  std::string certificate_file, url, host, port, path;
  X509* issuer = nullptr;
  STACK_OF(X509) * chain = nullptr;  // untrusted certificates for verifying a response
  OCSP_CERTID* id = nullptr;
  Metrics* metrics = nullptr;
  OcspOptions options;

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::shared_ptr<const std::string> der;  // the response stapled now
  std::int64_t valid_until = 0;            // its nextUpdate, seconds since 1970
  std::string last_error;                  // logged once until it changes

  ~State() {
    OCSP_CERTID_free(id);
    X509_free(issuer);
    sk_X509_pop_free(chain, X509_free);
  }
};

// Stops the fetching thread when the TLS context that holds it goes.
struct Keeper {
  std::shared_ptr<State> state;
  ~Keeper() {
    if (!state) return;  // moved from
    {
      std::lock_guard lock(state->mu);
      state->stop = true;
    }
    state->cv.notify_all();
  }
};

int StatusCallback(SSL* ssl, void* arg) {
  auto* state = static_cast<State*>(arg);
  std::shared_ptr<const std::string> der;
  {
    std::lock_guard lock(state->mu);
    if (state->der && Now() < state->valid_until) der = state->der;
  }
  if (!der) return SSL_TLSEXT_ERR_NOACK;
  auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(der->size()));
  if (!copy) return SSL_TLSEXT_ERR_NOACK;
  std::memcpy(copy, der->data(), der->size());
  // OpenSSL owns `copy` from here and frees it with the connection.
  if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(der->size())) != 1) {
    OPENSSL_free(copy);
    return SSL_TLSEXT_ERR_NOACK;
  }
  return SSL_TLSEXT_ERR_OK;
}

std::int64_t ToUnix(const ASN1_GENERALIZEDTIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

// One request to the responder; the response's DER, or "" with `error` set.
std::string Exchange(State& s, std::string& error) {
  OCSP_REQUEST* request = OCSP_REQUEST_new();
  OCSP_request_add0_id(request, OCSP_CERTID_dup(s.id));
  unsigned char* der = nullptr;
  int der_size = i2d_OCSP_REQUEST(request, &der);
  OCSP_REQUEST_free(request);
  if (der_size <= 0) {
    error = "cannot encode the OCSP request: " + OpenSslError();
    return "";
  }
  BIO* body = BIO_new_mem_buf(der, der_size);
  BIO* answer = OSSL_HTTP_transfer(nullptr, s.host.c_str(), s.port.c_str(), s.path.c_str(), 0,
                                   nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 0, nullptr,
                                   "application/ocsp-request", body, "application/ocsp-response", 1,
                                   64 * 1024, static_cast<int>(s.options.timeout.count()), 0);
  BIO_free(body);
  OPENSSL_free(der);
  if (!answer) {
    error = "no answer from " + s.url + ": " + OpenSslError();
    return "";
  }
  std::string out;
  char buf[4096];
  int n;
  while ((n = BIO_read(answer, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  BIO_free(answer);
  if (out.empty()) error = "an empty answer from " + s.url;
  return out;
}

// Checks a response; its nextUpdate (or an hour from now when it has none),
// or 0 with `error` set.
std::int64_t Verify(State& s, const std::string& der, std::string& error, bool& revoked) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  OCSP_RESPONSE* response = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size()));
  if (!response) {
    error = "the answer from " + s.url + " is not an OCSP response";
    return 0;
  }
  std::int64_t until = 0;
  OCSP_BASICRESP* basic = nullptr;
  X509_STORE* store = X509_STORE_new();
  int status = OCSP_response_status(response);
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    error = std::string("the responder answered ") + OCSP_response_status_str(status);
  } else if (!(basic = OCSP_response_get1_basic(response))) {
    error = "the response has no basic response";
  } else {
    // The issuer is the trust anchor here (it may be an intermediate).
    X509_STORE_add_cert(store, s.issuer);
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    int cert_status = -1, reason = 0;
    ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
    if (OCSP_basic_verify(basic, s.chain, store, 0) <= 0) {
      error = "the response's signature does not verify: " + OpenSslError();
    } else if (OCSP_resp_find_status(basic, s.id, &cert_status, &reason, &revoked_at, &this_update,
                                     &next_update) != 1) {
      error = "the response does not cover this certificate";
    } else if (OCSP_check_validity(this_update, next_update, 300, -1) != 1) {
      error = "the response is not current (thisUpdate/nextUpdate)";
    } else if (cert_status == V_OCSP_CERTSTATUS_UNKNOWN) {
      error = "the responder does not know this certificate";
    } else {
      revoked = cert_status == V_OCSP_CERTSTATUS_REVOKED;
      until = next_update ? ToUnix(next_update) : Now() + 3600;
    }
  }
  ERR_clear_error();
  X509_STORE_free(store);
  OCSP_BASICRESP_free(basic);
  OCSP_RESPONSE_free(response);
  return until;
}

// Fetches and installs a response; how long to wait before the next fetch.
std::chrono::seconds Refresh(State& s) {
  std::string error;
  bool revoked = false;
  std::string der = Exchange(s, error);
  std::int64_t until = der.empty() ? 0 : Verify(s, der, error, revoked);
  const std::int64_t now = Now();
  std::lock_guard lock(s.mu);
  if (until == 0) {
    if (s.metrics) s.metrics->CountOcspFetch("error");
    if (s.der && now >= s.valid_until) {
      s.der.reset();
      spdlog::error("ocsp: the stapled response for {} expired; handshakes go on without one",
                    s.certificate_file);
    }
    if (error != s.last_error)
      spdlog::warn("ocsp: {}: {}; {}, retrying every {} s", s.certificate_file, error,
                   s.der ? "the previous response is still stapled" : "no response is stapled",
                   s.options.retry.count());
    s.last_error = error;
    if (s.metrics) s.metrics->SetOcspValidUntil(s.der ? static_cast<double>(s.valid_until) : 0);
    return s.options.retry;
  }
  const bool first = !s.der || !s.last_error.empty();
  s.der = std::make_shared<const std::string>(std::move(der));
  s.valid_until = until;
  s.last_error.clear();
  if (s.metrics) {
    s.metrics->CountOcspFetch(revoked ? "revoked" : "good");
    s.metrics->SetOcspValidUntil(static_cast<double>(until));
  }
  if (revoked)
    spdlog::critical("ocsp: {} is REVOKED according to {}; clients will refuse it: replace it",
                     s.certificate_file, s.url);
  else if (first)
    spdlog::info("ocsp: stapling the status of {} from {} (good, valid for {} s)",
                 s.certificate_file, s.url, until - now);
  return std::clamp(std::chrono::seconds((until - now) / 2), s.options.retry,
                    std::chrono::seconds(3600));
}

void Run(std::shared_ptr<State> s) {
  for (;;) {
    auto wait = Refresh(*s);
    std::unique_lock lock(s->mu);
    if (s->cv.wait_for(lock, wait, [&] { return s->stop; })) return;
  }
}

}  // namespace

std::shared_ptr<void> AttachOcspStapling(ssl::context& ctx, const std::string& certificate_file,
                                         Metrics* metrics, OcspOptions options) {
  SSL_CTX* native = ctx.native_handle();
  X509* leaf = SSL_CTX_get0_certificate(native);
  if (!leaf) return nullptr;
  std::string url;
  if (STACK_OF(OPENSSL_STRING)* uris = X509_get1_ocsp(leaf)) {
    if (sk_OPENSSL_STRING_num(uris) > 0) url = sk_OPENSSL_STRING_value(uris, 0);
    X509_email_free(uris);
  }
  if (url.empty()) {
    spdlog::info("ocsp: {} names no OCSP responder; no stapling", certificate_file);
    return nullptr;
  }
  STACK_OF(X509)* chain = nullptr;
  SSL_CTX_get0_chain_certs(native, &chain);
  X509* issuer = nullptr;
  for (int i = 0; chain && i < sk_X509_num(chain); ++i)
    if (X509_check_issued(sk_X509_value(chain, i), leaf) == X509_V_OK)
      issuer = sk_X509_value(chain, i);
  if (!issuer) {
    spdlog::warn(
        "ocsp: {} names the responder {} but holds no issuer certificate after the server's; no "
        "stapling (append the issuer to the file)",
        certificate_file, url);
    return nullptr;
  }
  char *host = nullptr, *port = nullptr, *path = nullptr;
  int tls = 0;
  if (OSSL_HTTP_parse_url(url.c_str(), &tls, nullptr, &host, &port, nullptr, &path, nullptr,
                          nullptr) != 1 ||
      tls) {
    spdlog::warn("ocsp: {}: the responder {} is not an http:// URL; no stapling", certificate_file,
                 url);
    OPENSSL_free(host);
    OPENSSL_free(port);
    OPENSSL_free(path);
    ERR_clear_error();
    return nullptr;
  }
  auto state = std::make_shared<State>();
  state->certificate_file = certificate_file;
  state->url = url;
  state->host = host;
  state->port = port;
  state->path = path;
  OPENSSL_free(host);
  OPENSSL_free(port);
  OPENSSL_free(path);
  X509_up_ref(issuer);
  state->issuer = issuer;
  state->chain = X509_chain_up_ref(chain);
  state->id = OCSP_cert_to_id(nullptr, leaf, issuer);
  state->metrics = metrics;
  state->options = options;
  SSL_CTX_set_tlsext_status_cb(native, StatusCallback);
  SSL_CTX_set_tlsext_status_arg(native, state.get());
  std::thread([state] {
    NameThisThread("tscb-ocsp");
    Run(state);
  }).detach();
  return std::make_shared<Keeper>(Keeper{state});
}

}  // namespace tscb::daemon
