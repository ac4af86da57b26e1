// Rules and the outbox against a real PostgreSQL: actions planned in the
// processing transaction exactly once (resends, replays), claims with
// leases, lease recovery (safe: again; unsafe: needs_review), pause and
// resume, operator retry and cancel, chains through pending requests, and
// the report views.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <iterator>

#include "daemon/processor.hpp"
#include "daemon/rule_book.hpp"
#include "storage/pg/reports.hpp"
#include "tests/pg/inbox_fixture.hpp"

namespace tscb::daemon {
namespace {

// tests/data/rules/welcome.yaml, and two more rules.
std::string Rules() {
  std::ifstream in(std::string(TSCB_SOURCE_DIR) + "/tests/data/rules/welcome.yaml");
  return std::string((std::istreambuf_iterator<char>(in)), {}) + R"(
  - name: after-sms
    when: {kind: sms.delivery, status: delivered}
    do:
      - action: http.post
        url: http://127.0.0.1:9/hook
        with: {request: "{{ request_id }}", origin: "{{ request.origin }}"}
  - name: broken
    when: {kind: usage.alert}
    do:
      - action: sms.send
        with: {deviceIds: "{{ device_ids }}", smsMessage: "{{ payload.nothing }}"}
)";
}

std::string Activation(const std::string& request_id, const std::string& iccid) {
  return R"({"requestId":")" + request_id + R"(","deviceIds":[{"id":")" + iccid +
         R"(","kind":"iccid"}],"deviceResponse":{"activateResponse":{"state":"active"}},"status":"Success"})";
}

class OutboxPgTest : public InboxFixture {
 protected:
  void SetUp() override {
    InboxFixture::SetUp();
    file_ = ::testing::TempDir() + "/outbox_rules_" + std::to_string(getpid()) + ".yaml";
    std::ofstream(file_) << Rules();
    rules_ = std::make_unique<RuleBook>(file_);
    ASSERT_TRUE(rules_->Reload());
  }
  void TearDown() override { std::remove(file_.c_str()); }

  Processor MakeProcessor() {
    return Processor(
        [this] { return NewStore(); },
        ProcessorOptions{1, 100, std::chrono::milliseconds(100), 3, "0000123456-00001"}, nullptr,
        rules_.get());
  }

  std::vector<storage::OutboxAction> Claim(
      const std::string& owner, std::chrono::milliseconds lease = std::chrono::minutes(5)) {
    auto store = NewStore();
    auto batch = store->Begin();
    auto rows = batch->ClaimActions(100, lease, owner);
    batch->Commit();
    return rows;
  }

  bool Finish(const storage::ActionResult& r) {
    auto store = NewStore();
    auto batch = store->Begin();
    bool ok = batch->FinishAction(r);
    batch->Commit();
    return ok;
  }

  static storage::ActionResult Result(std::int64_t id, const std::string& owner,
                                      const std::string& state) {
    storage::ActionResult r;
    r.id = id;
    r.owner = owner;
    r.state = state;
    return r;
  }

  long long Count(const std::string& where) {
    return db_.Scalar("SELECT count(*) FROM tscb.actions WHERE " + where);
  }

  std::string file_;
  std::unique_ptr<RuleBook> rules_;
};

