// The carrier simulator's catalogue: every endpoint of the API list is
// served, asynchronous ones produce the callbacks of spec section 4.3.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "tests/sim/catalogue.hpp"

namespace tscb::sim {
namespace {

namespace json = boost::json;

std::string Concrete(std::string path) {
  // {accountname} -> acct, {requestID} -> id, ...
  return std::regex_replace(path, std::regex("\\{[^}]*\\}"), "x");
}

TEST(SimCatalogueTest, EveryEndpointOfTheApiListIsServed) {
  std::ifstream in(std::string(TSCB_SOURCE_DIR) + "/tests/data/api-reference.txt");
  ASSERT_TRUE(in);
  std::regex row("^(GET|POST|PUT|DELETE) (\\S+) ");
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    ++rows;
    std::string method = m[1], path = m[2];
    if (path.front() != '/') path = "/" + path;  // "POST triggers"
    // The list abbreviates the account-scoped paths of these families.
    if (path == "/callbacks")
      path = method == "DELETE" ? "/callbacks/{a}/name/{s}" : "/callbacks/{a}";
    if (path == "/accounts" || path == "/leads") path += "/{a}";
    std::map<std::string, std::string> params;
    const Endpoint* e = Match(method, Concrete(path), params);
    EXPECT_NE(e, nullptr) << line;
  }
  EXPECT_EQ(rows, 68);  // the whole list was read
}

TEST(SimCatalogueTest, MatchFillsPathParameters) {
  std::map<std::string, std::string> params;
  const Endpoint* e = Match("GET", "/accounts/0000123456-00001/requests/abc/status", params);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(params["account"], "0000123456-00001");
  EXPECT_EQ(params["requestId"], "abc");
  EXPECT_EQ(Match("GET", "/devices/actions/activate", params), nullptr);
}

json::object Parse(const char* text) { return json::parse(text).as_object(); }

TEST(SimCatalogueTest, ActivateGivesOneCarrierCallbackPerDeviceAndNiddConfigForNbIot) {
  std::map<std::string, std::string> params;
  const Endpoint* e = Match("POST", "/devices/actions/activate", params);
  ASSERT_NE(e, nullptr);
  auto request = Parse(R"({"accountName": "A", "servicePlan": "M2M NBIoT",
      "devices": [{"deviceIds": [{"id": "990013907835573", "kind": "imei"}]},
                  {"deviceIds": [{"id": "89148000000800139999", "kind": "iccid"}]}]})");
  auto callbacks = CallbacksFor(*e, "req-1", "A", request);
  ASSERT_EQ(callbacks.size(), 3u);
  EXPECT_EQ(callbacks[0].service, "CarrierService");
  EXPECT_EQ(callbacks[0].body.at("status"), "Success");
  EXPECT_TRUE(callbacks[0].body.at("deviceResponse").as_object().contains("activateResponse"));
  EXPECT_EQ(callbacks[0].body.at("requestId"), "req-1");
  EXPECT_EQ(callbacks[1].service, "NiddService");
  EXPECT_EQ(callbacks[1].body.at("status"), "ConfigCreated");
  // The device whose id ends in 9999 fails, with a faultResponse.
  EXPECT_EQ(callbacks[2].service, "CarrierService");
  EXPECT_TRUE(callbacks[2].failed);
  EXPECT_EQ(callbacks[2].body.at("status"), "Failed");
  EXPECT_TRUE(callbacks[2].body.contains("faultResponse"));
}

TEST(SimCatalogueTest, SmsGivesSentThenDeliveryConfirmation) {
  std::map<std::string, std::string> params;
  const Endpoint* e = Match("POST", "/sms", params);
  ASSERT_NE(e, nullptr);
  auto callbacks = CallbacksFor(
      *e, "r", "A",
      Parse(R"({"deviceIds": [{"id": "1", "kind": "mdn"}, {"id": "2", "kind": "mdn"}]})"));
  ASSERT_EQ(callbacks.size(), 4u);  // two devices, two callbacks each
  EXPECT_EQ(callbacks[0].service, "EnhancedConnectivityService");
  EXPECT_EQ(callbacks[1].service, "SMSDeliveryConfirmation");
  EXPECT_EQ(callbacks[1].body.at("smsDeliveryResponse").at("status"), "Delivered");
}

TEST(SimCatalogueTest, NiddMessageIsQueuedThenDelivered) {
  std::map<std::string, std::string> params;
  const Endpoint* e = Match("POST", "/devices/nidd/message", params);
  ASSERT_NE(e, nullptr);
  auto callbacks = CallbacksFor(*e, "r", "A", Parse(R"({"device": {"id": "1", "kind": "imei"}})"));
  ASSERT_EQ(callbacks.size(), 2u);
  EXPECT_EQ(callbacks[0].body.at("status"), "Queued");
  EXPECT_EQ(callbacks[1].body.at("status"), "Delivered");
}

TEST(SimCatalogueTest, FilterOnlyRequestsStillNameADevice) {
  auto devices = DevicesOf(Parse(R"({"groupName": "4G West"})"));
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].size(), 1u);
}

TEST(SimCatalogueTest, UnsolicitedMessagesOfEveryKind) {
  for (const char* type :
       {"ExternalProvisioningChanges", "PromoChanges", "ResumeTrackingNotification", "AlertService",
        "EnhancedConnectivityService", "NiddService"}) {
    PlannedCallback cb;
    ASSERT_TRUE(MakeUnsolicited(type, "A", 3, cb)) << type;
    EXPECT_EQ(cb.service, type);
    EXPECT_TRUE(cb.body.contains("requestId"));
  }
  PlannedCallback cb;
  EXPECT_FALSE(MakeUnsolicited("CarrierService", "A", 1, cb));
}

}  // namespace
}  // namespace tscb::sim
