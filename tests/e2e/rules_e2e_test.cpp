// End to end rules and follow-up actions: the real daemon with a rules file,
// the simulator as ThingSpace. Exactly-once effects under resends, retries
// with backoff, dead actions, a SIGKILL with actions in flight, chains
// through pending requests, and SIGHUP reloads (a bad file is rejected).
// The simulator's request log is the proof of what reached "ThingSpace".
#include <boost/beast/core/detail/base64.hpp>
#include <fstream>
#include <iterator>
#include <set>

#include "tests/e2e/sim_fixture.hpp"

namespace tscb::testing {
namespace {

// tests/data/rules/welcome.yaml: a welcome SMS (once per device) and a
// custom field for every activation.
std::string WelcomeRules() {
  std::ifstream in(std::string(TSCB_SOURCE_DIR) + "/tests/data/rules/welcome.yaml");
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class RulesTest : public ThingSpaceTest {
 protected:
  // `lease` short enough for the crash test; thingspace.request_timeout is
  // half of it (the config insists) and the client makes one attempt per
  // dispatch, so the dispatcher's own retries are what the tests see.
  void Start(const std::string& rules, const std::string& faults = "{}",
             const std::string& lease = "4s", int max_attempts = 3,
             const std::string& breaker_open_for = "30s") {
    dir_.Write("rules.yaml", rules);
    if (!sim_) StartSim(faults);
    DaemonOptions o = Options();
    const std::string retry = "  retry: { max_attempts: 5, initial: 100ms, max: 2s }\n";
    auto at = o.extra_yaml.find(retry);
    ASSERT_NE(at, std::string::npos);
    o.extra_yaml.replace(at, retry.size(),
                         "  retry: { max_attempts: 1, initial: 100ms, max: 1s }\n"
                         "  request_timeout: 2s\n"
                         "  circuit_breaker: { open_for: " +
                             breaker_open_for + " }\n");
    o.extra_yaml +=
        "rules: { file: rules.yaml }\n"
        "processing: { workers: 2, poll_interval: 200ms }\n"
        "requests: { reconcile_interval: 200ms }\n"
        "actions: { poll_interval: 200ms, lease: " +
        lease + ", max_attempts: " + std::to_string(max_attempts) +
        ", retry: { initial: 200ms, max: 1s } }\n";
    o.log_level = log_level_;
    StartDaemon(o);
    ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();
  }
  std::string log_level_ = "info";

  // Activates one device through the simulator (as if another system had
  // called ThingSpace): its CarrierService callback arrives by itself.
  void Activate(const std::string& iccid) {
    json::object request{
        {"accountName", kAccount},
        {"servicePlan", "M2M5GB"},
        {"devices",
         json::array{json::object{
             {"deviceIds", json::array{json::object{{"id", iccid}, {"kind", "iccid"}}}}}}}};
    SimPost("/_sim/trigger",
            json::object{{"path", "/devices/actions/activate"}, {"request", request}});
  }

  long long Actions(const std::string& where) {
    return db_.Scalar("SELECT count(*) FROM tscb.actions WHERE " + where);
  }
  // Waits until no action is queued or in flight, then a little longer.
  bool Settled(std::chrono::milliseconds timeout = 20s) {
    return WaitFor([&] { return Actions("state IN ('queued', 'in_flight')") == 0; }, timeout);
  }
  RunResult Cli(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(dir_.Path() + "/config.yaml");
    return RunBinary(args);
  }
};

TEST_F(RulesTest, ActivationFiresItsActionsExactlyOnceAndTheSmsIsCorrelated) {
  Start(WelcomeRules());
  Activate("89148000000800100001");
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 2; })) << daemon_->Log();

