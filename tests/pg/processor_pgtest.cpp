// The processor against a real PostgreSQL: events and device identifiers,
// two processors on one inbox, a failing row, replay, correlation with
// pending requests (including requests registered after their callbacks).
#include "daemon/processor.hpp"

#include <gtest/gtest.h>

#include <malloc.h>

#include <atomic>
#include <set>
#include <thread>

#include "daemon/metrics.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"
#include "storage/pg/pg_inbox_store.hpp"
#include "storage/pg/pg_processing_store.hpp"
#include "storage/pg/reports.hpp"
#include "tests/pg/inbox_fixture.hpp"

namespace tscb::daemon {
namespace {

using storage::InboxRecord;
using storage::pg::PgInboxStore;
using storage::pg::PgProcessingStore;
using testing::TestDatabase;

std::string CarrierBody(const std::string& request_id, const std::string& iccid,
                        const std::string& status = "Success") {
  if (status == "Failed")
    return R"({"requestId":")" + request_id + R"(","deviceIds":[{"id":")" + iccid +
           R"(","kind":"ICCID"}],"faultResponse":{"faultcode":"CarrierService.REQUEST_FAILED.DeviceNotFound","faultstring":"x"},"status":"Failed"})";
  return R"({"requestId":")" + request_id + R"(","deviceIds":[{"id":")" + iccid +
         R"(","kind":"ICCID"},{"id":"99001390783557)" + iccid.substr(iccid.size() - 1) +
         R"(","kind":"imei"}],"deviceResponse":{"activateResponse":{"deviceIds":[{"id":"555555)" +
         iccid.substr(iccid.size() - 4) + R"(","kind":"mdn"}]}},"status":")" + status + R"("})";
}

class ProcessorPgTest : public InboxFixture {
 protected:
  Processor MakeProcessor(Processor::ClassifyFn classify = handlers::Classify) {
    return Processor([this] { return std::make_unique<PgProcessingStore>(db_.ConnectionString()); },
                     ProcessorOptions{1, 100, std::chrono::milliseconds(100), 5, ""}, nullptr,
                     nullptr, std::move(classify));
  }

  bool Register(Processor& p, const std::string& id, const std::string& action,
                const std::string& devices, bool nbiot = false) {
    PgProcessingStore store(db_.ConnectionString());
    storage::PendingRequestRecord r;
    r.request_id = id;
    r.account = "0000123456-00001";
    r.action = action;
    r.nbiot = nbiot;
    r.devices_json = devices;
    r.origin = "test";
    r.deadline_at = "2099-01-01T00:00:00Z";
    return p.RegisterRequest(store, r);
  }

  // Activation callback i: requestId r<i>, an ICCID of its own, key k<i>.
  void StoreActivation(int i) {
    Store("CarrierService",
          CarrierBody("r" + std::to_string(i), "8914800000080013970" + std::to_string(i)),
          "k" + std::to_string(i));
  }

  // A processor with its own worker threads.
  std::unique_ptr<Processor> Worker(ProcessorOptions options) {
    return std::make_unique<Processor>(
        [this] { return std::make_unique<PgProcessingStore>(db_.ConnectionString()); }, options,
        nullptr);
  }

