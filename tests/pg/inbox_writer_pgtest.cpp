#include "daemon/inbox_writer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/thread_pool.hpp>
#include <set>

#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"
#include "storage/pg/pg_inbox_store.hpp"
#include "tests/support/test_database.hpp"

namespace tscb::daemon {
namespace {

using testing::TestDatabase;

storage::InboxRecord Record(int i) {
  storage::InboxRecord r;
  r.service = "NiddService";
  r.source_ip = "127.0.0.1";
  r.dedup_key = "k" + std::to_string(i);
  r.request_id = "r" + std::to_string(i);
  r.body_json = "{\"n\":" + std::to_string(i) + "}";
  return r;
}

class InboxWriterPgTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = storage::pg::Connect(db_.ConnectionString());
    storage::pg::Migrate(*conn);
  }

  std::unique_ptr<InboxWriter> MakeWriter(std::size_t batch_max, std::chrono::milliseconds linger,
                                          int writers = 1) {
    config::InboxConfig cfg{batch_max, linger, writers};
    std::string conn = db_.ConnectionString();
    return std::make_unique<InboxWriter>(
        [conn] { return std::make_unique<storage::pg::PgInboxStore>(conn); }, cfg, nullptr);
  }

  // Submits n records from n coroutines at once, on a 4-thread pool, and
  // returns every result.
  std::vector<WriteResult> SubmitConcurrently(InboxWriter& writer, int first, int n) {
    asio::thread_pool pool(4);
    std::mutex mu;
    std::vector<WriteResult> results;
    for (int i = first; i < first + n; ++i) {
      asio::co_spawn(
          asio::make_strand(pool),
          [&, i]() -> asio::awaitable<void> {
            WriteResult r = co_await writer.AsyncWrite(Record(i), asio::use_awaitable);
            std::lock_guard lock(mu);
            results.push_back(r);
          },
          asio::detached);
    }
    pool.join();  // returns once every coroutine has been resumed and finished
    return results;
  }

  TestDatabase db_;
};

TEST_F(InboxWriterPgTest, ManyConcurrentCallbacksShareFewCommitsAndAllAreAnswered) {
  auto writer = MakeWriter(1000, std::chrono::milliseconds(100));
  writer->Start();
  auto results = SubmitConcurrently(*writer, 0, 300);
  writer->Stop();
  ASSERT_EQ(results.size(), 300u);
  std::set<std::int64_t> ids;
  for (const auto& r : results) {
    EXPECT_EQ(r.status, WriteStatus::kStored);
    ids.insert(r.inbox_id);
  }
  EXPECT_EQ(ids.size(), 300u);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 300);
  auto stats = writer->GetStats();
  EXPECT_EQ(stats.records, 300u);
  EXPECT_LE(stats.batches, 3u) << "group commit did not group";
}

TEST_F(InboxWriterPgTest, SeveralWritersStoreEveryRecordOnce) {
  auto writer = MakeWriter(16, std::chrono::milliseconds(1), 3);
  writer->Start();
  auto results = SubmitConcurrently(*writer, 0, 500);
  auto again = SubmitConcurrently(*writer, 0, 100);  // resends
  writer->Stop();
  EXPECT_EQ(results.size(), 500u);
  for (const auto& r : again) EXPECT_EQ(r.status, WriteStatus::kDuplicate);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 500);
  EXPECT_EQ(db_.Scalar("SELECT sum(deliveries) FROM tscb.inbox"), 600);
}

TEST_F(InboxWriterPgTest, DatabaseUnavailableAnswersFailureAndNothingFalselySucceeds) {
  auto writer = MakeWriter(50, std::chrono::milliseconds(5));
  writer->Start();
  auto before = SubmitConcurrently(*writer, 0, 20);
  for (const auto& r : before) ASSERT_EQ(r.status, WriteStatus::kStored);

  // Take the database away: refuse new connections, kill the writer's.
  db_.ExecAdmin("ALTER DATABASE " + db_.Name() + " ALLOW_CONNECTIONS false");
  db_.ExecAdmin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                db_.Name() + "'");
  auto during = SubmitConcurrently(*writer, 1000, 40);
  ASSERT_EQ(during.size(), 40u);
  for (const auto& r : during) EXPECT_EQ(r.status, WriteStatus::kFailed);
  EXPECT_FALSE(writer->Healthy());

  db_.ExecAdmin("ALTER DATABASE " + db_.Name() + " ALLOW_CONNECTIONS true");
  auto after = SubmitConcurrently(*writer, 2000, 20);
  writer->Stop();
  for (const auto& r : after) EXPECT_EQ(r.status, WriteStatus::kStored);
  // Exactly the acknowledged records are stored: none of the failed ones.
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox"), 40);
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE request_id ~ '^r1[0-9]{3}$'"), 0);
}

}  // namespace
}  // namespace tscb::daemon