  // The same callback resent three more times (ThingSpace's resends).
  const std::string activation =
      "service = 'CarrierService' AND body ? 'deviceResponse' AND "
      "body->'deviceResponse' ? 'activateResponse'";
  auto body = db_.Column("SELECT body::text FROM tscb.inbox WHERE " + activation);
  ASSERT_EQ(body.size(), 1u);
  for (int i = 2; i <= 4; ++i) {
    auto resend = json::parse(body[0]).as_object();
    resend["callbackCount"] = i;
    SimPost("/_sim/send",
            json::object{{"account", kAccount}, {"service", "CarrierService"}, {"body", resend}});
  }
  ASSERT_TRUE(WaitFor(
      [&] { return db_.Scalar("SELECT deliveries FROM tscb.inbox WHERE " + activation) == 4; }));
  std::this_thread::sleep_for(1500ms);  // time for anything wrong to happen
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 1);
  EXPECT_EQ(Count("PUT", "/api/m2m/v1/devices/actions/customFields"), 1);
  EXPECT_EQ(Actions("true"), 2);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE " + activation), 1);

  // What reached "ThingSpace": the rendered bodies.
  for (const auto& c : Calls()) {
    if (c.target != "/api/m2m/v1/sms") continue;
    auto sms = json::parse(c.body).as_object();
    EXPECT_EQ(S(sms.at("smsMessage")), "welcome 89148000000800100001");
    EXPECT_EQ(S(sms.at("accountName")), kAccount);
    EXPECT_EQ(S(sms.at("deviceIds").at(0).at("id")), "89148000000800100001");
  }

  // The SMS request id is a pending request started by the action, and its
  // delivery confirmation concludes it.
  auto sms_request =
      db_.Column("SELECT request_id FROM tscb.actions WHERE action = 'sms.send'").at(0);
  EXPECT_FALSE(sms_request.empty());
  ASSERT_TRUE(WaitFor([&] {
    auto s = db_.Column("SELECT state FROM tscb.pending_requests WHERE request_id = '" +
                        sms_request + "'");
    return !s.empty() && s[0] == "succeeded";
  })) << daemon_->Log();
  EXPECT_EQ(db_.Column("SELECT origin FROM tscb.pending_requests WHERE request_id = '" +
                       sms_request + "'")[0],
            "action:" + db_.Column("SELECT id FROM tscb.actions WHERE action = 'sms.send'")[0]);
  // Both notices (EnhancedConnectivityService "sent", then the delivery
  // confirmation) are matched to it.
  EXPECT_EQ(db_.Column("SELECT string_agg(status, ',' ORDER BY status) FROM tscb.events WHERE "
                       "request_id = '" +
                       sms_request + "' AND kind = 'sms.delivery' AND correlation = 'matched'")[0],
            "delivered,sent");
  // The custom fields request is correlated the same way.
  ASSERT_TRUE(WaitFor([&] {
    return db_.Scalar(
               "SELECT count(*) FROM tscb.pending_requests WHERE action = 'custom_fields' "
               "AND state = 'succeeded'") == 1;
  }));

  auto list = Cli({"actions", "list", "--format", "json"});
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("\"state\":\"succeeded\""), std::string::npos) << list.output;
  auto chains = Cli({"report", "action_chains", "--format", "csv"});
  EXPECT_EQ(chains.exit_code, 0) << chains.output;
  EXPECT_NE(chains.output.find("sms.send"), std::string::npos) << chains.output;
  EXPECT_NE(Metrics().find("tscb_actions_total{action=\"sms.send\",result=\"succeeded\"} 1"),
            std::string::npos);
}

// After a run at the most verbose log level (registration, OAuth and
// session logins, callbacks, bad credentials, actions), no secret is in the
// daemon's log or in any row of any table.
TEST_F(RulesTest, NoSecretReachesTheLogOrAnyTable) {
  log_level_ = "trace";
  Start(WelcomeRules());
  Activate("89148000000800100077");
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 2; })) << daemon_->Log();
  const std::string wrong = "wrongpw-Hq5s0E";
  json::object bad{
      {"requestId", "bad-creds"}, {"username", UsernameFor("CarrierService")}, {"password", wrong}};
  EXPECT_EQ(Client().Post("/callbacks/CarrierService", json::serialize(bad)).status, 401);

  std::set<std::string> secrets = {kAppSecret, kUwsPassword, wrong};
  for (const auto& s : FixtureServices()) secrets.insert(PasswordFor(s));
  const std::string basic = std::string("app-key:") + kAppSecret;
  std::string encoded(boost::beast::detail::base64::encoded_size(basic.size()), '\0');
  encoded.resize(boost::beast::detail::base64::encode(encoded.data(), basic.data(), basic.size()));
  secrets.insert(encoded);
  int tokens = 0;
  for (const auto& c : Calls()) {
    if (c.authorization.rfind("Bearer ", 0) == 0 &&
        secrets.insert(c.authorization.substr(7)).second)
      ++tokens;
    if (!c.session.empty() && secrets.insert(c.session).second) ++tokens;
  }
  EXPECT_GE(tokens, 2) << "no OAuth or session token seen to look for";

  const std::string log = daemon_->Log();
  EXPECT_NE(log.find("wrong or missing credentials"), std::string::npos);  // the log was written
  auto tables = db_.Column(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'tscb' AND "
      "table_type = 'BASE TABLE'");
  EXPECT_GE(tables.size(), 5u);
  for (const auto& secret : secrets) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " is in the log";
    for (const auto& table : tables)
      EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb." + table + " t WHERE t::text LIKE '%" +
                           secret + "%'"),
                0)
          << secret << " is in tscb." << table;
  }
}

