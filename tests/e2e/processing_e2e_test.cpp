// End to end processing: the real daemon with its processor, the simulator
// delivering callbacks, requests registered through the operator API and the
// CLI; what the events and pending requests say afterwards.
#include "tests/e2e/sim_fixture.hpp"

namespace tscb::testing {
namespace {

constexpr const char* kToken = "operator-token-123";

class ProcessingTest : public ThingSpaceTest {
 protected:
  void Start(const std::string& faults = "{}") {
    StartSim(faults);
    DaemonOptions o = Options();
    o.api_token = kToken;
    o.extra_yaml +=
        "processing: { workers: 2, poll_interval: 200ms }\n"
        "requests: { reconcile_interval: 200ms }\n";
    StartDaemon(o);
    ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  }

  HttpReply Api(const std::string& method, const std::string& target, const std::string& body,
                const std::string& token = kToken) {
    return Admin().Request(method, target, body, {{"Authorization", "Bearer " + token}});
  }

  static json::array Devices(int n, int first = 0, bool one_fails = false) {
    json::array out;
    for (int i = 0; i < n; ++i) {
      std::string iccid = "891480000008" + std::to_string(10000000 + first + i);
      if (one_fails && i == n - 1) iccid = "89148000000800139999";
      out.push_back(
          json::object{{"deviceIds", json::array{json::object{{"id", iccid}, {"kind", "iccid"}}}}});
    }
    return out;
  }

  // Sends the action through the simulator and registers its request id.
  std::string Submit(const std::string& path, const std::string& action, json::array devices,
                     const std::string& service_plan = "M2M5GB") {
    json::object request{
        {"accountName", kAccount}, {"servicePlan", service_plan}, {"devices", devices}};
    auto id = S(SimPost("/_sim/trigger", json::object{{"path", path}, {"request", request}})
                    .at("requestId"));
    auto reply = Api(
        "POST", "/v1/requests",
        json::serialize(json::object{{"requestId", id}, {"action", action}, {"devices", devices}}));
    EXPECT_EQ(reply.status, 201) << reply.body;
    return id;
  }

  json::object Request(const std::string& id) {
    auto reply = Api("GET", "/v1/requests/" + id, "");
    boost::system::error_code ec;
    auto v = json::parse(reply.body, ec);
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }
  std::string State(const std::string& id) {
    auto r = Request(id);
    return r.contains("state") ? S(r.at("state")) : "";
  }
  long long Events() { return db_.Scalar("SELECT count(*) FROM tscb.events"); }
};

TEST_F(ProcessingTest, OperatorApiNeedsItsTokenAndValidInput) {
  Start();
  EXPECT_EQ(Api("POST", "/v1/requests", "{}", "wrong").status, 401);
  EXPECT_EQ(Admin().Post("/v1/requests", "{}").status, 401);
  auto bad = Api("POST", "/v1/requests", R"({"requestId": "r1", "action": "activate"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("devices is required"), std::string::npos) << bad.body;
  std::string ok = R"({"requestId": "r1", "action": "suspend",
                       "devices": [[{"id": "89148000000800139708", "kind": "ICCID"}]], "deadline": "45m"})";
  auto created = Api("POST", "/v1/requests", ok);
  EXPECT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Api("POST", "/v1/requests", ok).status, 409);
  auto r = Request("r1");
  EXPECT_EQ(S(r.at("state")), "pending");
  EXPECT_EQ(S(r.at("origin")), "api");
  EXPECT_EQ(r.at("expectedCallbacks").as_int64(), 1);
  EXPECT_EQ(Api("GET", "/v1/requests/nope", "").status, 404);
  // Every refusal is counted, and nothing half-done was stored.
  auto m = Metrics();
  EXPECT_NE(m.find(R"(tscb_operator_api_requests_total{status="401"} 2)"), std::string::npos) << m;
  EXPECT_NE(m.find(R"(tscb_operator_api_requests_total{status="400"} 1)"), std::string::npos);
  EXPECT_NE(m.find(R"(tscb_operator_api_requests_total{status="409"} 1)"), std::string::npos);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.pending_requests"), 1);
}