TEST_F(OutboxPgTest, ActionsArePlannedOnceWhateverIsResentOrReplayed) {
  auto p = MakeProcessor();
  Store("CarrierService", Activation("r1", "89148000000800139701"), "k1");
  Store("CarrierService", Activation("r1", "89148000000800139701"),
        "k1");  // a resend: deduplicated
  EXPECT_EQ(Drain(p).actions, 2u);
  EXPECT_EQ(Count("true"), 2);
  EXPECT_EQ(Count("action = 'sms.send' AND NOT safe AND state = 'queued' AND correlate = 'sms'"),
            1);
  EXPECT_EQ(Count("action = 'devices.custom_fields' AND safe AND method = 'PUT'"), 1);
  EXPECT_EQ(
      db_.Column("SELECT body->>'accountName' FROM tscb.actions WHERE action = 'sms.send'")[0],
      "0000123456-00001");

  // Replaying the row plans nothing new.
  auto store = NewStore();
  auto ids = db_.Column("SELECT id FROM tscb.inbox");
  auto r = p.ProcessIds(*store, {std::stoll(ids[0])});
  EXPECT_EQ(r.replayed, 1u);
  EXPECT_EQ(Count("true"), 2);

  // Another activation of the same device: the SMS is once per device, the
  // custom fields once per event.
  Store("CarrierService", Activation("r2", "89148000000800139701"), "k2");
  EXPECT_EQ(Drain(p).actions, 1u);
  EXPECT_EQ(Count("action = 'sms.send'"), 1);
  EXPECT_EQ(Count("action = 'devices.custom_fields'"), 2);
}

// Inbox rows that share one arrival time (a drained spool, a bulk load) each
// get their own event, and the actions each plans name that event.
TEST_F(OutboxPgTest, RowsThatShareAnArrivalTimeEachCauseActionsOfTheirOwnEvent) {
  for (int i = 0; i < 6; ++i)
    Store("CarrierService",
          Activation("same-" + std::to_string(i), "8914800000080013970" + std::to_string(i)),
          "same-" + std::to_string(i));
  db_.Exec("UPDATE tscb.inbox SET received_at = '2026-11-28T10:00:00Z'");
  db_.Exec("UPDATE tscb.inbox_keys SET received_at = '2026-11-28T10:00:00Z'");
  auto p = MakeProcessor();
  EXPECT_EQ(Drain(p).actions, 12u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events e JOIN tscb.inbox i ON i.id = e.inbox_id "
                       "WHERE e.request_id = i.body->>'requestId'"),
            6);
  // Each event caused its two actions, both for its own device.
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.actions a JOIN tscb.events e "
                       "ON e.id = a.cause_event_id WHERE strpos(a.body::text, e.device_id) > 0"),
            12);
  EXPECT_EQ(db_.Scalar("SELECT count(DISTINCT cause_event_id) FROM tscb.actions"), 6);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.actions a JOIN tscb.events e "
                       "ON e.id = a.cause_event_id WHERE a.action = 'sms.send' "
                       "AND a.body->>'smsMessage' = 'welcome ' || e.device_id"),
            6);
}

TEST_F(OutboxPgTest, AnActionThatCannotBeRenderedIsRecordedAsFailed) {
  auto p = MakeProcessor();
  Store(
      "AlertService",
      R"({"accountName":"0000123456-00001","deviceIds":[{"id":"1","kind":"iccid"}],"triggerName":"t"})",
      "a1");
  Drain(p);
  auto error =
      db_.Column("SELECT state || ': ' || last_error FROM tscb.actions WHERE rule = 'broken'");
  ASSERT_EQ(error.size(), 1u);
  EXPECT_EQ(error[0], "failed: no value for {{ payload.nothing }}");
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM report.failed_actions WHERE rule = 'broken'"), 1);
}

