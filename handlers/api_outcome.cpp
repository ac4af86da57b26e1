#include "handlers/api_outcome.hpp"

#include <boost/json.hpp>
#include <charconv>

namespace tscb::handlers {
namespace json = boost::json;
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string StringOrNumber(const json::object& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end()) return {};
  if (it->value().is_string()) return std::string(it->value().get_string());
  if (it->value().is_number()) return json::serialize(it->value());
  return {};
}

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view text) {
  long long seconds = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || seconds < 0)
    return std::nullopt;
  return std::chrono::seconds(std::min<long long>(seconds, 3600));
}

}  // namespace

ApiOutcome ClassifyResponse(int http_status, std::string_view body, std::string_view retry_after) {
  ApiOutcome out;
  out.http_status = http_status;
  out.retry_after = ParseRetryAfter(retry_after);

  // Both error shapes of spec 2.5: {"errorCode","errorMessage"} and the
  // gateway's {"fault":{"code","message"}}. Anything else is just a status.
  bool gateway_fault = false;
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (!ec && parsed.is_object()) {
    const auto& obj = parsed.get_object();
    out.error_code = StringOrNumber(obj, "errorCode");
    out.error_message = StringOrNumber(obj, "errorMessage");
    if (auto fault = obj.find("fault"); fault != obj.end() && fault->value().is_object()) {
      gateway_fault = true;
      out.error_code = StringOrNumber(fault->value().get_object(), "code");
      out.error_message = StringOrNumber(fault->value().get_object(), "message");
    }
  }

  if (http_status >= 200 && http_status < 300) {
    out.verdict = ApiVerdict::kSuccess;
  } else if (EndsWith(out.error_code, "SessionToken.Expired") ||
             EndsWith(out.error_code, "SessionToken.Format") ||
             EndsWith(out.error_code, "SessionToken.Invalid")) {
    // Whatever the status: clients see it with 400 and with 401 (spec 2.5).
    out.verdict = ApiVerdict::kRenewSession;
  } else if (http_status == 401 && gateway_fault) {
    out.verdict = ApiVerdict::kRenewToken;
  } else if (http_status == 408 || http_status == 429 || http_status >= 500) {
    out.verdict = ApiVerdict::kRetryable;
  } else {
    out.verdict = ApiVerdict::kFinal;
  }
  return out;
}

ApiOutcome TransportFailure(std::string_view what) {
  ApiOutcome out;
  out.verdict = ApiVerdict::kRetryable;
  out.error_message = std::string(what);
  return out;
}

const char* Describe(ApiVerdict verdict) {
  switch (verdict) {
    case ApiVerdict::kSuccess:
      return "success";
    case ApiVerdict::kRetryable:
      return "retryable";
    case ApiVerdict::kRenewToken:
      return "renew_token";
    case ApiVerdict::kRenewSession:
      return "renew_session";
    case ApiVerdict::kFinal:
      return "final";
  }
  return "unknown";
}

}  // namespace tscb::handlers
