// End to end with the carrier simulator: the real daemon, the real tscb-sim
// (tests/sim), real TLS both ways, real PostgreSQL. Covers self-registration,
// session handling, login lock-out protection, retries, and callbacks of
// every simulated type reaching the inbox exactly once.
#include "tests/e2e/sim_fixture.hpp"

namespace tscb::testing {
namespace {

TEST_F(ThingSpaceTest, StartUpRegistersEveryServiceOnceAndRestartSendsNone) {
  StartSim();
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();

  EXPECT_EQ(Count("POST", "/oauth2/token"), 1);
  EXPECT_EQ(Count("POST", "/session/login"), 1);
  EXPECT_EQ(Count("GET", "/callbacks/" + std::string(kAccount)), 1);
  EXPECT_EQ(Count("POST", "/callbacks/" + std::string(kAccount)),
            static_cast<int>(FixtureServices().size()));
  // Every registration carries the service's credentials and our URL.
  auto registry = SimGet("/_sim/registrations").at(kAccount).as_object();
  for (const auto& s : FixtureServices()) EXPECT_EQ(S(registry.at(s)), OurUrl(s)) << s;
  for (const auto& c : Calls()) {
    if (c.method != "POST" || c.target.find("/callbacks/") == std::string::npos) continue;
    auto body = json::parse(c.body).as_object();
    std::string service(body.at("name").as_string());
    EXPECT_EQ(S(body.at("username")), UsernameFor(service));
    EXPECT_EQ(S(body.at("password")), PasswordFor(service));
  }

  // Stop: logout, no deregistration (off by default).
  daemon_->Signal(SIGTERM);
  ASSERT_EQ(daemon_->Wait(10s), 0);
  EXPECT_EQ(Count("POST", "/session/logout"), 1);
  EXPECT_EQ(Count("DELETE", "/callbacks/"), 0);

  // A restart with the same config lists and sends nothing.
  SimPost("/_sim/reset", json::object{});
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return Count("GET", "/callbacks/") == 1 && AllRegistered(); }))
      << daemon_->Log();
  EXPECT_EQ(Count("POST", "/callbacks/"), 0);
  EXPECT_EQ(Count("DELETE", "/callbacks/"), 0);
}

TEST_F(ThingSpaceTest, DriftIsRepairedOnTheNextCheckAndForeignRegistrationsAreLeftAlone) {
  StartSim();
  StartDaemon(Options("1s"));
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();

  // ThingSpace "loses" one registration, another drifts to an old path of
  // ours, a third is taken by somebody else.
  SimPost("/_sim/registry/drop",
          json::object{{"account", kAccount}, {"service", "CarrierService"}});
  SimPost("/_sim/registry/set",
          json::object{{"account", kAccount},
                       {"service", "NiddService"},
                       {"url", "https://localhost:" + std::to_string(public_port_) + "/old/nidd"},
                       {"username", UsernameFor("NiddService")},
                       {"password", PasswordFor("NiddService")}});
  SimPost("/_sim/registry/set", json::object{{"account", kAccount},
                                             {"service", "PromoChanges"},
                                             {"url", "https://other.example.com/promo"}});
  ASSERT_TRUE(WaitFor([&] {
    auto registry = SimGet("/_sim/registrations").at(kAccount).as_object();
    // Between the daemon's DELETE of the drifted path and its POST of the
    // right one, NiddService is briefly absent.
    return registry.contains("CarrierService") && registry.contains("NiddService") &&
           S(registry.at("NiddService")) == OurUrl("NiddService");
  })) << daemon_->Log();
  auto registry = SimGet("/_sim/registrations").at(kAccount).as_object();
  EXPECT_EQ(S(registry.at("CarrierService")), OurUrl("CarrierService"));
  EXPECT_EQ(S(registry.at("PromoChanges")), "https://other.example.com/promo");
  EXPECT_EQ(Count("DELETE", "/name/NiddService"), 1);
  EXPECT_EQ(Count("DELETE", "/name/PromoChanges"), 0);

  ASSERT_TRUE(WaitFor([&] {
    auto r = Ready();
    if (!r.contains("registration")) return false;
    const auto* promo = r.at("registration").as_object().if_contains("PromoChanges");
    return promo != nullptr && S(promo->at("state")) == "foreign";
  }));
  auto m = Metrics();
  EXPECT_NE(
      m.find(
          R"(tscb_registration_actions_total{action="drift_repaired",service="CarrierService"} 1)"),
      std::string::npos)
      << m;
  EXPECT_NE(m.find(R"(action="drift_repaired",service="NiddService"} 1)"), std::string::npos);
  EXPECT_NE(m.find(R"(action="foreign",service="PromoChanges"})"), std::string::npos);
  EXPECT_NE(daemon_->Log().find("PromoChanges is registered to https://other.example.com/promo"),
            std::string::npos);
}

