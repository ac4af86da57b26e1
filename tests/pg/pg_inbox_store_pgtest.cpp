#include "storage/pg/pg_inbox_store.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <pqxx/pqxx>
#include <thread>

#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"
#include "tests/support/test_database.hpp"

namespace tscb::storage::pg {
namespace {

using testing::TestDatabase;

InboxRecord Record(const std::string& key, int attempt = 1) {
  InboxRecord r;
  r.service = "CarrierService";
  r.source_ip = "3.87.163.45";
  r.dedup_key = key;
  r.body_json = R"({"requestId":"req-)" + key + R"(","status":"Success"})";
  r.attempt = attempt;
  r.request_id = "req-" + key;
  r.device_id = "89148000000800139708";
  r.device_kind = "iccid";
  return r;
}

class PgInboxStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = Connect(db_.ConnectionString());
    Migrate(*conn);
  }
  TestDatabase db_;
};

TEST_F(PgInboxStoreTest, BatchIsStoredWithEveryColumn) {
  PgInboxStore store(db_.ConnectionString());
  std::vector<InboxRecord> batch = {Record("a"), Record("b", 2), Record("c")};
  auto out = store.InsertBatch(batch, Announce::kNow);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& o : out) {
    EXPECT_EQ(o.status, InsertStatus::kStored);
    EXPECT_GT(o.inbox_id, 0);
  }
  EXPECT_NE(out[0].inbox_id, out[1].inbox_id);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 3);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE service = 'CarrierService' AND "
                       "source_ip = '3.87.163.45' AND device_kind = 'iccid' AND state = 'pending' "
                       "AND body->>'status' = 'Success'"),
            3);
  EXPECT_EQ(db_.Scalar("SELECT attempt FROM tscb.inbox WHERE request_id = 'req-b'"), 2);
  // Rows land in this month's partition, not the default one.
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox_default"), 0);
}

TEST_F(PgInboxStoreTest, ResendIsADuplicateOfTheStoredRowAndCountsTheDelivery) {
  PgInboxStore store(db_.ConnectionString());
  std::vector<InboxRecord> first = {Record("a", 1)};
  auto stored = store.InsertBatch(first, Announce::kNow);
  std::vector<InboxRecord> resend = {Record("a", 3)};
  auto dup = store.InsertBatch(resend, Announce::kNow);
  ASSERT_EQ(dup[0].status, InsertStatus::kDuplicate);
  EXPECT_EQ(dup[0].inbox_id, stored[0].inbox_id);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 1);
  EXPECT_EQ(db_.Scalar("SELECT deliveries FROM tscb.inbox"), 2);
  EXPECT_EQ(db_.Scalar("SELECT attempt FROM tscb.inbox"), 3);
}

TEST_F(PgInboxStoreTest, SameKeyTwiceInOneBatchStoresOneRow) {
  PgInboxStore store(db_.ConnectionString());
  std::vector<InboxRecord> batch = {Record("a", 1), Record("b"), Record("a", 2)};
  auto out = store.InsertBatch(batch, Announce::kNow);
  EXPECT_EQ(out[0].status, InsertStatus::kStored);
  EXPECT_EQ(out[2].status, InsertStatus::kDuplicate);
  EXPECT_EQ(out[2].inbox_id, out[0].inbox_id);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 2);
  EXPECT_EQ(db_.Scalar("SELECT deliveries FROM tscb.inbox WHERE request_id = 'req-a'"), 2);
}

TEST_F(PgInboxStoreTest, DedupHoldsAcrossPartitions) {
  PgInboxStore store(db_.ConnectionString());
  std::vector<InboxRecord> first = {Record("a")};
  store.InsertBatch(first, Announce::kNow);
  // Pretend the first delivery was stored two months ago, in another partition.
  db_.Exec("UPDATE tscb.inbox SET received_at = received_at - interval '40 days'");
  db_.Exec("UPDATE tscb.inbox_keys SET received_at = received_at - interval '40 days'");
  ASSERT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE tableoid::regclass::text = "
                       "'tscb.inbox_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')"),
            0);
  auto out = store.InsertBatch(first, Announce::kNow);
  EXPECT_EQ(out[0].status, InsertStatus::kDuplicate);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 1);
  EXPECT_EQ(db_.Scalar("SELECT deliveries FROM tscb.inbox"), 2);
}