TEST_F(RulesTest, RetryableFailuresAreRetriedWithBackoffThenSucceed) {
  Start(WelcomeRules(),
        R"({"endpoints": {"PUT /devices/actions/customFields": {"fail_next": 2, "status": 503},
                          "POST /sms": {"fail_next": 1, "status": 429, "retry_after": 1}}})");
  Activate("89148000000800100002");
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 2; })) << daemon_->Log();
  EXPECT_EQ(Count("PUT", "/devices/actions/customFields"), 3);  // 503, 503, 200
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 2);               // 429, then 200
  EXPECT_EQ(Actions("action = 'devices.custom_fields' AND attempts = 3"), 1);
  EXPECT_EQ(Actions("action = 'sms.send' AND attempts = 2"), 1);
  // The retries were spaced out (backoff; the 429 said Retry-After: 1).
  double first = -1, second = -1;
  for (const auto& c : Calls())
    if (c.target == "/api/m2m/v1/sms") (first < 0 ? first : second) = c.at_ms;
  EXPECT_GE(second - first, 900.0);
}

TEST_F(RulesTest, AlwaysFailingActionsEndDeadOrInReviewNeverRepeatedWhenUnsafe) {
  Start(WelcomeRules(),
        R"({"endpoints": {"PUT /devices/actions/customFields": {"error_rate": 1.0, "status": 500},
                          "POST /sms": {"error_rate": 1.0, "status": 500}}})");
  Activate("89148000000800100003");
  ASSERT_TRUE(WaitFor([&] {
    return Actions("state = 'dead'") == 1 && Actions("state = 'needs_review'") == 1;
  })) << daemon_->Log();
  EXPECT_EQ(Count("PUT", "/devices/actions/customFields"), 3);  // actions.max_attempts
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 1);  // a 500 may have sent it: never again
  auto report = Cli({"report", "failed_actions", "--format", "json"});
  ASSERT_EQ(report.exit_code, 0) << report.output;
  auto rows = json::parse(report.output.substr(report.output.find('['))).as_array();
  ASSERT_EQ(rows.size(), 2u);
  std::set<std::string> states;
  for (const auto& r : rows) states.insert(S(r.at("state")));
  EXPECT_EQ(states, (std::set<std::string>{"dead", "needs_review"}));

  // An operator retries the dead one once the endpoint works again.
  SimPost("/_sim/faults", json::object{{"clear", true}});
  auto id = db_.Column("SELECT id FROM tscb.actions WHERE state = 'dead'").at(0);
  auto retried = Cli({"actions", "retry", id});
  EXPECT_EQ(retried.exit_code, 0) << retried.output;
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 1; })) << daemon_->Log();
  auto cancelled = Cli({"actions", "cancel", id});
  EXPECT_EQ(cancelled.exit_code, 1);  // succeeded: nothing to cancel
}

