#include "handlers/callback_body.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace tscb::handlers {
namespace {

constexpr const char* kActivate = R"({
  "username": "vzcb-carrier", "password": "8Zq-secret",
  "requestId": "595f5c44-c31c-4552-8670-020a1545a84d",
  "deviceIds": [{"id": "89148000000800139708", "kind": "ICCID"},
                {"id": "990013907835573", "kind": "imei"}],
  "deviceResponse": {"activateResponse": {"state": "active"}},
  "status": "Success", "callbackCount": 1, "maxCallbackThreshold": 4})";

ParsedBody MustParse(std::string_view service, std::string_view raw) {
  auto r = ParseCallbackBody(service, raw);
  EXPECT_TRUE(r.body.has_value()) << Describe(r.error);
  return r.body.value_or(ParsedBody{});
}

TEST(CallbackBodyTest, ExtractsEnvelopeFields) {
  auto b = MustParse("CarrierService", kActivate);
  EXPECT_EQ(b.username, "vzcb-carrier");
  EXPECT_EQ(b.password, "8Zq-secret");
  EXPECT_EQ(b.request_id, "595f5c44-c31c-4552-8670-020a1545a84d");
  EXPECT_EQ(b.device_id, "89148000000800139708");
  EXPECT_EQ(b.device_kind, "iccid");  // any letter case in, lower case out (spec 4.1)
  EXPECT_EQ(b.attempt, 1);
  EXPECT_EQ(b.dedup_key.size(), 64u);
}

TEST(CallbackBodyTest, StoredBodyHasNoCredentialsButKeepsEverythingElse) {
  auto b = MustParse("CarrierService", kActivate);
  auto stored = boost::json::parse(b.stored_json).as_object();
  EXPECT_FALSE(stored.contains("username"));
  EXPECT_FALSE(stored.contains("password"));
  EXPECT_EQ(b.stored_json.find("8Zq-secret"), std::string::npos);
  EXPECT_EQ(stored.at("status").as_string(), "Success");
  EXPECT_EQ(stored.at("callbackCount").as_int64(), 1);
  EXPECT_TRUE(stored.contains("deviceResponse"));
}

TEST(CallbackBodyTest, ResendWithHigherCallbackCountHasTheSameDedupKey) {
  std::string resend = kActivate;
  resend.replace(resend.find("\"callbackCount\": 1"), 18, "\"callbackCount\": 3");
  auto first = MustParse("CarrierService", kActivate);
  auto again = MustParse("CarrierService", resend);
  EXPECT_EQ(first.dedup_key, again.dedup_key);
  EXPECT_EQ(again.attempt, 3);
}

TEST(CallbackBodyTest, KeyOrderAndWhitespaceDoNotChangeTheDedupKey) {
  auto a = MustParse("NiddService", R"({"requestId":"r1","status":"Queued","x":{"b":1,"a":2}})");
  auto b =
      MustParse("NiddService", R"({ "x" : {"a":2, "b":1}, "status":"Queued", "requestId":"r1" })");
  EXPECT_EQ(a.dedup_key, b.dedup_key);
}

TEST(CallbackBodyTest, DifferentCredentialsDoNotChangeTheDedupKey) {
  auto a = MustParse("NiddService", R"({"requestId":"r1","username":"a","password":"x"})");
  auto b = MustParse("NiddService", R"({"requestId":"r1","username":"b","password":"y"})");
  EXPECT_EQ(a.dedup_key, b.dedup_key);
}

TEST(CallbackBodyTest, DifferentContentOrServiceChangesTheDedupKey) {
  auto queued = MustParse("NiddService", R"({"requestId":"r1","status":"Queued"})");
  auto delivered = MustParse("NiddService", R"({"requestId":"r1","status":"Delivered"})");
  auto other_service = MustParse("CarrierService", R"({"requestId":"r1","status":"Queued"})");
  EXPECT_NE(queued.dedup_key, delivered.dedup_key);  // spec 4.3.10: two callbacks, one request
  EXPECT_NE(queued.dedup_key, other_service.dedup_key);
}

