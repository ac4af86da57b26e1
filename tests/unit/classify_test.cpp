// The classifier over every example body of spec section 4.3
// (tests/data/callbacks) and the variations the spec warns about.
#include "handlers/classify.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace tscb::handlers {
namespace {

namespace json = boost::json;

json::object Fixture(const std::string& name) {
  std::ifstream in(std::string(TSCB_SOURCE_DIR) + "/tests/data/callbacks/" + name + ".json");
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str()).as_object();
}

Event ClassifyFixture(const std::string& name) {
  return Classify(name.substr(0, name.find("__")), Fixture(name));
}

bool HasId(const Device& d, const std::string& kind, const std::string& id) {
  for (const auto& x : d)
    if (x.kind == kind && x.id == id) return true;
  return false;
}

struct Expected {
  std::string kind, status, request_id;
  std::string first_kind, first_id;  // one identifier of the device
};

TEST(ClassifyTest, EveryExampleBodyOfTheSpec) {
  const std::map<std::string, Expected> expected = {
      {"CarrierService__activate_success",
       {"provisioning.activate", "success", "595f5c44-c31c-4552-8670-020a1545a84d", "iccid",
        "89148000000800139708"}},
      {"CarrierService__change_device_id",
       {"provisioning.device_id_change", "success", "a28892ea-6503-4aa7-bfa2-4cd45d42f61b", "esn",
        "22211315718"}},
      {"CarrierService__custom_fields",
       {"provisioning.result", "success", "595f5c44-c31c-4552-8670-020a1545a84d", "iccid",
        "89148000000800139708"}},
      {"CarrierService__failure",
       {"provisioning.failed", "failed", "595f5c44-c31c-4552-8670-020a1545a84d", "iccid",
        "89148000000800139708"}},
      {"CarrierService__plan_change",
       {"provisioning.plan_change", "success", "c8de7c1d-59b9-4cf3-b969-db76cb2ce509", "meid",
        "A100003685E561"}},
      {"CarrierService__suspend",
       {"provisioning.suspend", "success", "2c90bd28-ece4-42ef-9f02-7e3bd4fbff33", "iccid",
        "89148000000800139708"}},
      {"DiagnosticsService__reachability",
       {"reachability.status", "success", "d1f08526-5443-4054-9a29-4456490ea9f8", "imei",
        "990013907835573"}},
      {"EnhancedConnectivityService__sms_mo",
       {"sms.mo", "received", "3f7c...", "mdn", "5555550100"}},
      {"ExternalProvisioningChanges__suspend",
       {"external.provisioning_change", "received", "7b1e...", "iccid", "89148000000800139708"}},
      {"NiddService__config_created",
       {"nidd.config", "config_created", "595f5c44-c31c-4552-8670-020a1545a84d", "eid",
        "89049032000000000000000000000002"}},
      {"NiddService__mo_data",
       {"nidd.mo", "received", "a0fff7d6-6b30-45eb-84d7-0bc103d319c0", "imsi", "311480852590999"}},
      {"NiddService__mt_delivery_queued",
       {"nidd.delivery", "queued", "aeb0ed2f-5c0e-4d7a-9a41-4b9a3e0c1d22", "iccid",
        "89148000005795977263"}},
      {"PromoChanges__dropped",
       {"promo.change", "received", "2c90bd28-ece4-42ef-9f02-7e3bd4fbff33", "mdn", "3124705797"}},
      {"ResumeTrackingNotification__notice",
       {"suspension.resume_notice", "received", "2c90bd28-ece4-42ef-9f02-7e3bd4fbff33", "mdn",
        "3124705797"}},
      {"SMSDeliveryConfirmation__delivered",
       {"sms.delivery", "delivered", "595f5c44-c31c-4552-8670-020a1545a84d", "iccid",
        "89148000000800139708"}},
  };
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(TSCB_SOURCE_DIR) +
                                                               "/tests/data/callbacks")) {
    if (entry.path().extension() != ".json") continue;
    std::string name = entry.path().stem().string();
    auto it = expected.find(name);
    ASSERT_NE(it, expected.end()) << "no expectation for fixture " << name;
    ++seen;
    Event e = ClassifyFixture(name);
    EXPECT_EQ(e.kind, it->second.kind) << name;
    EXPECT_EQ(e.status, it->second.status) << name;
    EXPECT_EQ(e.request_id, it->second.request_id) << name;
    ASSERT_EQ(e.devices.size(), 1u) << name;
    EXPECT_TRUE(HasId(e.devices[0], it->second.first_kind, it->second.first_id)) << name;
    EXPECT_NE(e.kind, "unknown") << name;
  }
  EXPECT_EQ(seen, static_cast<int>(expected.size()));
}

TEST(ClassifyTest, ActivationCollectsEveryIdentifierOfTheDevice) {
  Event e = ClassifyFixture("CarrierService__activate_success");
  ASSERT_EQ(e.devices.size(), 1u);
  // Top level iccid, imei, msisdn, plus the new line's mdn from activateResponse.
  EXPECT_TRUE(HasId(e.devices[0], "imei", "990013907835573"));
  EXPECT_TRUE(HasId(e.devices[0], "msisdn", "15555550100"));
  EXPECT_TRUE(HasId(e.devices[0], "mdn", "5555550100"));
  EXPECT_EQ(e.devices[0].size(), 4u);  // no duplicates
  EXPECT_EQ(e.payload.at("ipAddress"), "10.0.0.17");
}