// The daemon is killed while both actions are in flight (the simulator
// holds the calls for 1.5 s). After a restart the safe action is sent again
// and completes once; the unsafe one is never sent a second time.
TEST_F(RulesTest, SigkillWithActionsInFlightNeverSendsAnUnsafeActionTwice) {
  Start(WelcomeRules(),
        R"({"endpoints": {"PUT /devices/actions/customFields": {"latency_ms": 1500},
                          "POST /sms": {"latency_ms": 1500}}})",
        "4s");
  Activate("89148000000800100004");
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'in_flight'") == 2; })) << daemon_->Log();
  // Both requests reached the simulator, which holds them for 1.5 s.
  ASSERT_TRUE(WaitFor([&] {
    return Count("POST", "/api/m2m/v1/sms") == 1 &&
           Count("PUT", "/devices/actions/customFields") == 1;
  }));
  daemon_->Signal(SIGKILL);
  daemon_->Wait(5s);
  // The simulator carries out both calls anyway (the answers go nowhere).
  ASSERT_TRUE(WaitFor([&] {
    int done = 0;
    for (const auto& c : Calls())
      done += c.status == 200 && (c.target == "/api/m2m/v1/sms" ||
                                  c.target == "/api/m2m/v1/devices/actions/customFields");
    return done == 2;
  }));
  SimPost("/_sim/faults", json::object{{"clear", true}});
  Start(WelcomeRules(), "{}", "4s");
  ASSERT_TRUE(WaitFor([&] {
    return Actions("action = 'devices.custom_fields' AND state = 'succeeded'") == 1 &&
           Actions("action = 'sms.send' AND state = 'needs_review'") == 1;
  })) << daemon_->Log();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 1);
  EXPECT_EQ(Count("PUT", "/devices/actions/customFields"), 2);
  EXPECT_EQ(Actions("state = 'succeeded'"), 1);
  auto review = Cli({"actions", "list", "--state", "needs_review"});
  EXPECT_NE(review.output.find("repeating it is unsafe"), std::string::npos) << review.output;
}

// ThingSpace's API down for a while (here 4 s; the same holds for minutes
// with the default backoff): callbacks are still stored and processed, the
// actions wait and retry, and complete once it answers again, once each.
TEST_F(RulesTest, ThingSpaceDownCallbacksStillStoredActionsWaitThenCompleteOnce) {
  Start(WelcomeRules(),
        R"({"endpoints": {"PUT /devices/actions/customFields": {"error_rate": 1.0, "status": 503},
                          "POST /sms": {"error_rate": 1.0, "status": 503}}})",
        "4s", 20, "1s");
  for (int i = 0; i < 5; ++i) Activate("8914800000080010010" + std::to_string(i));
  ASSERT_TRUE(WaitFor([&] {
    return db_.Scalar("SELECT count(*) FROM tscb.events WHERE kind = 'provisioning.activate'") ==
               5 &&
           Actions("state = 'queued'") == 10 && Count("POST", "/api/m2m/v1/sms") >= 2;
  })) << daemon_->Log();
  std::this_thread::sleep_for(4s);
  EXPECT_EQ(Actions("state IN ('succeeded', 'dead', 'failed', 'needs_review')"), 0);
  auto deliveries = SimGet("/_sim/deliveries").as_object();
  EXPECT_EQ(deliveries.at("counts").as_object().size(), 1u) << json::serialize(deliveries);
  EXPECT_TRUE(deliveries.at("counts").as_object().contains("acked"));

  SimPost("/_sim/faults", json::object{{"clear", true}});
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 10; }, 30s)) << daemon_->Log();
  int sms_ok = 0;
  for (const auto& c : Calls()) sms_ok += c.target == "/api/m2m/v1/sms" && c.status == 200;
  EXPECT_EQ(sms_ok, 5);
  // The breaker opened after 5 failed calls; calls it refused, unsent, did
  // not use up the 4 attempts each action has.
  EXPECT_NE(Metrics().find("outcome=\"circuit_open\"}"), std::string::npos) << Metrics();
}

TEST_F(RulesTest, SighupWithABadRulesFileKeepsTheOldRules) {
  Start(WelcomeRules());
  dir_.Write("rules.yaml",
             "rules:\n  - name: broken\n    when: {}\n    do: [{action: sms.launch}]\n");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return daemon_->Log().find("rejected (1 error(s))") != std::string::npos;
  })) << daemon_->Log();
  EXPECT_NE(daemon_->Log().find("unknown action sms.launch"), std::string::npos);
  EXPECT_NE(Metrics().find("tscb_rules_loads_total{result=\"rejected\"} 1"), std::string::npos);
  EXPECT_NE(Metrics().find("tscb_rules_active 1"), std::string::npos);
  Activate("89148000000800100005");
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 2; })) << daemon_->Log();
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 1);

  // A valid change is applied and logged with what changed.
  dir_.Write("rules.yaml", WelcomeRules() + R"(
  - name: provisioning-history
    when: {kind: provisioning.activate}
    do:
      - action: devices.history
        with: {accountName: "{{ account }}", deviceId: "{{ device_ids.0 }}"}
)");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return daemon_->Log().find("reloaded: 2 active rule(s); added provisioning-history") !=
           std::string::npos;
  })) << daemon_->Log();
  Activate("89148000000800100006");
  ASSERT_TRUE(WaitFor([&] { return Count("POST", "/devices/history/actions/list") == 1; }))
      << daemon_->Log();
  ASSERT_TRUE(Settled());
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 2);
}

