#pragma once
// What a ThingSpace API answer means for the caller (spec section 2.5):
// done, retry later, renew the OAuth token, renew the M2M session, or a final
// error carrying ThingSpace's errorCode/errorMessage. The one place where
// HTTP statuses and error bodies become decisions. Pure; any thread.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace tscb::handlers {

enum class ApiVerdict {
  kSuccess,       // 2xx
  kRetryable,     // transport error, 408, 429, 5xx: back off and try again
  kRenewToken,    // gateway 401 with a `fault` body: new OAuth token, retry once
  kRenewSession,  // errorCode ends in SessionToken.Expired/Format/Invalid: log in, retry once
  kFinal,         // any other 4xx: a request error, never retried
};

struct ApiOutcome {
  ApiVerdict verdict = ApiVerdict::kFinal;
  int http_status = 0;                              // 0 for a transport error
  std::optional<std::chrono::seconds> retry_after;  // from Retry-After (delta-seconds)
  std::string error_code;                           // errorCode or fault.code, "" if none
  std::string error_message;                        // errorMessage or fault.message
};

// `retry_after` is the raw Retry-After header ("" when absent); only the
// delta-seconds form is honoured (an HTTP-date falls back to the backoff).
ApiOutcome ClassifyResponse(int http_status, std::string_view body, std::string_view retry_after);

ApiOutcome TransportFailure(std::string_view what);

const char* Describe(ApiVerdict verdict);

}  // namespace tscb::handlers
