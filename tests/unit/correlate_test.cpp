// Matching events to pending requests: callbacks expected per request type,
// device matching by any identifier, and how a request ends.
#include "handlers/correlate.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

RequestProgress Request(const std::string& action, int devices, bool nbiot = false) {
  RequestProgress r;
  r.request_id = "r";
  r.action = action;
  r.nbiot = nbiot;
  for (int i = 0; i < devices; ++i) {
    DeviceProgress d;
    d.ids = Device{{"8914800000080013970" + std::to_string(i), "iccid"}};
    r.devices.push_back(d);
  }
  return r;
}

Event Ev(const std::string& kind, const std::string& status, int device,
         const std::string& kind_of_id = "iccid") {
  Event e;
  e.kind = kind;
  e.status = status;
  e.request_id = "r";
  e.devices.push_back(Device{{"8914800000080013970" + std::to_string(device), kind_of_id},
                             {"99001390783557" + std::to_string(device), "imei"}});
  return e;
}

TEST(CorrelateTest, ExpectedCallbacksPerRequestType) {
  EXPECT_EQ(ExpectedCallbacks(Request("activate", 3)), 3);
  EXPECT_EQ(ExpectedCallbacks(Request("activate", 3, true)), 6);  // + NIDD configuration
  EXPECT_EQ(ExpectedCallbacks(Request("restore", 1, true)), 2);
  EXPECT_EQ(ExpectedCallbacks(Request("suspend", 2, true)), 2);  // no NIDD message on suspend
  EXPECT_EQ(ExpectedCallbacks(Request("sms", 2)), 4);            // sent + delivered
  EXPECT_EQ(ExpectedCallbacks(Request("nidd", 1)), 2);           // queued + delivered
  EXPECT_EQ(ExpectedCallbacks(Request("reachability", 4)), 4);
}

TEST(CorrelateTest, EveryDeviceSucceededMeansSucceeded) {
  auto r = Request("activate", 2);
  EXPECT_TRUE(Apply(r, Ev("provisioning.activate", "success", 0)));
  Conclude(r);
  EXPECT_EQ(r.state, "pending");
  EXPECT_TRUE(Apply(r, Ev("provisioning.activate", "success", 1)));
  Conclude(r);
  EXPECT_EQ(r.state, "succeeded");
  EXPECT_EQ(r.received, 2);
}

TEST(CorrelateTest, SomeFailedMeansPartialAllFailedMeansFailed) {
  auto r = Request("suspend", 2);
  auto fail = Ev("provisioning.failed", "failed", 1);
  fail.error_code = "CarrierService.REQUEST_FAILED.DeviceNotFound";
  Apply(r, Ev("provisioning.suspend", "success", 0));
  Apply(r, fail);
  Conclude(r);
  EXPECT_EQ(r.state, "partial");
  EXPECT_EQ(r.devices[1].error, "CarrierService.REQUEST_FAILED.DeviceNotFound");

  auto all = Request("suspend", 1);
  Apply(all, Ev("provisioning.failed", "failed", 0));
  Conclude(all);
  EXPECT_EQ(all.state, "failed");
}

TEST(CorrelateTest, DevicesMatchByAnyIdentifierInAnyOrder) {
  auto r = Request("activate", 3);
  Event by_imei;
  by_imei.kind = "provisioning.activate";
  by_imei.status = "success";
  by_imei.devices.push_back(Device{{"990013907835572", "imei"}, {"89148000000800139702", "iccid"}});
  EXPECT_TRUE(Apply(r, by_imei));
  EXPECT_EQ(r.devices[2].state, DeviceState::kSucceeded);
  EXPECT_EQ(r.devices[0].state, DeviceState::kPending);
  Event stranger = Ev("provisioning.activate", "success", 7);
  EXPECT_FALSE(Apply(r, stranger));  // names no device of the request
  EXPECT_EQ(r.received, 2);          // still counted
}

TEST(CorrelateTest, NbIotActivationNeedsTheNiddConfiguration) {
  auto r = Request("activate", 1, true);
  Apply(r, Ev("provisioning.activate", "success", 0));
  Conclude(r);
  EXPECT_EQ(r.state, "pending");
  Apply(r, Ev("nidd.config", "config_created", 0));
  Conclude(r);
  EXPECT_EQ(r.state, "succeeded");

  auto bad = Request("activate", 1, true);
  Apply(bad, Ev("provisioning.activate", "success", 0));
  Apply(bad, Ev("nidd.config", "failed", 0));
  Conclude(bad);
  EXPECT_EQ(bad.state, "failed");
}

TEST(CorrelateTest, IntermediateCallbacksDoNotEndARequest) {
  auto sms = Request("sms", 1);
  Apply(sms, Ev("sms.delivery", "sent", 0));
  Conclude(sms);
  EXPECT_EQ(sms.state, "pending");
  Apply(sms, Ev("sms.delivery", "delivered", 0));
  Conclude(sms);
  EXPECT_EQ(sms.state, "succeeded");

  auto expired = Request("sms", 1);
  Apply(expired, Ev("sms.delivery", "expired", 0));
  Conclude(expired);
  EXPECT_EQ(expired.state, "failed");

  auto nidd = Request("nidd", 1);
  Apply(nidd, Ev("nidd.delivery", "queued", 0));
  Conclude(nidd);
  EXPECT_EQ(nidd.state, "pending");
  Apply(nidd, Ev("nidd.delivery", "delivered", 0));
  Conclude(nidd);
  EXPECT_EQ(nidd.state, "succeeded");
}

TEST(CorrelateTest, ARepeatedCallbackChangesNothingMore) {
  auto r = Request("activate", 1, true);
  Apply(r, Ev("provisioning.activate", "success", 0));
  Apply(r, Ev("provisioning.activate", "success", 0));  // not the NIDD part
  Conclude(r);
  EXPECT_EQ(r.state, "pending");
  EXPECT_EQ(r.received, 2);
  Apply(r, Ev("nidd.config", "config_created", 0));
  Conclude(r);
  EXPECT_EQ(r.state, "succeeded");
  Apply(r, Ev("provisioning.failed", "failed", 0));  // too late to change the outcome
  Conclude(r);
  EXPECT_EQ(r.state, "succeeded");
}

TEST(CorrelateTest, ProgressSurvivesItsJsonForm) {
  auto r = Request("activate", 2);
  Apply(r, Ev("provisioning.failed", "failed", 1));
  auto back = ParseProgressJson(ProgressJson(r.devices));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].state, DeviceState::kFailed);
  EXPECT_EQ(back[0].state, DeviceState::kPending);
  EXPECT_EQ(back[0].ids, r.devices[0].ids);
  EXPECT_EQ(ParseDevicesJson(DevicesJson({r.devices[0].ids})).at(0), r.devices[0].ids);
  EXPECT_TRUE(ParseProgressJson("not json").empty());
}

TEST(CorrelateTest, StatusEndpointAppliesToSingleDeviceProvisioningOnly) {
  EXPECT_TRUE(StatusEndpointApplies(Request("activate", 1)));
  EXPECT_TRUE(StatusEndpointApplies(Request("restore", 1)));
  EXPECT_FALSE(StatusEndpointApplies(Request("activate", 2)));
  EXPECT_FALSE(StatusEndpointApplies(Request("sms", 1)));
  EXPECT_FALSE(StatusEndpointApplies(Request("plan_change", 1)));
}

}  // namespace
}  // namespace tscb::handlers