TEST_F(ThingSpaceTest, SessionExpiryMidRunMeansOneReLoginAndNoFailedCall) {
  StartSim();
  StartDaemon(Options("1s"));
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  SimPost("/_sim/expire-sessions", json::object{});
  ASSERT_TRUE(WaitFor([&] { return Count("POST", "/session/login") == 2; })) << daemon_->Log();
  // The next check goes through with the new session, then keeps it.
  auto logins_before = Count("POST", "/session/login");
  ASSERT_TRUE(WaitFor([&] {
    auto calls = Calls();
    return !calls.empty() && calls.back().method == "GET" && calls.back().status == 200 &&
           calls.back().session != calls.front().session;
  }));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(Count("POST", "/session/login"), logins_before);

  // The expired call was answered 400 SessionToken.Expired, then repeated.
  auto calls = Calls();
  int expired = 0;
  for (std::size_t i = 0; i + 2 < calls.size(); ++i) {
    if (calls[i].status == 400 && calls[i].method == "GET") {
      ++expired;
      EXPECT_EQ(calls[i + 1].target, "/api/m2m/v1/session/login");
      EXPECT_EQ(calls[i + 2].target, calls[i].target);
      EXPECT_EQ(calls[i + 2].status, 200);
    }
  }
  EXPECT_EQ(expired, 1);
  auto m = Metrics();
  EXPECT_EQ(m.find(R"(tscb_thingspace_calls_total{outcome="final"})"), std::string::npos) << m;
  EXPECT_EQ(m.find(R"(tscb_thingspace_calls_total{outcome="retryable"})"), std::string::npos);
}

TEST_F(ThingSpaceTest, TheOAuthTokenIsRenewedBeforeItExpires) {
  StartSim("{}", 300, {"--token-lifetime", "2"});
  StartDaemon(Options("1s"));
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  // Renewed at half its life, then (same token again) at its end: a new one
  // at least every 2 s, without a failed call.
  ASSERT_TRUE(WaitFor([&] { return Count("POST", "/oauth2/token") >= 4; }, 10s)) << daemon_->Log();
  std::set<std::string> bearers;
  for (const auto& c : Calls())
    if (c.authorization.rfind("Bearer ", 0) == 0) bearers.insert(c.authorization);
  EXPECT_GE(bearers.size(), 2u);
  EXPECT_EQ(Count("POST", "/session/login"), 1);
  auto m = Metrics();
  EXPECT_EQ(m.find(R"(tscb_thingspace_calls_total{outcome="final"})"), std::string::npos) << m;
  EXPECT_EQ(m.find(R"(tscb_thingspace_calls_total{outcome="retryable"})"), std::string::npos);
}

TEST_F(ThingSpaceTest, ARefusedOAuthTokenIsRenewedAndTheCallRepeatedOnce) {
  StartSim();
  StartDaemon(Options("1s"));
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  SimPost("/_sim/revoke-token", json::object{});
  // The next check gets a gateway 401, fetches a token, and repeats the call.
  ASSERT_TRUE(WaitFor([&] { return Count("POST", "/oauth2/token") == 2; })) << daemon_->Log();
  ASSERT_TRUE(WaitFor([&] {
    auto calls = Calls();
    return calls.back().method == "GET" && calls.back().status == 200;
  }));
  auto calls = Calls();
  int refused = 0;
  for (std::size_t i = 0; i + 2 < calls.size(); ++i) {
    if (calls[i].status != 401) continue;
    ++refused;
    EXPECT_EQ(calls[i + 1].target, "/api/ts/v1/oauth2/token");
    EXPECT_EQ(calls[i + 2].target, calls[i].target);
    EXPECT_EQ(calls[i + 2].status, 200);
  }
  EXPECT_EQ(refused, 1);
  EXPECT_EQ(Count("POST", "/session/login"), 1);  // the session stays
  EXPECT_EQ(Metrics().find(R"(tscb_thingspace_calls_total{outcome="final"})"), std::string::npos);
}