TEST_F(ProcessingTest, ActivatingAHundredDevicesEndsSucceededAfterAHundredCallbacks) {
  Start();
  std::string id = Submit("/devices/actions/activate", "activate", Devices(100));
  ASSERT_TRUE(WaitFor([&] { return State(id) == "succeeded"; }, 30s))
      << json::serialize(Request(id)) << daemon_->Log();
  auto r = Request(id);
  EXPECT_EQ(r.at("receivedCallbacks").as_int64(), 100);
  EXPECT_FALSE(r.at("completedAt").is_null());
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE request_id = '" + id +
                       "' AND kind = 'provisioning.activate' AND correlation = 'matched'"),
            100);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state <> 'processed'"), 0);
  // The latency report has it, as JSON and as CSV.
  std::string config = dir_.Path() + "/config.yaml";
  auto report =
      RunBinary({"report", "provisioning_latency", "--format", "json", "--config", config});
  ASSERT_EQ(report.exit_code, 0) << report.output;
  auto rows = json::parse(report.output).as_array();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(S(rows[0].at("request_id")), id);
  EXPECT_EQ(S(rows[0].at("state")), "succeeded");
  EXPECT_EQ(S(rows[0].at("devices")), "100");
  EXPECT_GE(std::stod(S(rows[0].at("latency_seconds"))), 0.0);
  auto csv = RunBinary({"report", "provisioning_latency", "--format", "csv", "--config", config});
  EXPECT_EQ(csv.output.rfind("request_id,account,action,origin,devices,state,", 0), 0u)
      << csv.output;
  auto unknown = RunBinary({"report", "nope", "--config", config});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("callbacks_daily"), std::string::npos);
}

TEST_F(ProcessingTest, APartialFailureListsTheFailedDevice) {
  Start();
  std::string id = Submit("/devices/actions/suspend", "suspend", Devices(3, 0, true));
  ASSERT_TRUE(WaitFor([&] { return State(id) == "partial"; })) << json::serialize(Request(id));
  auto devices = Request(id).at("devices").as_array();
  int failed = 0;
  for (const auto& d : devices) {
    if (S(d.at("state")) != "failed") continue;
    ++failed;
    EXPECT_EQ(S(d.at("ids").at(0).at("id")), "89148000000800139999");
    EXPECT_EQ(S(d.at("error")), "CarrierService.REQUEST_FAILED.DeviceNotFound");
  }
  EXPECT_EQ(failed, 1);
}

TEST_F(ProcessingTest, NbIotActivationsAndSmsWaitForTheirLastCallback) {
  Start();
  auto devices = Devices(2);
  json::object request{
      {"accountName", kAccount}, {"servicePlan", "M2M NBIOT"}, {"devices", devices}};
  auto nb = S(SimPost("/_sim/trigger",
                      json::object{{"path", "/devices/actions/activate"}, {"request", request}})
                  .at("requestId"));
  ASSERT_EQ(
      Api("POST", "/v1/requests",
          json::serialize(json::object{
              {"requestId", nb}, {"action", "activate"}, {"nbiot", true}, {"devices", devices}}))
          .status,
      201);
  ASSERT_TRUE(WaitFor([&] { return State(nb) == "succeeded"; })) << json::serialize(Request(nb));
  EXPECT_EQ(Request(nb).at("receivedCallbacks").as_int64(), 4);  // 2 carrier + 2 NIDD config

  json::array one{json::object{{"id", "5555550100"}, {"kind", "mdn"}}};
  auto sms =
      S(SimPost("/_sim/trigger", json::object{{"path", "/sms"},
                                              {"request", json::object{{"accountName", kAccount},
                                                                       {"deviceIds", one},
                                                                       {"smsMessage", "hi"}}}})
            .at("requestId"));
  ASSERT_EQ(Api("POST", "/v1/requests",
                json::serialize(json::object{
                    {"requestId", sms}, {"action", "sms"}, {"devices", json::array{one}}}))
                .status,
            201);
  ASSERT_TRUE(WaitFor([&] { return State(sms) == "succeeded"; })) << json::serialize(Request(sms));
  // The "sent" notice may be processed after the confirmation: both count.
  EXPECT_TRUE(WaitFor([&] { return Request(sms).at("receivedCallbacks").as_int64() == 2; }))
      << json::serialize(Request(sms));
}

TEST_F(ProcessingTest, ResendsAndDuplicatesGiveOneEventEach) {
  Start(R"({"duplicate_rate": 1.0})");
  std::string id = Submit("/devices/actions/restore", "restore", Devices(10));
  ASSERT_TRUE(WaitFor([&] {
    auto c = SimGet("/_sim/deliveries").at("counts").as_object();
    return c.contains("acked") && c.at("acked").as_int64() == 20;
  }));
  ASSERT_TRUE(WaitFor([&] { return State(id) == "succeeded"; })) << json::serialize(Request(id));
  EXPECT_EQ(Events(), 10);
  EXPECT_EQ(Request(id).at("receivedCallbacks").as_int64(), 10);
}