TEST_F(PgInboxStoreTest, UnreachableDatabaseThrowsConnectionLost) {
  PgInboxStore store("host=127.0.0.1 port=1 user=nobody dbname=none connect_timeout=2");
  std::vector<InboxRecord> batch = {Record("a")};
  try {
    store.InsertBatch(batch, Announce::kNow);
    FAIL() << "expected StorageError";
  } catch (const StorageError& e) {
    EXPECT_TRUE(e.ConnectionLost());
  }
}

TEST_F(PgInboxStoreTest, ReconnectsAfterItsConnectionIsKilled) {
  PgInboxStore store(db_.ConnectionString());
  std::vector<InboxRecord> a = {Record("a")};
  store.InsertBatch(a, Announce::kNow);
  db_.ExecAdmin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                db_.Name() + "' AND pid <> pg_backend_pid()");
  std::vector<InboxRecord> b = {Record("b")};
  EXPECT_THROW(store.InsertBatch(b, Announce::kNow),
               StorageError);                       // the broken connection is noticed...
  auto out = store.InsertBatch(b, Announce::kNow);  // ...and replaced
  EXPECT_EQ(out[0].status, InsertStatus::kStored);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 2);
}

// What the processors sleep on: LISTEN tscb_inbox on their own connection.
class InboxListener final : public pqxx::notification_receiver {
 public:
  explicit InboxListener(pqxx::connection& conn)
      : pqxx::notification_receiver(conn, "tscb_inbox") {}
  void operator()(const std::string&, int) override { ++received; }
  int received = 0;
};

// Waits up to `ms` for notifications; returns how many came in all so far.
int Received(pqxx::connection& conn, InboxListener& listener, int ms) {
  conn.get_notifs();
  if (listener.received == 0) conn.await_notification(0, ms * 1000);
  return listener.received;
}

TEST_F(PgInboxStoreTest, OnlyABatchWithAnnounceNowOrAnAnnouncementWakesTheProcessors) {
  auto conn = Connect(db_.ConnectionString());
  InboxListener listener(*conn);
  PgInboxStore store(db_.ConnectionString());
  std::vector<InboxRecord> quiet = {Record("a"), Record("b")};
  ASSERT_EQ(store.InsertBatch(quiet, Announce::kLater)[0].status, InsertStatus::kStored);
  EXPECT_EQ(Received(*conn, listener, 300), 0);

  // Resends only: nothing new, so no notification even when asked.
  std::vector<InboxRecord> resend = {Record("a", 2)};
  ASSERT_EQ(store.InsertBatch(resend, Announce::kNow)[0].status, InsertStatus::kDuplicate);
  EXPECT_EQ(Received(*conn, listener, 300), 0);

  std::vector<InboxRecord> loud = {Record("c"), Record("d"), Record("e")};
  store.InsertBatch(loud, Announce::kNow);
  EXPECT_EQ(Received(*conn, listener, 5000), 1);  // one for the batch, not one per row

  store.AnnounceStored();
  listener.received = 0;
  EXPECT_EQ(Received(*conn, listener, 5000), 1);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 5);
}

// Two transactions that wait for each other's advisory lock: the server
// breaks the cycle by rolling one of them back, which Translate must report
// as rolled back (run it again) and not as a lost connection.
TEST_F(PgInboxStoreTest, ADeadlockIsReportedAsRolledBackNotAsALostConnection) {
  auto one = Connect(db_.ConnectionString());
  auto two = Connect(db_.ConnectionString());
  pqxx::work tx1(*one);
  pqxx::work tx2(*two);
  tx1.exec("SELECT pg_advisory_xact_lock(4243, 1)");
  tx2.exec("SELECT pg_advisory_xact_lock(4243, 2)");
  std::optional<StorageError> error1;
  std::thread first([&] {
    try {
      Translate("first", [&] { tx1.exec("SELECT pg_advisory_xact_lock(4243, 2)"); });
    } catch (const StorageError& e) {
      error1 = e;
    }
  });
  std::optional<StorageError> error2;
  try {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the first one waits by now
    Translate("second", [&] { tx2.exec("SELECT pg_advisory_xact_lock(4243, 1)"); });
  } catch (const StorageError& e) {
    error2 = e;
  }
  // The survivor holds both locks until its transaction ends.
  if (!error2) tx2.abort();
  first.join();
  if (!error1) tx1.abort();
  ASSERT_NE(error1.has_value(), error2.has_value()) << "exactly one is rolled back";
  const StorageError& e = error1 ? *error1 : *error2;
  EXPECT_TRUE(e.RolledBack()) << e.what();
  EXPECT_FALSE(e.ConnectionLost());
  EXPECT_FALSE(e.OutcomeUnknown());
  EXPECT_NE(std::string(e.what()).find("deadlock"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace tscb::storage::pg
