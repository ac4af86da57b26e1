// The stats sampler against a real database: its counts by state reach the
// metrics, and once counting takes long against its interval it counts less
// often and says so once.
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
  {
    auto conn = storage::pg::Connect(db_.ConnectionString());
    pqxx::work tx(*conn);
    tx.exec(
        "INSERT INTO tscb.actions (idempotency_key, rule, action, method, target, safe, "
        "max_attempts, state) SELECT 'k' || g, 'r', 'devices.list', 'POST', '/x', true, 1, "
        "'succeeded' FROM generate_series(1, " +
        std::to_string(kActions) + ") g");
    tx.exec(
        "INSERT INTO tscb.actions (idempotency_key, rule, action, method, target, safe, "
        "max_attempts) VALUES ('queued-1', 'r', 'devices.list', 'POST', '/x', true, 1)");
    tx.commit();
  }
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

}  // namespace
}  // namespace tscb::daemon