TEST_F(ThingSpaceTest, DeregistersAtShutdownOnlyWhenConfigured) {
  StartSim();
  StartDaemon(Options("1h", "  deregister_on_shutdown: true\n"));
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  daemon_->Signal(SIGTERM);
  ASSERT_EQ(daemon_->Wait(10s), 0) << daemon_->Log();
  EXPECT_EQ(Count("DELETE", "/callbacks/"), static_cast<int>(FixtureServices().size()));
  EXPECT_TRUE(SimGet("/_sim/registrations").at(kAccount).as_object().empty());
  // The logout comes after the deregistrations.
  auto calls = Calls();
  EXPECT_EQ(calls.back().target, "/api/m2m/v1/session/logout");
}

TEST_F(ThingSpaceTest, ThreeLoginFailuresInARowStopTheDaemonAtTwo) {
  StartSim(R"({"login_fail_next": 3})");
  StartDaemon(Options("1s"));
  ASSERT_TRUE(WaitFor([&] {
    auto r = Ready();
    return r.contains("thingspace") && r.at("thingspace").at("logins_stopped").as_bool();
  })) << daemon_->Log();
  auto reply = Admin().Get("/readyz");
  EXPECT_EQ(reply.status, 503) << reply.body;
  // Several more registration checks come and go; no third login.
  std::this_thread::sleep_for(2500ms);
  EXPECT_EQ(Count("POST", "/session/login"), 2);
  EXPECT_NE(Metrics().find("tscb_thingspace_login_stopped 1"), std::string::npos);
  EXPECT_NE(Metrics().find(R"(tscb_thingspace_logins_total{result="session_failed"} 2)"),
            std::string::npos);
  EXPECT_NE(daemon_->Log().find("no more logins until restart"), std::string::npos);
  // The daemon still takes callbacks while a person fixes the credentials.
  auto fixture = LoadFixtures().front();
  EXPECT_EQ(
      Client().Post("/callbacks/" + fixture.service, AsSent(fixture.service, fixture.body)).status,
      200);
}

TEST_F(ThingSpaceTest, ServerErrorsAndRateLimitsAreRetriedWithBackoffAndRetryAfter) {
  StartSim(R"({"endpoints": {"GET /callbacks": {"fail_next": 2, "status": 503},
                             "POST /callbacks": {"fail_next": 1, "status": 429, "retry_after": 1}}})");
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  auto calls = Calls();
  std::vector<int> lists;
  const SimCall* limited = nullptr;
  const SimCall* after_limit = nullptr;
  for (const auto& c : calls) {
    if (c.method == "GET" && c.target.find("/callbacks/") != std::string::npos)
      lists.push_back(c.status);
    if (c.method == "POST" && c.target.find("/callbacks/") != std::string::npos) {
      if (c.status == 429)
        limited = &c;
      else if (limited && !after_limit)
        after_limit = &c;
    }
  }
  EXPECT_EQ(lists, (std::vector<int>{503, 503, 200}));
  ASSERT_TRUE(limited && after_limit);
  EXPECT_EQ(json::parse(limited->body).at("name"), json::parse(after_limit->body).at("name"));
  EXPECT_GE(after_limit->at_ms - limited->at_ms, 1000.0) << "Retry-After: 1 not honoured";
  EXPECT_EQ(Count("POST", "/callbacks/"), static_cast<int>(FixtureServices().size()) + 1);
}