TEST_F(RulesTest, DryRunShowsTheRequestsAndSendsNothing) {
  Start(WelcomeRules());
  Activate("89148000000800100007");
  // Both actions answered (Settled() alone can pass before they are planned).
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 2; })) << daemon_->Log();
  // What a dry run could send: the rules' requests. (Other calls, such as a
  // registration check, may come in meanwhile; they are not the dry run's.)
  auto sent = [&] {
    return Count("POST", "/api/m2m/v1/sms") + Count("PUT", "/devices/actions/customFields");
  };
  int before = sent();
  auto r = Cli({"rules", "test", "--since", "1h", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto planned = json::parse(r.output.substr(r.output.find('['))).as_array();
  ASSERT_GE(planned.size(), 2u);
  EXPECT_EQ(S(planned[0].at("rule")), "welcome");
  EXPECT_EQ(S(planned[0].at("body").at("smsMessage")), "welcome 89148000000800100007");
  auto text = Cli({"rules", "test", "--event-file",
                   std::string(TSCB_SOURCE_DIR) +
                       "/tests/data/callbacks/CarrierService__activate_success.json"});
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("rule welcome -> sms.send: POST /sms"), std::string::npos)
      << text.output;
  EXPECT_NE(text.output.find("nothing was sent"), std::string::npos);
  EXPECT_EQ(sent(), before);
  EXPECT_EQ(Actions("true"), 2);
  // Bad operator input: a clear message and usage exit code.
  auto bad = Cli({"actions", "list", "--limit", "ten"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--limit takes a whole number"), std::string::npos) << bad.output;
  auto unknown = Cli({"actions", "pause", "sms.launch"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find("unknown action sms.launch"), std::string::npos) << unknown.output;
}

// A request whose callbacks never come times out; a rule reacts to the
// request.timeout event by asking ThingSpace about the device (spec 6.8).
TEST_F(RulesTest, ARequestTimeoutFiresItsRule) {
  Start(R"(
rules:
  - name: lost-callback
    when: {kind: request.timeout}
    do:
      - action: devices.list
        with: {accountName: "{{ account }}", deviceId: "{{ device_ids.0 }}"}
)");
  auto added = Cli({"pending", "add",
                    R"({"requestId": "lost-1", "action": "sms", "deadline": 1,
                        "devices": [[{"id": "89148000000800100009", "kind": "iccid"}]]})"});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 1; })) << daemon_->Log();
  int lists = 0;
  for (const auto& c : Calls())
    if (c.target == "/api/m2m/v1/devices/actions/list") {
      ++lists;
      EXPECT_EQ(S(json::parse(c.body).at("deviceId").at("id")), "89148000000800100009");
    }
  EXPECT_EQ(lists, 1);
  EXPECT_EQ(db_.Column("SELECT cause_request_id FROM tscb.actions")[0], "lost-1");
}

TEST_F(RulesTest, PausedRuleWaitsAndResumes) {
  Start(WelcomeRules());
  auto paused = Cli({"rules", "pause", "welcome"});
  ASSERT_EQ(paused.exit_code, 0) << paused.output;
  Activate("89148000000800100008");
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'queued'") == 2; })) << daemon_->Log();
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(Actions("state = 'queued'"), 2);
  EXPECT_EQ(Count("POST", "/api/m2m/v1/sms"), 0);
  ASSERT_EQ(Cli({"rules", "resume", "welcome"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Actions("state = 'succeeded'") == 2; })) << daemon_->Log();
}

}  // namespace
}  // namespace tscb::testing