  // Until there are `n` events, for 10 s at most.
  void WaitForEvents(long long n) {
    auto start = std::chrono::steady_clock::now();
    while (db_.Scalar("SELECT count(*) FROM tscb.events") < n &&
           std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::string RequestState(const std::string& id) {
    auto v = db_.Column("SELECT state FROM tscb.pending_requests WHERE request_id = '" + id + "'");
    return v.empty() ? "" : v[0];
  }
};

TEST_F(ProcessorPgTest, EveryRowBecomesOneEventWithAllItsDeviceIdentifiers) {
  Store("CarrierService", CarrierBody("r1", "89148000000800139701"), "k1");
  Store(
      "NiddService",
      R"({"requestId":"r2","niddResponse":{"niddMONotificationResponse":{"accountName":"0000123456-00001","message":"QUJD","deviceIds":[{"id":"490154203237518","kind":"IMEI"},{"id":"5555550100","kind":"MDN"}]}}})",
      "k2");
  Store("CarrierService", R"({"unexpected": true})", "k3");
  auto p = MakeProcessor();
  auto r = Drain(p);
  EXPECT_EQ(r.rows, 3u);
  EXPECT_EQ(r.events, 3u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = 'processed'"), 3);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 3);
  EXPECT_EQ(db_.Column("SELECT kind FROM tscb.events ORDER BY inbox_id"),
            (std::vector<std::string>{"provisioning.activate", "nidd.mo", "provisioning.result"}));
  // The activation names its device by iccid, imei and the new mdn; one
  // lookup by any of them finds the event.
  for (const char* q :
       {"kind = 'iccid' AND id = '89148000000800139701'",
        "kind = 'imei' AND id = '990013907835571'", "kind = 'mdn' AND id = '5555559701'"})
    EXPECT_EQ(
        db_.Scalar(std::string("SELECT count(DISTINCT event_id) FROM tscb.event_devices WHERE ") +
                   q),
        1)
        << q;
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE kind = 'nidd.mo' AND account = "
                       "'0000123456-00001' AND device_kind = 'imei'"),
            1);
  // No request is pending for them: unmatched, kept.
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'unmatched'"), 2);
}

TEST_F(ProcessorPgTest, TwoProcessorsOnOneInboxNeverTakeTheSameRow) {
  PgInboxStore inbox(db_.ConnectionString());
  std::vector<InboxRecord> batch;
  for (int i = 0; i < 2000; ++i) {
    InboxRecord r;
    r.service = "CarrierService";
    r.source_ip = "127.0.0.1";
    r.dedup_key = "key-" + std::to_string(i);
    r.body_json =
        CarrierBody("req-" + std::to_string(i), "8914800000080" + std::to_string(1000000 + i));
    r.attempt = 1;
    batch.push_back(r);
    if (batch.size() == 500) {
      inbox.InsertBatch(batch, storage::Announce::kNow);
      batch.clear();
    }
  }
  auto a = MakeProcessor();
  auto b = MakeProcessor();
  std::atomic<std::size_t> rows_a{0}, rows_b{0};
  std::thread ta([&] { rows_a = Drain(a).rows; });
  std::thread tb([&] { rows_b = Drain(b).rows; });
  ta.join();
  tb.join();
  EXPECT_EQ(rows_a + rows_b, 2000u);
  EXPECT_GT(rows_a.load(), 0u);
  EXPECT_GT(rows_b.load(), 0u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 2000);
  EXPECT_EQ(db_.Scalar("SELECT count(DISTINCT inbox_id) FROM tscb.events"), 2000);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state <> 'processed'"), 0);
}

TEST_F(ProcessorPgTest, ARowThatThrowsIsMarkedFailedAndTheOthersGoOn) {
  for (int i = 0; i < 5; ++i) StoreActivation(i);
  auto p = MakeProcessor([](std::string_view service, const boost::json::object& body) {
    if (body.at("requestId") == "r2") throw std::runtime_error("classifier exploded on r2");
    return handlers::Classify(service, body);
  });
  auto r = Drain(p);
  EXPECT_EQ(r.failed, 1u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = 'processed'"), 4);
  EXPECT_EQ(db_.Column("SELECT error FROM tscb.inbox WHERE state = 'failed'"),
            (std::vector<std::string>{"classifier exploded on r2"}));
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 4);
}

// A batch the server rolls back to break a deadlock is nobody's error: it
// is run again at once and counted, and its row is neither retried one by
// one nor marked failed. The deadlock is a real one: another transaction
// holds the callback's request lock exclusively (as a registration does)
// and then waits for the inbox row the processor has claimed. The
// processor waits first, so its deadlock check runs first and it is the
// one rolled back.
TEST_F(ProcessorPgTest, ABatchRolledBackByADeadlockIsRunAgainNotMarkedFailed) {
  Store("CarrierService", CarrierBody("rq-deadlock", "89148000000800139701"), "k-deadlock");
  const auto row_id = db_.Scalar("SELECT id FROM tscb.inbox");
  Metrics metrics({"CarrierService"});
  Processor p([this] { return std::make_unique<PgProcessingStore>(db_.ConnectionString()); },
              ProcessorOptions{1, 100, std::chrono::milliseconds(100), 5, ""}, &metrics);

  auto other = storage::pg::Connect(db_.ConnectionString());
  pqxx::work tx(*other);
  tx.exec("SELECT pg_advisory_xact_lock(4242, hashtext('rq-deadlock'))");
  ProcessResult first;
  std::thread worker([&] {
    PgProcessingStore store(db_.ConnectionString());
    first = p.ProcessPending(store);
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (db_.Scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") ==
             0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Returns once the server has rolled the processor back.
  tx.exec("SELECT 1 FROM tscb.inbox WHERE id = " + std::to_string(row_id) + " FOR UPDATE");
  tx.commit();
  worker.join();

  auto rest = Drain(p);
  EXPECT_EQ(first.failed + rest.failed, 0u);
  EXPECT_EQ(first.events + rest.events, 1u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = 'processed'"), 1);
  EXPECT_NE(metrics.Serialize().find(R"(tscb_db_rolled_back_total{part="tscb-proc"} 1)"),
            std::string::npos)
      << metrics.Serialize();
}

// A transaction rolled back after its events were written (here the server
// fails the batch's last statement once, with the deadlock's SQLSTATE) is
// run again; its events are counted once, for the run that committed.
TEST_F(ProcessorPgTest, ABatchRunAgainCountsItsEventsOnce) {
  auto p0 = MakeProcessor();
  ASSERT_TRUE(
      Register(p0, "rq-once", "activate", R"([[{"id":"89148000000800139701","kind":"iccid"}]])"));
  Store("CarrierService", CarrierBody("rq-once", "89148000000800139701"), "k-once");
  db_.Exec(R"sql(
CREATE SEQUENCE public.fail_once;
CREATE FUNCTION public.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('public.fail_once') = 1 THEN
    RAISE EXCEPTION 'injected by the test' USING ERRCODE = 'deadlock_detected';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER fail_once BEFORE UPDATE ON tscb.inbox
  FOR EACH ROW WHEN (NEW.state = 'processed') EXECUTE FUNCTION public.fail_once();
)sql");
  Metrics metrics({"CarrierService"});
  Processor p([this] { return std::make_unique<PgProcessingStore>(db_.ConnectionString()); },
              ProcessorOptions{1, 100, std::chrono::milliseconds(100), 5, ""}, &metrics);

  auto r = Drain(p);
  EXPECT_EQ(r.events, 1u);
  EXPECT_EQ(r.failed, 0u);
  EXPECT_EQ(r.requests_completed, 1u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 1);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = 'processed'"), 1);
  const std::string text = metrics.Serialize();
  EXPECT_NE(text.find(R"(tscb_db_rolled_back_total{part="tscb-proc"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(tscb_events_total{kind="provisioning.activate"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("tscb_processing_latency_seconds_count 1\n"), std::string::npos) << text;
}

// The device rows are inserted without ON CONFLICT (the primary key is no
// arbiter): an identifier an event names twice for one device must still be
// stored once, and the batch must not fail.
TEST_F(ProcessorPgTest, AnIdentifierNamedTwiceForOneDeviceIsStoredOnce) {
  PgProcessingStore store(db_.ConnectionString());
  storage::EventRecord e;
  e.kind = "request.timeout";
  e.status = "timed_out";
  e.device_ids_json =
      R"([[{"id":"5555559701","kind":"mdn"},{"id":"5555559701","kind":"mdn"}],[{"id":"5555559701","kind":"mdn"}]])";
  auto batch = store.Begin();
  auto ids = batch->InsertEvents({e});
  batch->Commit();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_NE(ids[0], 0);
  // Once per device: the second device names the same MDN, and is kept.
  EXPECT_EQ(db_.Column("SELECT device_no || ':' || kind || ':' || id FROM tscb.event_devices "
                       "ORDER BY 1"),
            (std::vector<std::string>{"0:mdn:5555559701", "1:mdn:5555559701"}));
}

// Marking a batch processed looks only in the partitions its arrival times
// fall in; a batch that spans months (a callback that waited in the spool
// over a month's end) is marked whole.
TEST_F(ProcessorPgTest, ABatchSpanningMonthsIsMarkedProcessedInEachPartition) {
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::int64_t day_us = 86400LL * 1000000;
  Store("CarrierService", CarrierBody("r1", "89148000000800139701"), "k1", now_us - 35 * day_us);
  Store("CarrierService", CarrierBody("r2", "89148000000800139702"), "k2");
  Store("CarrierService", CarrierBody("r3", "89148000000800139703"), "k3", now_us + 70 * day_us);
  ASSERT_EQ(db_.Scalar("SELECT count(DISTINCT tableoid) FROM tscb.inbox"), 3);
  auto p = MakeProcessor();
  auto r = Drain(p);
  EXPECT_EQ(r.rows, 3u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = 'processed'"), 3);
}

TEST_F(ProcessorPgTest, ReplayingProcessedRowsAddsNothing) {
  Store("CarrierService", CarrierBody("r1", "89148000000800139701"), "k1");
  Store(
      "SMSDeliveryConfirmation",
      R"({"requestId":"r9","deviceIds":[{"id":"1","kind":"mdn"}],"smsDeliveryResponse":{"status":"Delivered"}})",
      "k2");
  auto p = MakeProcessor();
  ASSERT_TRUE(Register(p, "r1", "activate", R"([[{"id":"89148000000800139701","kind":"iccid"}]])"));
  Drain(p);
  EXPECT_EQ(RequestState("r1"), "succeeded");
  auto ids = db_.Column("SELECT id FROM tscb.inbox ORDER BY id");
  PgProcessingStore store(db_.ConnectionString());
  auto again = p.ProcessIds(store, {std::stoll(ids[0]), std::stoll(ids[1])});
  EXPECT_EQ(again.rows, 2u);
  EXPECT_EQ(again.events, 0u);
  EXPECT_EQ(again.replayed, 2u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 2);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.event_devices"), 4);  // 3 ids + 1
  EXPECT_EQ(db_.Scalar("SELECT received_callbacks FROM tscb.pending_requests"), 1);
}

TEST_F(ProcessorPgTest, RequestsEndSucceededPartialOrFailedPerDevice) {
  auto p = MakeProcessor();
  ASSERT_TRUE(Register(
      p, "ok", "activate",
      R"([[{"id":"89148000000800139701","kind":"ICCID"}],[{"id":"89148000000800139702","kind":"iccid"}]])"));
  ASSERT_TRUE(Register(
      p, "mixed", "suspend",
      R"([[{"id":"89148000000800139703","kind":"iccid"}],[{"id":"89148000000800139704","kind":"iccid"}]])"));
  ASSERT_FALSE(Register(p, "ok", "activate", "[]"));  // known id
  Store("CarrierService", CarrierBody("ok", "89148000000800139701"), "k1");
  Store("CarrierService", CarrierBody("mixed", "89148000000800139703"), "k3");
  Store("CarrierService", CarrierBody("mixed", "89148000000800139704", "Failed"), "k4");
  Drain(p);
  EXPECT_EQ(RequestState("ok"), "pending");  // one device still to come
  EXPECT_EQ(RequestState("mixed"), "partial");
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.pending_requests WHERE request_id = 'mixed' AND "
                       "completed_at IS NOT NULL AND devices->1->>'state' = 'failed' AND "
                       "devices->1->>'error' = 'CarrierService.REQUEST_FAILED.DeviceNotFound'"),
            1);
  Store("CarrierService", CarrierBody("ok", "89148000000800139702"), "k2");
  Drain(p);
  EXPECT_EQ(RequestState("ok"), "succeeded");
  EXPECT_EQ(
      db_.Scalar("SELECT received_callbacks FROM tscb.pending_requests WHERE request_id = 'ok'"),
      2);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'matched'"), 4);
}

// requestIds come from the carrier: quotes, backslashes, commas and braces
// must reach the array parameter that finds the pending request as they are.
TEST_F(ProcessorPgTest, ARequestIdWithArraySyntaxInItStillFindsItsRequest) {
  auto p = MakeProcessor();
  const std::string id = R"(r"1\,{x} 'q')";
  const std::string id_in_json = R"(r\"1\\,{x} 'q')";
  ASSERT_TRUE(Register(p, id, "activate", R"([[{"id":"89148000000800139709","kind":"iccid"}]])"));
  ASSERT_TRUE(Register(p, "r", "activate", R"([[{"id":"89148000000800139709","kind":"iccid"}]])"));
  Store("CarrierService", CarrierBody(id_in_json, "89148000000800139709"), "k1");
  Drain(p);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.pending_requests WHERE state = 'succeeded' "
                       "AND request_id = $$" +
                       id + "$$"),
            1);
  EXPECT_EQ(RequestState("r"), "pending");
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'matched'"), 1);
}

TEST_F(ProcessorPgTest, NbIotActivationWaitsForTheNiddConfiguration) {
  auto p = MakeProcessor();
  ASSERT_TRUE(
      Register(p, "nb", "activate", R"([[{"id":"89148000000800139701","kind":"iccid"}]])", true));
  Store("CarrierService", CarrierBody("nb", "89148000000800139701"), "k1");
  Drain(p);
  EXPECT_EQ(RequestState("nb"), "pending");
  Store(
      "NiddService",
      R"({"requestId":"nb","niddResponse":{"niddConfigResponse":{"deviceIds":[{"id":"89148000000800139701","kind":"ICCID"}]}},"status":"ConfigCreated"})",
      "k2");
  Drain(p);
  EXPECT_EQ(RequestState("nb"), "succeeded");
}

TEST_F(ProcessorPgTest, ACallbackThatCameBeforeItsRequestIsMatchedWhenTheRequestArrives) {
  auto p = MakeProcessor();
  Store("CarrierService", CarrierBody("early", "89148000000800139701"), "k1");
  Drain(p);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'unmatched'"), 1);
  ASSERT_TRUE(
      Register(p, "early", "activate", R"([[{"id":"89148000000800139701","kind":"iccid"}]])"));
  EXPECT_EQ(RequestState("early"), "succeeded");
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events WHERE correlation = 'matched'"), 1);
}

TEST_F(ProcessorPgTest, TheWorkerThreadWakesOnNewInboxRows) {
  auto p = Worker(ProcessorOptions{1, 100, std::chrono::milliseconds(30'000), 5, ""});
  p->Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // asleep on LISTEN now
  auto start = std::chrono::steady_clock::now();
  StoreActivation(1);
  WaitForEvents(1);
  auto waited = std::chrono::steady_clock::now() - start;
  p->Stop();
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 1);
  // Far sooner than the 30 s poll: the NOTIFY woke it.
  EXPECT_LT(waited, std::chrono::seconds(5));
}

// An event's created_at is the start of the transaction that wrote it.
TEST_F(ProcessorPgTest, RowsArrivingWhileTheWorkerLingersShareOneTransaction) {
  ProcessorOptions options{1, 100, std::chrono::milliseconds(30'000), 5, ""};
  options.linger = std::chrono::milliseconds(1000);
  auto p = Worker(options);
  p->Start();
  StoreActivation(0);
  WaitForEvents(1);  // a batch of one: the worker lingers for a second now
  for (int i = 1; i <= 4; ++i) {
    StoreActivation(i);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  WaitForEvents(5);
  p->Stop();
  ASSERT_EQ(db_.Scalar("SELECT count(*) FROM tscb.events"), 5);
  // Without the linger each of the four is claimed on its own NOTIFY.
  EXPECT_EQ(db_.Scalar("SELECT count(DISTINCT created_at) FROM tscb.events"), 2);
}

TEST_F(ProcessorPgTest, AFullBatchIsFollowedWithoutLingering) {
  for (int i = 0; i < 4; ++i) StoreActivation(i);
  ProcessorOptions options{1, 2, std::chrono::milliseconds(30'000), 5, ""};
  options.linger = std::chrono::milliseconds(1000);
  auto p = Worker(options);
  p->Start();
  WaitForEvents(4);
  p->Stop();
  ASSERT_EQ(db_.Scalar("SELECT count(DISTINCT created_at) FROM tscb.events"), 2);
  // Two full batches of a backlog, one straight after the other (a linger
  // between them would put a second between their starts).
  EXPECT_LT(db_.Scalar("SELECT (extract(epoch FROM max(created_at) - min(created_at)) * 1000)::int "
                       "FROM tscb.events"),
            500);
}

// libpq keeps each notification a connection receives until it is read. The
// reconciler, the dispatcher and the stats sampler use their store only for
// batches; had it LISTENed, each inbox insert would have cost them memory for
// ever (about 90 bytes per callback in a soak, bench/README.md).
TEST_F(ProcessorPgTest, AStoreThatNeverWaitsHoldsNoInboxNotifications) {
  auto batch_only = NewStore();
  batch_only->Begin()->Commit();
  PgInboxStore inbox(db_.ConnectionString());
  inbox.ConnectNow();
  const std::size_t before = mallinfo2().uordblks;
  constexpr int kInserts = 3000;  // one statement, hence one NOTIFY, each
  for (int i = 0; i < kInserts; ++i) {
    InboxRecord r;
    r.service = "CarrierService";
    r.dedup_key = "n" + std::to_string(i);
    r.body_json = "{}";
    r.attempt = 1;
    inbox.InsertBatch(std::span(&r, 1), storage::Announce::kNow);
  }
  batch_only->Begin()->Commit();  // reads whatever the server sent it meanwhile
  const std::size_t after = mallinfo2().uordblks;
  // Holding them would take at least 64 bytes each (192 KiB).
  EXPECT_LT(after - std::min(after, before), 32u * 1024);

  // A store that waits still hears of new rows.
  auto waiting = NewStore();
  EXPECT_TRUE(waiting->WaitForInbox(std::chrono::milliseconds(10)));  // LISTEN: look again
  EXPECT_FALSE(waiting->WaitForInbox(std::chrono::milliseconds(10)));
  Store("CarrierService", "{}", "after-listen");
  EXPECT_TRUE(waiting->WaitForInbox(std::chrono::seconds(5)));
}

storage::pg::ReportTable View(const std::string& conn, const std::string& name,
                              const std::string& since = "") {
  for (const auto& v : storage::pg::ReportViews())
    if (name == v.name) return storage::pg::ReadReport(conn, v, since, "", 1000);
  ADD_FAILURE() << "no view " << name;
  return {};
}

std::string Cell(const storage::pg::ReportTable& t, std::size_t row, const std::string& column) {
  for (std::size_t i = 0; i < t.columns.size(); ++i)
    if (t.columns[i] == column) return t.rows.at(row).at(i).value_or("NULL");
  ADD_FAILURE() << "no column " << column;
  return {};
}

TEST_F(ProcessorPgTest, ReportViewsSayWhatTheRowsSay) {
  auto p = MakeProcessor();
  ASSERT_TRUE(
      Register(p, "act", "activate", R"([[{"id":"89148000000800139701","kind":"iccid"}]])"));
  Store("CarrierService", CarrierBody("act", "89148000000800139701"), "k1");
  Store("CarrierService", CarrierBody("act", "89148000000800139701"), "k1");  // a resend
  Store(
      "EnhancedConnectivityService",
      R"({"requestId":"mo1","deviceIds":[{"id":"5555550100","kind":"mdn"}],"smsMessage":{"message":"T=21.5","timestamp":"2026-11-20T12:29:49-08:00"}})",
      "k2");
  Store(
      "AlertService",
      R"({"requestId":"al1","deviceIds":[{"id":"5555550101","kind":"mdn"}],"triggerName":"data over 5 MB","accountName":"0000123456-00001"})",
      "k3");
  Drain(p);
  // An old request nobody answered.
  db_.Exec(
      "INSERT INTO tscb.pending_requests (request_id, account, action, devices, origin, "
      "submitted_at, deadline_at, expected_callbacks) VALUES ('late', 'A', 'suspend', '[]', "
      "'test', now() - interval '2 hours', now() - interval '1 hour', 1)");
  std::string conn = db_.ConnectionString();

  auto daily = View(conn, "callbacks_daily");
  ASSERT_EQ(daily.rows.size(), 3u);  // three services today
  EXPECT_EQ(Cell(daily, 1, "service"), "CarrierService");
  EXPECT_EQ(Cell(daily, 1, "callbacks"), "1");
  EXPECT_EQ(Cell(daily, 1, "deliveries"), "2");
  EXPECT_EQ(Cell(daily, 1, "resent"), "1");
  EXPECT_EQ(Cell(daily, 1, "processed"), "1");

  auto latency = View(conn, "provisioning_latency");
  ASSERT_EQ(latency.rows.size(), 1u);
  EXPECT_EQ(Cell(latency, 0, "request_id"), "act");
  EXPECT_EQ(Cell(latency, 0, "state"), "succeeded");
  EXPECT_EQ(Cell(latency, 0, "devices"), "1");
  EXPECT_GE(std::stod(Cell(latency, 0, "latency_seconds")), 0.0);

  auto timeline = View(conn, "device_timeline");
  std::set<std::string> mdn_kinds;
  for (std::size_t i = 0; i < timeline.rows.size(); ++i)
    if (Cell(timeline, i, "device_id") == "5555559701") mdn_kinds.insert(Cell(timeline, i, "kind"));
  EXPECT_EQ(mdn_kinds, std::set<std::string>{"provisioning.activate"});

  auto sms = View(conn, "sms");
  ASSERT_EQ(sms.rows.size(), 1u);
  EXPECT_EQ(Cell(sms, 0, "direction"), "mo");
  EXPECT_EQ(Cell(sms, 0, "message"), "T=21.5");
  EXPECT_EQ(Cell(sms, 0, "device_id"), "5555550100");

  auto alerts = View(conn, "usage_alerts");
  ASSERT_EQ(alerts.rows.size(), 1u);
  EXPECT_EQ(Cell(alerts, 0, "trigger"), "data over 5 MB");
  EXPECT_EQ(Cell(alerts, 0, "account"), "0000123456-00001");

  auto overdue = View(conn, "pending_overdue");
  ASSERT_EQ(overdue.rows.size(), 1u);
  EXPECT_EQ(Cell(overdue, 0, "request_id"), "late");
  EXPECT_GT(std::stod(Cell(overdue, 0, "overdue_seconds")), 3500.0);

  // No rules here, so no actions (tests/pg/outbox_pgtest.cpp fills these).
  auto failed = View(conn, "failed_actions");
  EXPECT_TRUE(failed.rows.empty());
  EXPECT_EQ(failed.columns.at(0), "action_id");
  EXPECT_EQ(failed.columns.at(6), "last_error");

  // --since filters on the view's time column.
  EXPECT_TRUE(View(conn, "sms", "2099-01-01T00:00:00Z").rows.empty());
}

}  // namespace
}  // namespace tscb::daemon