TEST_F(OutboxPgTest, ClaimsLeasesAndRecovery) {
  auto p = MakeProcessor();
  Store("CarrierService", Activation("r1", "89148000000800139701"), "k1");
  Drain(p);
  auto mine = Claim("a:1", std::chrono::milliseconds(0));  // a lease that is over at once
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].state, "in_flight");
  EXPECT_EQ(mine[0].attempts, 1);
  EXPECT_TRUE(Claim("b:2").empty());  // in flight: nobody else takes them

  // Another owner cannot record a result for a row it does not hold.
  auto wrong = Result(mine[0].id, "b:2", "succeeded");
  EXPECT_FALSE(Finish(wrong));

  // The daemon "died": the safe action is queued again, the unsafe one waits for a person.
  auto store = NewStore();
  auto batch = store->Begin();
  auto recovered = batch->RecoverLeases();
  batch->Commit();
  ASSERT_EQ(recovered.size(), 2u);
  EXPECT_EQ(Count("action = 'devices.custom_fields' AND state = 'queued'"), 1);
  EXPECT_EQ(Count("action = 'sms.send' AND state = 'needs_review'"), 1);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM report.failed_actions WHERE state = 'needs_review'"),
            1);

  // The original holder's late answer is refused: the row is no longer its.
  auto late = Result(mine[0].id, "a:1", "succeeded");
  EXPECT_FALSE(Finish(late));

  auto again = Claim("b:2");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].action, "devices.custom_fields");
  EXPECT_EQ(again[0].attempts, 2);
  auto retry = Result(again[0].id, "b:2", "queued");
  retry.error = "HTTP 503";
  retry.retry_in_seconds = 3600;
  EXPECT_TRUE(Finish(retry));
  EXPECT_TRUE(Claim("b:2").empty());  // not due for an hour
}

TEST_F(OutboxPgTest, PausedRulesAndActionsWait) {
  auto p = MakeProcessor();
  auto store = NewStore();
  {
    auto batch = store->Begin();
    batch->SetPaused("rule", "welcome", true);
    batch->Commit();
  }
  Store("CarrierService", Activation("r1", "89148000000800139701"), "k1");
  Drain(p);
  EXPECT_EQ(Count("state = 'queued'"), 2);  // planned all the same
  EXPECT_TRUE(Claim("a:1").empty());
  {
    auto batch = store->Begin();
    batch->SetPaused("rule", "welcome", false);
    batch->SetPaused("action", "sms.send", true);
    EXPECT_EQ(batch->Paused().size(), 1u);
    batch->Commit();
  }
  auto claimed = Claim("a:1");
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].action, "devices.custom_fields");
}

TEST_F(OutboxPgTest, OperatorRetryAndCancel) {
  auto p = MakeProcessor();
  Store("CarrierService", Activation("r1", "89148000000800139701"), "k1");
  Drain(p);
  auto claimed = Claim("a:1");
  ASSERT_EQ(claimed.size(), 2u);
  for (const auto& a : claimed) {
    auto r = Result(a.id, "a:1", a.safe ? "dead" : "failed");
    r.error = "HTTP 400";
    ASSERT_TRUE(Finish(r));
  }
  auto store = NewStore();
  auto batch = store->Begin();
  const auto dead = claimed[0].safe ? claimed[0].id : claimed[1].id;
  const auto failed = claimed[0].safe ? claimed[1].id : claimed[0].id;
  EXPECT_TRUE(batch->RetryAction(dead));
  EXPECT_FALSE(batch->RetryAction(dead));  // already queued
  EXPECT_TRUE(batch->CancelAction(failed));
  EXPECT_FALSE(batch->CancelAction(failed));
  batch->Commit();
  EXPECT_EQ(Count("state = 'queued' AND max_attempts >= 2"), 1);
  EXPECT_EQ(Count("state = 'cancelled'"), 1);
  EXPECT_EQ(Claim("a:1").size(), 1u);
  auto counts = store->Begin()->ActionCounts();
  EXPECT_EQ(counts["in_flight"], 1);
  EXPECT_EQ(counts["cancelled"], 1);
}