TEST_F(ThingSpaceTest, EveryCallbackTypeReachesTheInboxOnceEvenWhenResent) {
  // Every acknowledged callback is sent a second time (a lost ack).
  StartSim(R"({"duplicate_rate": 1.0})");
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();

  json::array two_devices{
      json::object{
          {"deviceIds", json::array{json::object{{"id", "990013907835573"}, {"kind", "imei"}}}}},
      json::object{{"deviceIds",
                    json::array{json::object{{"id", "89148000000800139999"}, {"kind", "iccid"}}}}}};
  std::vector<std::pair<std::string, json::object>> actions = {
      {"/devices/actions/activate",
       {{"accountName", kAccount}, {"servicePlan", "M2M NBIOT"}, {"devices", two_devices}}},
      {"/devices/actions/suspend", {{"accountName", kAccount}, {"devices", two_devices}}},
      {"/sms",
       {{"accountName", kAccount},
        {"deviceIds", json::array{json::object{{"id", "5555550100"}, {"kind", "mdn"}}}},
        {"smsMessage", "ping"}}},
      {"/devices/nidd/message", {{"accountName", kAccount}, {"devices", two_devices}}},
      {"/diagnostics/basic/devicereachability",
       {{"accountName", kAccount}, {"devices", two_devices}}},
  };
  int expected = 0;
  for (const auto& [path, request] : actions)
    expected += static_cast<int>(
        SimPost("/_sim/trigger", json::object{{"path", path}, {"request", request}})
            .at("callbacks")
            .as_int64());
  for (const char* service :
       {"ExternalProvisioningChanges", "PromoChanges", "ResumeTrackingNotification", "AlertService",
        "EnhancedConnectivityService", "NiddService"}) {
    SimPost("/_sim/unsolicited",
            json::object{{"account", kAccount}, {"service", service}, {"count", 2}});
    expected += 2;
  }
  ASSERT_TRUE(WaitFor([&] {
    auto d = SimGet("/_sim/deliveries").at("counts").as_object();
    return d.contains("acked") && d.at("acked").as_int64() == 2 * expected;
  })) << json::serialize(SimGet("/_sim/deliveries").at("counts"));

  EXPECT_EQ(InboxRows(), expected);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE deliveries = 2 AND attempt = 2"),
            expected);
  for (const char* service :
       {"CarrierService", "NiddService", "EnhancedConnectivityService", "SMSDeliveryConfirmation",
        "DiagnosticsService", "ExternalProvisioningChanges", "PromoChanges",
        "ResumeTrackingNotification", "AlertService"})
    EXPECT_GT(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE service = '" +
                         std::string(service) + "'"),
              0)
        << service;
  // The failing device's callback says so; passwords never reach the table.
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE body->>'status' = 'Failed'"), 4);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE body ? 'password'"), 0);
}

