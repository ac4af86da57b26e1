// The stats sampler against a real database: its counts by state reach the
// metrics, and once counting takes long against its interval it counts less
// often and says so once; the inbox backlog it reads.
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "daemon/stats_sampler.hpp"
#include "tests/pg/inbox_fixture.hpp"
#include "tests/support/metric_sample.hpp"

namespace tscb::daemon {
namespace {

class StatsSamplerPgTest : public InboxFixture {};

TEST_F(StatsSamplerPgTest, CountsByStateReachTheMetricsAndAreSpacedOnceTheyTakeLong) {
  constexpr int kActions = 20'000;
  db_.Exec(
      "INSERT INTO tscb.actions (idempotency_key, rule, action, method, target, safe, "
      "max_attempts, state) SELECT 'k' || g, 'r', 'devices.list', 'POST', '/x', true, 1, "
      "'succeeded' FROM generate_series(1, " +
      std::to_string(kActions) + ") g");
  db_.Exec(
      "INSERT INTO tscb.actions (idempotency_key, rule, action, method, target, safe, "
      "max_attempts) VALUES ('queued-1', 'r', 'devices.list', 'POST', '/x', true, 1)");
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));

  Metrics metrics({"CarrierService"});
  // Counting 20,000 rows takes far longer than a twentieth of 2 ms.
  StatsSampler sampler(
      [&] { return std::make_unique<storage::pg::PgProcessingStore>(db_.ConnectionString()); },
      std::chrono::milliseconds(2), metrics);
  sampler.Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (log.str().find("counted less often") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  sampler.Stop();
  spdlog::set_default_logger(previous);

  const std::string said = log.str();
  EXPECT_NE(said.find("counting requests and actions by state took"), std::string::npos) << said;
  const auto first = said.find("counted less often");
  EXPECT_EQ(said.find("counted less often", first + 1), std::string::npos) << "said once";
  const std::string scrape = metrics.Serialize();
  EXPECT_EQ(testing::MetricSample(scrape, "tscb_actions_by_state{state=\"succeeded\"}"), kActions);
  EXPECT_EQ(testing::MetricSample(scrape, "tscb_actions_by_state{state=\"queued\"}"), 1);
  EXPECT_GT(testing::MetricSample(scrape, "tscb_stats_by_state_sampled_timestamp_seconds"), 0);
  EXPECT_GT(testing::MetricSample(scrape, "tscb_stats_sampled_timestamp_seconds"), 0);
}

// Rows straight into the inbox, in id order: `pending` of them.
std::string InsertPending(int pending) {
  return "INSERT INTO tscb.inbox (id, received_at, service, dedup_key, body) "
         "SELECT nextval('tscb.inbox_id_seq'), now(), 'CarrierService', 'k' || g, '{}' "
         "FROM generate_series(1, " +
         std::to_string(pending) + ") g";
}

// Marks the pending rows from the `first`-th to the `last`-th (1-based, id
// order) processed.
std::string ProcessInOrder(int first, int last) {
  return "UPDATE tscb.inbox SET state = 'processed', processed_at = now() WHERE id IN "
         "(SELECT id FROM tscb.inbox WHERE state = 'pending' ORDER BY id OFFSET " +
         std::to_string(first - 1) + " LIMIT " + std::to_string(last - first + 1) + ")";
}

std::int64_t Backlog(const std::string& connection_string) {
  storage::pg::PgProcessingStore store(connection_string);
  return store.Begin()->Stats(false).inbox_pending;
}

TEST_F(StatsSamplerPgTest, TheBacklogIsExactUpToTheLimitAndFromTheIdsBeyond) {
  ASSERT_EQ(storage::kBacklogCountedExactly, 10'000);
  db_.Exec(InsertPending(3));
  EXPECT_EQ(Backlog(db_.ConnectionString()), 3);

  db_.Exec(InsertPending(11'997));  // 12,000, past the limit
  EXPECT_EQ(Backlog(db_.ConnectionString()), 12'000);

  // Processed in id order, as processors take them: still exact.
  db_.Exec(ProcessInOrder(1, 1'500));
  EXPECT_EQ(Backlog(db_.ConnectionString()), 10'500);

  // Rows behind the first 10,000 processed out of turn: the estimate is high
  // by them.
  db_.Exec(ProcessInOrder(10'001, 10'200));
  EXPECT_EQ(Backlog(db_.ConnectionString()), 10'500);
  // Rows among the first 10,000: counted one by one again.
  db_.Exec(ProcessInOrder(1, 200));
  EXPECT_EQ(Backlog(db_.ConnectionString()), 10'100);

  db_.Exec(ProcessInOrder(1, 10'100));
  EXPECT_EQ(Backlog(db_.ConnectionString()), 0);
}

}  // namespace
}  // namespace tscb::daemon