TEST(ClassifyTest, FailureCarriesTheFaultCode) {
  Event e = ClassifyFixture("CarrierService__failure");
  EXPECT_TRUE(e.Failed());
  EXPECT_EQ(e.error_code, "CarrierService.REQUEST_FAILED.DeviceAlreadyActive");
  EXPECT_FALSE(e.error_message.empty());
}

TEST(ClassifyTest, AccountIsFoundWhereverTheBodyHasIt) {
  EXPECT_EQ(ClassifyFixture("NiddService__mo_data").account, "0000123456-00001");
  EXPECT_EQ(ClassifyFixture("ExternalProvisioningChanges__suspend").account, "0000123456-00001");
  EXPECT_EQ(ClassifyFixture("CarrierService__suspend").account, "");
}

TEST(ClassifyTest, KindsAreLowerCasedAndIdsStayStrings) {
  auto body = json::parse(R"({"requestId": "r", "deviceIds": [
      {"id": "89148000000800139708", "kind": "ICCID"}, {"id": "00012", "kind": "Mdn"}],
      "deviceResponse": {"suspendResponse": {}}, "status": "SUCCESS"})")
                  .as_object();
  Event e = Classify("CarrierService", body);
  EXPECT_EQ(e.kind, "provisioning.suspend");
  EXPECT_EQ(e.status, "success");
  EXPECT_TRUE(HasId(e.devices[0], "iccid", "89148000000800139708"));
  EXPECT_TRUE(HasId(e.devices[0], "mdn", "00012"));  // leading zeros kept
}

TEST(ClassifyTest, MissingOptionalFieldsAndExtraFieldsAreTolerated) {
  Event bare = Classify("CarrierService", json::object{});
  EXPECT_EQ(bare.kind, "provisioning.result");
  EXPECT_EQ(bare.status, "received");
  EXPECT_TRUE(bare.devices.empty());

  auto extra = ClassifyFixture("SMSDeliveryConfirmation__delivered");
  auto body = Fixture("SMSDeliveryConfirmation__delivered");
  body["somethingNew"] = json::object{{"x", 1}};
  EXPECT_EQ(Classify("SMSDeliveryConfirmation", body).kind, extra.kind);

  // A device SMS given as a plain string instead of an object.
  auto sms = json::parse(R"({"requestId": "r", "deviceIds": [{"id": "1", "kind": "mdn"}],
                             "smsMessage": "hello"})")
                 .as_object();
  Event s = Classify("EnhancedConnectivityService", sms);
  EXPECT_EQ(s.kind, "sms.mo");
  EXPECT_EQ(s.payload.at("message"), "hello");
}

TEST(ClassifyTest, UnknownShapesAreKeptAsUnknownWithTheWholeBody) {
  auto body = json::parse(R"({"requestId": "r", "weird": [1, 2]})").as_object();
  Event e = Classify("NiddService", body);
  EXPECT_EQ(e.kind, "unknown");
  EXPECT_EQ(e.request_id, "r");
  EXPECT_TRUE(e.payload.contains("weird"));
  EXPECT_EQ(Classify("VIPCallbackService", body).kind, "unknown");
}

TEST(ClassifyTest, ServicesWithReconShapesKeepTheirPayloadAndDevices) {
  auto alert = json::parse(R"({"requestId": "r", "deviceIds": [{"id": "5", "kind": "MDN"}],
      "triggerId": "t-1", "usage": {"dataUsedBytes": 6291456}})")
                   .as_object();
  Event a = Classify("AlertService", alert);
  EXPECT_EQ(a.kind, "usage.alert");
  EXPECT_EQ(a.payload.at("triggerId"), "t-1");
  EXPECT_TRUE(a.payload.contains("usage"));
  EXPECT_TRUE(HasId(a.devices[0], "mdn", "5"));
  // The deregister page's spelling.
  EXPECT_EQ(Classify("AlertsService", alert).kind, "usage.alert");

  auto nidd_failed = json::parse(R"({"requestId": "r", "niddResponse": {"niddMTDeliveryResponse":
      {"deviceIds": [{"id": "1", "kind": "imei"}]}}, "status": "DeliveryFailed"})")
                         .as_object();
  Event n = Classify("NiddService", nidd_failed);
  EXPECT_EQ(n.kind, "nidd.delivery");
  EXPECT_EQ(n.status, "failed");
  EXPECT_EQ(n.raw_status, "DeliveryFailed");
  ASSERT_EQ(n.devices.size(), 1u);
}

TEST(ClassifyTest, KnownKindsListsWhatClassifyProduces) {
  const auto& kinds = KnownEventKinds();
  for (const char* k :
       {"provisioning.activate", "sms.mo", "sms.delivery", "nidd.mo", "nidd.delivery",
        "nidd.config", "usage.alert", "reachability.status", "external.provisioning_change",
        "promo.change", "suspension.resume_notice", "request.timeout", "unknown"})
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), k), kinds.end()) << k;
}

}  // namespace
}  // namespace tscb::handlers