TEST_F(ThingSpaceTest, DroppedCallbacksNeverArriveAndOutOfOrderOnesAreStoredAsTheyCome) {
  StartSim(R"({"out_of_order": true})");
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  json::object request{{"accountName", kAccount},
                       {"device", json::object{{"id", "490154203237518"}, {"kind", "imei"}}}};
  SimPost("/_sim/trigger", json::object{{"path", "/devices/nidd/message"}, {"request", request}});
  ASSERT_TRUE(WaitFor([&] { return InboxRows() == 2; })) << daemon_->Log();
  // Delivered arrived before Queued: stored in arrival order, both kept.
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox a JOIN tscb.inbox b ON a.id < b.id "
                       "WHERE a.body->>'status' = 'Delivered' AND b.body->>'status' = 'Queued'"),
            1);

  SimPost("/_sim/faults", json::object{{"drop_rate", 1.0}, {"out_of_order", false}});
  SimPost("/_sim/unsolicited",
          json::object{{"account", kAccount}, {"service", "PromoChanges"}, {"count", 3}});
  ASSERT_TRUE(WaitFor([&] {
    auto c = SimGet("/_sim/deliveries").at("counts").as_object();
    return c.contains("dropped") && c.at("dropped").as_int64() == 3;
  }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(InboxRows(), 2);
}

TEST_F(ThingSpaceTest, LoadModeDeliversAndCountsAcknowledgements) {
  StartSim();
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  auto report = SimPost("/_sim/load", json::object{{"account", kAccount},
                                                   {"service", "CarrierService"},
                                                   {"count", 300},
                                                   {"concurrency", 8},
                                                   {"rate", 0}})
                    .as_object();
  EXPECT_EQ(report.at("sent").as_int64(), 300);
  EXPECT_EQ(report.at("acked").as_int64(), 300);
  EXPECT_EQ(report.at("failed").as_int64(), 0);
  EXPECT_GT(report.at("per_second").to_number<double>(), 0);
  EXPECT_EQ(InboxRows(), 300);
}

TEST_F(ThingSpaceTest, AnUnacknowledgedCallbackIsResentUntilTheDaemonStoresIt) {
  StartSim("{}", 1000);
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  daemon_->Signal(SIGTERM);
  ASSERT_EQ(daemon_->Wait(10s), 0);

  // Sent while nobody listens: refused, resent every second (4 attempts).
  json::object device{{"id", "89148000000800139708"}, {"kind", "iccid"}};
  json::object request{{"accountName", kAccount},
                       {"devices", json::array{json::object{{"deviceIds", json::array{device}}}}}};
  SimPost("/_sim/trigger",
          json::object{{"path", "/devices/actions/restore"}, {"request", request}});
  ASSERT_TRUE(WaitFor([&] {
    auto d = SimGet("/_sim/deliveries").at("deliveries").as_array();
    return !d.empty() && d[0].at("statuses").as_array().size() >= 1;
  }));
  StartDaemon(Options());
  ASSERT_TRUE(WaitFor([&] { return InboxRows() == 1; })) << daemon_->Log();
  auto d = SimGet("/_sim/deliveries").at("deliveries").as_array();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(S(d[0].at("state")), "acked");
  auto statuses = d[0].at("statuses").as_array();
  ASSERT_GE(statuses.size(), 2u);
  EXPECT_EQ(statuses[0].as_int64(), 0);  // connection refused
  EXPECT_EQ(db_.Scalar("SELECT attempt FROM tscb.inbox"), static_cast<long long>(statuses.size()));
}

TEST_F(ThingSpaceTest, RegisterCommandPlansAppliesAndDeregisters) {
  StartSim();
  DaemonOptions o = Options();
  std::string config = WriteConfig(o);
  SimPost("/_sim/registry/set",
          json::object{{"account", kAccount},
                       {"service", "CarrierService"},
                       {"url", "https://localhost:" + std::to_string(public_port_) + "/old"}});
  auto plan = RunBinary({"register", "--dry-run", "--config", config});
  EXPECT_EQ(plan.exit_code, 0) << plan.output;
  EXPECT_NE(plan.output.find("CarrierService: replace https://localhost:" +
                             std::to_string(public_port_) + "/old -> " + OurUrl("CarrierService")),
            std::string::npos)
      << plan.output;
  EXPECT_NE(plan.output.find("NiddService: register -> " + OurUrl("NiddService")),
            std::string::npos);
  EXPECT_NE(plan.output.find("dry run: nothing was changed"), std::string::npos);
  EXPECT_EQ(Count("POST", "/callbacks/"), 0);
  EXPECT_EQ(Count("DELETE", "/callbacks/"), 0);

  auto applied = RunBinary({"register", "--config", config});
  EXPECT_EQ(applied.exit_code, 0) << applied.output;
  EXPECT_EQ(Count("POST", "/callbacks/"), static_cast<int>(FixtureServices().size()));
  auto again = RunBinary({"register", "--dry-run", "--config", config});
  EXPECT_NE(again.output.find("CarrierService: keep"), std::string::npos) << again.output;

  auto removed = RunBinary({"deregister", "NiddService", "--config", config});
  EXPECT_EQ(removed.exit_code, 0) << removed.output;
  EXPECT_FALSE(SimGet("/_sim/registrations").at(kAccount).as_object().contains("NiddService"));
  auto missing = RunBinary({"deregister", "NiddService", "--config", config});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("CallbackNotFound"), std::string::npos) << missing.output;
  // Each run logged in once and out once; no secret was printed.
  EXPECT_EQ(Count("POST", "/session/login"), Count("POST", "/session/logout"));
  for (const auto& out : {plan.output, applied.output, removed.output})
    EXPECT_EQ(out.find(kUwsPassword), std::string::npos);
}

}  // namespace
}  // namespace tscb::testing