// An SMS action's requestId becomes a pending request with the action as
// its origin; the delivery callback is matched to it and fires the next
// rule, one step further down the same chain.
TEST_F(OutboxPgTest, ChainsRunThroughPendingRequests) {
  auto p = MakeProcessor();
  Store("CarrierService", Activation("r1", "89148000000800139701"), "k1");
  Drain(p);
  auto claimed = Claim("a:1");
  const storage::OutboxAction* sms = nullptr;
  for (const auto& a : claimed)
    if (a.action == "sms.send") sms = &a;
  ASSERT_NE(sms, nullptr);
  {
    auto store = NewStore();
    auto batch = store->Begin();
    auto r = Result(sms->id, "a:1", "succeeded");
    r.http_status = 200;
    r.request_id = "sms-req-1";
    r.response = R"({"requestId":"sms-req-1"})";
    ASSERT_TRUE(batch->FinishAction(r));
    storage::PendingRequestRecord req;
    req.request_id = "sms-req-1";
    req.account = "0000123456-00001";
    req.action = "sms";
    req.devices_json = R"([[{"id":"89148000000800139701","kind":"iccid"}]])";
    req.origin = "action:" + std::to_string(sms->id);
    req.deadline_at = "2099-01-01T00:00:00Z";
    EXPECT_FALSE(Processor::RegisterInBatch(*batch, req).empty());
    batch->Commit();
  }
  Store(
      "SMSDeliveryConfirmation",
      R"({"requestId":"sms-req-1","deviceIds":[{"id":"89148000000800139701","kind":"iccid"}],"smsDeliveryResponse":{"status":"Delivered"},"status":"Success"})",
      "d1");
  auto r = Drain(p);
  EXPECT_EQ(r.actions, 1u);
  auto hook = db_.Column(
      "SELECT depth || ' ' || (chain_id = (SELECT min(cause_event_id) FROM tscb.actions)) || ' ' "
      "|| "
      "(body->>'origin') FROM tscb.actions WHERE action = 'http.post'");
  ASSERT_EQ(hook.size(), 1u);
  EXPECT_EQ(hook[0], "2 true action:" + std::to_string(sms->id));
  EXPECT_EQ(db_.Column("SELECT state FROM tscb.pending_requests WHERE request_id = 'sms-req-1'")[0],
            "succeeded");

  // report.action_chains: the whole chain, first callback to last action.
  auto chain = db_.Column(
      "SELECT depth || ':' || action || ':' || coalesce(request_state, '-') FROM "
      "report.action_chains ORDER BY chain_id, depth, action_id");
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0], "1:sms.send:succeeded");
  EXPECT_EQ(chain[1], "1:devices.custom_fields:-");
  EXPECT_EQ(chain[2], "2:http.post:-");
  auto t = storage::pg::ReadReport(db_.ConnectionString(), storage::pg::ReportViews().at(4), "", "",
                                   100);
  EXPECT_EQ(storage::pg::ReportViews().at(4).name, std::string("action_chains"));
  EXPECT_EQ(t.rows.size(), 3u);
}

// ThingSpace may answer with callbacks before the dispatcher has recorded
// the requestId: the action those callbacks cause is linked to the chain
// when the requestId is recorded.
TEST_F(OutboxPgTest, ACallbackThatOvertakesItsActionsAnswerJoinsTheChainLater) {
  auto p = MakeProcessor();
  Store("CarrierService", Activation("r1", "89148000000800139701"), "k1");
  Drain(p);
  std::int64_t sms = 0;
  for (const auto& a : Claim("a:1"))
    if (a.action == "sms.send") sms = a.id;
  ASSERT_NE(sms, 0);
  Store(
      "SMSDeliveryConfirmation",
      R"({"requestId":"sms-req-2","deviceIds":[{"id":"89148000000800139701","kind":"iccid"}],"smsDeliveryResponse":{"status":"Delivered"},"status":"Success"})",
      "d2");
  Drain(p);
  EXPECT_EQ(Count("action = 'http.post' AND depth = 1 AND chain_id = cause_event_id"), 1);
  auto r = Result(sms, "a:1", "succeeded");
  r.request_id = "sms-req-2";
  ASSERT_TRUE(Finish(r));
  EXPECT_EQ(Count("action = 'http.post' AND depth = 2 AND chain_id = (SELECT chain_id FROM "
                  "tscb.actions WHERE action = 'sms.send')"),
            1);
}

}  // namespace
}  // namespace tscb::daemon
