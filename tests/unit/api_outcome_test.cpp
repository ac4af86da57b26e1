#include "handlers/api_outcome.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

TEST(ApiOutcomeTest, TwoHundredsAreSuccess) {
  EXPECT_EQ(ClassifyResponse(200, R"({"requestId":"r"})", "").verdict, ApiVerdict::kSuccess);
  EXPECT_EQ(ClassifyResponse(202, "", "").verdict, ApiVerdict::kSuccess);
}

TEST(ApiOutcomeTest, ExpiredSessionMeansLogInAgainWhateverTheStatus) {
  for (int status : {400, 401}) {
    auto out = ClassifyResponse(
        status,
        R"({"errorCode":"UnifiedWebService.REQUEST_FAILED.SessionToken.Expired","errorMessage":"x"})",
        "");
    EXPECT_EQ(out.verdict, ApiVerdict::kRenewSession) << status;
    EXPECT_EQ(out.error_code, "UnifiedWebService.REQUEST_FAILED.SessionToken.Expired");
  }
  EXPECT_EQ(
      ClassifyResponse(400, R"({"errorCode":"X.INPUT_INVALID.SessionToken.Invalid"})", "").verdict,
      ApiVerdict::kRenewSession);
  EXPECT_EQ(
      ClassifyResponse(400, R"({"errorCode":"X.REQUEST_FAILED.SessionToken.Format"})", "").verdict,
      ApiVerdict::kRenewSession);
}

TEST(ApiOutcomeTest, GatewayFaultOn401MeansNewOAuthToken) {
  auto out = ClassifyResponse(
      401, R"({"fault":{"code":"900901","message":"Invalid Credentials","description":"..."}})",
      "");
  EXPECT_EQ(out.verdict, ApiVerdict::kRenewToken);
  EXPECT_EQ(out.error_code, "900901");
  EXPECT_EQ(out.error_message, "Invalid Credentials");
}

TEST(ApiOutcomeTest, NumericFaultCodeIsKeptAsText) {
  auto out = ClassifyResponse(401, R"({"fault":{"code":900902,"message":"missing"}})", "");
  EXPECT_EQ(out.verdict, ApiVerdict::kRenewToken);
  EXPECT_EQ(out.error_code, "900902");
}

TEST(ApiOutcomeTest, PlainUnauthorizedWithoutFaultIsFinal) {
  EXPECT_EQ(ClassifyResponse(401, "", "").verdict, ApiVerdict::kFinal);
}

TEST(ApiOutcomeTest, TimeoutsThrottlingAndServerErrorsAreRetryable) {
  for (int status : {408, 429, 500, 502, 503, 504})
    EXPECT_EQ(ClassifyResponse(status, "", "").verdict, ApiVerdict::kRetryable) << status;
}

TEST(ApiOutcomeTest, RetryAfterSecondsAreHonouredAndCapped) {
  EXPECT_EQ(ClassifyResponse(429, "", "7").retry_after, std::chrono::seconds(7));
  EXPECT_EQ(ClassifyResponse(429, "", "999999").retry_after, std::chrono::seconds(3600));
  EXPECT_FALSE(ClassifyResponse(429, "", "Wed, 21 Oct 2026 07:28:00 GMT").retry_after);
  EXPECT_FALSE(ClassifyResponse(429, "", "-1").retry_after);
}

TEST(ApiOutcomeTest, OtherClientErrorsAreFinalWithThingSpaceCode) {
  auto out = ClassifyResponse(
      400, R"({"errorCode":"UnifiedWebService.REQUEST_FAILED.DeviceNotFound","errorMessage":"no"})",
      "");
  EXPECT_EQ(out.verdict, ApiVerdict::kFinal);
  EXPECT_EQ(out.error_code, "UnifiedWebService.REQUEST_FAILED.DeviceNotFound");
  EXPECT_EQ(out.error_message, "no");
  EXPECT_EQ(ClassifyResponse(404, "<html>", "").verdict, ApiVerdict::kFinal);
}

TEST(ApiOutcomeTest, NumericErrorCodeOfOtherFamiliesIsText) {
  auto out = ClassifyResponse(400, R"({"errorCode":"400","errorMessage":"bad"})", "");
  EXPECT_EQ(out.error_code, "400");
  EXPECT_EQ(out.verdict, ApiVerdict::kFinal);
}

TEST(ApiOutcomeTest, TransportFailureIsRetryable) {
  auto out = TransportFailure("connection refused");
  EXPECT_EQ(out.verdict, ApiVerdict::kRetryable);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_EQ(out.error_message, "connection refused");
}

}  // namespace
}  // namespace tscb::handlers
