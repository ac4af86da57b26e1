#include "handlers/ingest.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

config::ServiceConfig Carrier() {
  config::ServiceConfig s;
  s.name = "CarrierService";
  s.username = "vzcb-carrier";
  s.password = config::Secret("right-password");
  return s;
}

TEST(IngestTest, RightCredentialsBuildAnInboxRecordWithoutThem) {
  auto d = DecideCallback(Carrier(), "3.87.163.45",
                          R"({"username":"vzcb-carrier","password":"right-password",
                              "requestId":"r-1","callbackCount":2,
                              "deviceIds":[{"id":"5555550100","kind":"MDN"}]})");
  ASSERT_EQ(d.verdict, Verdict::kAccept);
  ASSERT_TRUE(d.record);
  EXPECT_EQ(d.record->service, "CarrierService");
  EXPECT_EQ(d.record->source_ip, "3.87.163.45");
  EXPECT_EQ(d.record->request_id, "r-1");
  EXPECT_EQ(d.record->attempt, 2);
  EXPECT_EQ(d.record->device_id, "5555550100");
  EXPECT_EQ(d.record->device_kind, "mdn");
  EXPECT_EQ(d.record->body_json.find("right-password"), std::string::npos);
  EXPECT_EQ(d.record->body_json.find("vzcb-carrier"), std::string::npos);
}

TEST(IngestTest, MissingAttemptDefaultsToFirstDelivery) {
  auto d = DecideCallback(Carrier(), "1.2.3.4",
                          R"({"username":"vzcb-carrier","password":"right-password"})");
  ASSERT_TRUE(d.record);
  EXPECT_EQ(d.record->attempt, 1);
}

TEST(IngestTest, WrongPasswordIsRefused) {
  auto d = DecideCallback(Carrier(), "1.2.3.4",
                          R"({"username":"vzcb-carrier","password":"right-passwore"})");
  EXPECT_EQ(d.verdict, Verdict::kBadCredentials);
  EXPECT_FALSE(d.record);
}

TEST(IngestTest, WrongUsernameIsRefused) {
  auto d =
      DecideCallback(Carrier(), "1.2.3.4", R"({"username":"someone","password":"right-password"})");
  EXPECT_EQ(d.verdict, Verdict::kBadCredentials);
}

TEST(IngestTest, MissingCredentialsAreRefused) {
  EXPECT_EQ(DecideCallback(Carrier(), "1.2.3.4", R"({"requestId":"r"})").verdict,
            Verdict::kBadCredentials);
}

TEST(IngestTest, BodyErrorsComeBeforeTheCredentialCheck) {
  EXPECT_EQ(DecideCallback(Carrier(), "1.2.3.4", "{").verdict, Verdict::kNotJson);
  EXPECT_EQ(DecideCallback(Carrier(), "1.2.3.4", "[]").verdict, Verdict::kNotObject);
  EXPECT_EQ(DecideCallback(Carrier(), "1.2.3.4", R"({"a":"\u0000"})").verdict,
            Verdict::kUnstorable);
}

TEST(IngestTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

}  // namespace
}  // namespace tscb::handlers