// Dedup keys stay in inbox_keys: a resend that reaches an upgraded daemon
// must get the key the old one stored. Pinned: escapes, non-ASCII, numbers
// (Boost.JSON writes 3.5 as 3.5E0), literals, empty containers, key order.
TEST(CallbackBodyTest, TheDedupKeyAndTheStoredTextDoNotChangeBetweenVersions) {
  auto b = MustParse("SmsService",
                     R"({"username":"u","password":"p","requestId":"r-1",)"
                     R"("z":[1,-2,3.5,1e300,true,false,null],)"
                     R"("a":{"q":"say \"hi\"\\ \u00e9\u20ac\ud83d\ude00 \t\n\u0001","b":{}},)"
                     R"("m":[],"callbackCount":2})");
  EXPECT_EQ(b.dedup_key, "acdced4b60c01ad8daffc7891f185743c8030aa9b9c69b41199712bf094abe93");
  EXPECT_EQ(b.stored_json,
            "{\"a\":{\"b\":{},\"q\":\"say \\\"hi\\\"\\\\ \u00e9\u20ac\U0001F600 \\t\\n\\u0001\"},"
            "\"m\":[],\"requestId\":\"r-1\",\"z\":[1,-2,3.5E0,1E300,true,false,null],"
            "\"callbackCount\":2}");
}

TEST(CallbackBodyTest, NestedCallbackCountIsPartOfTheKey) {
  auto a = MustParse("S", R"({"inner":{"callbackCount":1}})");
  auto b = MustParse("S", R"({"inner":{"callbackCount":2}})");
  EXPECT_NE(a.dedup_key, b.dedup_key);
}

TEST(CallbackBodyTest, MissingOptionalFieldsAreEmpty) {
  auto b = MustParse("PromoChanges", R"({"promoChange":{"change":"x"}})");
  EXPECT_EQ(b.request_id, "");
  EXPECT_EQ(b.device_id, "");
  EXPECT_EQ(b.username, "");
  EXPECT_FALSE(b.attempt.has_value());
}

TEST(CallbackBodyTest, NonStringFieldsAreIgnoredNotTrusted) {
  auto b = MustParse("S", R"({"requestId":42,"deviceIds":"x","username":7,"callbackCount":"2"})");
  EXPECT_EQ(b.request_id, "");
  EXPECT_EQ(b.device_id, "");
  EXPECT_EQ(b.username, "");
  EXPECT_FALSE(b.attempt.has_value());
  EXPECT_EQ(b.stored_json.find("username"), std::string::npos);
}

TEST(CallbackBodyTest, NotJsonIsRejected) {
  EXPECT_EQ(ParseCallbackBody("S", "not json").error, BodyError::kNotJson);
  EXPECT_EQ(ParseCallbackBody("S", "").error, BodyError::kNotJson);
  EXPECT_EQ(ParseCallbackBody("S", "{\"a\":1} trailing").error, BodyError::kNotJson);
}

TEST(CallbackBodyTest, InvalidUtf8IsRejected) {
  EXPECT_EQ(ParseCallbackBody("S", "{\"a\":\"\xff\xfe\"}").error, BodyError::kNotJson);
}

TEST(CallbackBodyTest, ValidJsonThatIsNotAnObjectIsRejected) {
  EXPECT_EQ(ParseCallbackBody("S", "[1,2]").error, BodyError::kNotObject);
  EXPECT_EQ(ParseCallbackBody("S", "\"x\"").error, BodyError::kNotObject);
  EXPECT_EQ(ParseCallbackBody("S", "null").error, BodyError::kNotObject);
}

TEST(CallbackBodyTest, NulCharacterCannotBeStoredAndIsRejected) {
  EXPECT_EQ(ParseCallbackBody("S", R"({"a":"x\u0000y"})").error, BodyError::kUnstorable);
  EXPECT_EQ(ParseCallbackBody("S", R"({"a\u0000":1})").error, BodyError::kUnstorable);
}

TEST(CallbackBodyTest, NestingDeeperThanTheLimitIsRejected) {
  std::string deep(kMaxJsonDepth + 1, '[');
  deep = "{\"a\":" + deep + std::string(kMaxJsonDepth + 1, ']') + "}";
  EXPECT_EQ(ParseCallbackBody("S", deep).error, BodyError::kNotJson);
  std::string ok(kMaxJsonDepth - 2, '[');
  ok = "{\"a\":" + ok + std::string(kMaxJsonDepth - 2, ']') + "}";
  EXPECT_TRUE(ParseCallbackBody("S", ok).body.has_value());
}

TEST(CallbackBodyTest, LargeIdentifiersStayExactStrings) {
  // A 32-digit EID does not fit any integer type (spec 4.1).
  auto b = MustParse("NiddService",
                     R"({"deviceIds":[{"id":"89049032000000000000000000000002","kind":"EID"}]})");
  EXPECT_EQ(b.device_id, "89049032000000000000000000000002");
  EXPECT_EQ(b.device_kind, "eid");
}

}  // namespace
}  // namespace tscb::handlers