TEST_F(ProcessingTest, ADroppedCallbackIsRecoveredThroughTheStatusEndpoint) {
  Start(R"({"drop_rate": 1.0})");
  json::array one = Devices(1);
  json::object request{{"accountName", kAccount}, {"servicePlan", "M2M5GB"}, {"devices", one}};
  auto id = S(SimPost("/_sim/trigger",
                      json::object{{"path", "/devices/actions/activate"}, {"request", request}})
                  .at("requestId"));
  ASSERT_EQ(Api("POST", "/v1/requests",
                json::serialize(json::object{
                    {"requestId", id}, {"action", "activate"}, {"devices", one}, {"deadline", 1}}))
                .status,
            201);
  ASSERT_TRUE(WaitFor([&] { return State(id) == "succeeded"; }))
      << json::serialize(Request(id)) << daemon_->Log();
  EXPECT_EQ(Request(id).at("receivedCallbacks").as_int64(), 0);  // the callback never came
  EXPECT_EQ(Count("GET", "/accounts/" + std::string(kAccount) + "/requests/" + id + "/status"), 1);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE kind = 'request.status' AND "
                       "status = 'succeeded' AND request_id = '" +
                       id + "'"),
            1);
}

TEST_F(ProcessingTest, ARequestPastItsDeadlineWithoutAStatusEndpointTimesOut) {
  Start(R"({"drop_rate": 1.0})");
  auto devices = Devices(2);
  json::object request{{"accountName", kAccount}, {"devices", devices}};
  auto id = S(SimPost("/_sim/trigger",
                      json::object{{"path", "/devices/actions/suspend"}, {"request", request}})
                  .at("requestId"));
  ASSERT_EQ(
      Api("POST", "/v1/requests",
          json::serialize(json::object{
              {"requestId", id}, {"action", "suspend"}, {"devices", devices}, {"deadline", "1s"}}))
          .status,
      201);
  ASSERT_TRUE(WaitFor([&] { return State(id) == "timed_out"; })) << json::serialize(Request(id));
  // Two devices: the v1 status endpoint cannot answer, so it was not asked.
  EXPECT_EQ(Count("GET", "/requests/"), 0);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE kind = 'request.timeout' AND "
                       "request_id = '" +
                       id + "' AND jsonb_array_length(device_ids) = 2"),
            1);
  // Concluded once: later passes leave it alone.
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE kind = 'request.timeout'"), 1);
}

TEST_F(ProcessingTest, CliRegistersLateRequestsAndReplayChangesNothing) {
  Start();
  json::object request{{"accountName", kAccount}, {"devices", Devices(2)}};
  auto id = S(SimPost("/_sim/trigger",
                      json::object{{"path", "/devices/actions/deactivate"}, {"request", request}})
                  .at("requestId"));
  ASSERT_TRUE(WaitFor([&] { return Events() == 2; }));
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'unmatched'"), 2);

  std::string config = dir_.Path() + "/config.yaml";
  auto added =
      RunBinary({"pending", "add",
                 json::serialize(json::object{
                     {"requestId", id}, {"action", "deactivate"}, {"devices", Devices(2)}}),
                 "--format", "json", "--config", config});
  EXPECT_EQ(added.exit_code, 0) << added.output;
  EXPECT_EQ(json::parse(added.output).at("state"), "succeeded") << added.output;
  auto shown = RunBinary({"pending", "show", id, "--config", config});  // a field/value table
  EXPECT_NE(shown.output.find("receivedCallbacks | 2"), std::string::npos) << shown.output;
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'matched'"), 2);

  auto replay = RunBinary({"replay", "--state", "processed", "--config", config});
  EXPECT_EQ(replay.exit_code, 0) << replay.output;
  EXPECT_NE(replay.output.find("0 new event(s), 2 already had theirs"), std::string::npos)
      << replay.output;
  EXPECT_EQ(Events(), 2);
  EXPECT_EQ(Request(id).at("receivedCallbacks").as_int64(), 2);
  auto usage = RunBinary({"replay", "--config", config});
  EXPECT_EQ(usage.exit_code, 2);
}

}  // namespace
}  // namespace tscb::testing
