#include "storage/pg/migrator.hpp"
#include "storage/pg/retention.hpp"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "storage/inbox.hpp"
#include "storage/pg/connection.hpp"
#include "tests/support/test_database.hpp"

namespace tscb::storage::pg {
namespace {

using testing::TestDatabase;

TEST(MigratorPgTest, FreshDatabaseIsMigratedToTheLatestVersion) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  EXPECT_EQ(ReadSchemaState(*conn).current, 0);
  auto report = Migrate(*conn);
  EXPECT_EQ(report.from_version, 0);
  EXPECT_EQ(report.to_version, LatestSchemaVersion());
  EXPECT_EQ(report.applied.size(), Migrations().size());
  EXPECT_EQ(ReadSchemaState(*conn).current, LatestSchemaVersion());
  // Last month, this month and three ahead, for inbox, events and event_devices.
  EXPECT_EQ(report.partitions_created, 15);
  for (const char* table : {"tscb.inbox", "tscb.events", "tscb.event_devices"})
    EXPECT_EQ(db.Scalar(std::string("SELECT count(*) FROM pg_inherits WHERE inhparent = '") +
                        table + "'::regclass"),
              6)
        << table;  // five months and the default partition
}

// Migration 0008: the write path's indexes.
TEST(MigratorPgTest, TheWritePathHasTheIndexesItUsesAndNoOther) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  Migrate(*conn);
  // Dedup keys compare byte by byte, in the column and in its key index.
  EXPECT_EQ(db.Column("SELECT collation_name FROM information_schema.columns WHERE "
                      "table_schema = 'tscb' AND table_name = 'inbox_keys' AND "
                      "column_name = 'dedup_key'"),
            std::vector<std::string>{"C"});
  // Nothing reads the inbox by requestId: no index to feed on every insert.
  EXPECT_TRUE(db.Column("SELECT indexname FROM pg_indexes WHERE schemaname = 'tscb' AND "
                        "indexdef LIKE '%inbox%(request_id)%'")
                  .empty());
  // Linking a chain (recording an action's requestId) finds the actions its
  // request caused through an index, not by reading every action.
  pqxx::work tx(*conn);
  tx.exec("SET LOCAL enable_seqscan = off");
  std::string plan;
  for (const auto& row :
       tx.exec("EXPLAIN UPDATE tscb.actions c SET depth = 2 WHERE c.cause_request_id = 'r' "
               "AND c.depth = 1 AND c.chain_id = c.cause_event_id"))
    plan += row[0].as<std::string>() + "\n";
  EXPECT_NE(plan.find("actions_cause_request_idx"), std::string::npos) << plan;
}

// Migration 0009: identifiers compare byte by byte, and the report views
// it had to drop to get there are all back and readable.
TEST(MigratorPgTest, IdentifiersCompareByteByByteAndTheReportViewsAreBack) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  Migrate(*conn);
  EXPECT_EQ(db.Column("SELECT table_name || '.' || column_name FROM information_schema.columns "
                      "WHERE table_schema = 'tscb' AND collation_name = 'C' AND table_name IN "
                      "('inbox', 'events', 'event_devices', 'pending_requests', 'actions') "
                      "ORDER BY 1"),
            (std::vector<std::string>{"actions.cause_request_id", "actions.idempotency_key",
                                      "actions.request_id", "event_devices.id",
                                      "event_devices.kind", "events.device_id", "events.kind",
                                      "events.request_id", "inbox.device_id", "inbox.request_id",
                                      "pending_requests.request_id"}));
  // So does every partition, whether made before this migration or after.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                      "'tscb' AND table_name LIKE 'event_devices_%' AND column_name = 'id' AND "
                      "collation_name IS DISTINCT FROM 'C'"),
            0);
  const auto views = db.Column(
      "SELECT table_name FROM information_schema.views WHERE table_schema = 'report' ORDER BY 1");
  EXPECT_EQ(views, (std::vector<std::string>{"action_chains", "callbacks_daily", "device_timeline",
                                             "failed_actions", "pending_overdue",
                                             "provisioning_latency", "sms", "usage_alerts"}));
  for (const auto& view : views)
    EXPECT_EQ(db.Scalar("SELECT count(*) FROM report." + view), 0) << view;
}

TEST(MigratorPgTest, SecondRunAppliesNothing) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  Migrate(*conn);
  auto again = Migrate(*conn);
  EXPECT_TRUE(again.applied.empty());
  EXPECT_EQ(again.partitions_created, 0);
}

TEST(MigratorPgTest, TwoMigratorsAtOnceApplyEachMigrationExactlyOnce) {
  TestDatabase db;
  std::vector<std::size_t> applied(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      try {
        auto conn = Connect(db.ConnectionString());
        applied[i] = Migrate(*conn).applied.size();
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  std::size_t total = 0;
  for (auto n : applied) total += n;
  EXPECT_EQ(total, Migrations().size());  // one migrator did the work, the others found it done
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM tscb.schema_migrations"),
            static_cast<long long>(Migrations().size()));
}

TEST(MigratorPgTest, SchemaNewerThanTheBinaryIsRefused) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  Migrate(*conn);
  db.Exec("INSERT INTO tscb.schema_migrations (version, name) VALUES (9999, 'from_the_future')");
  try {
    Migrate(*conn);
    FAIL() << "expected a StorageError";
  } catch (const StorageError& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this binary"), std::string::npos) << e.what();
  }
}

TEST(MigratorPgTest, EnsurePartitionsAddsMissingMonths) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  Migrate(*conn);
  EXPECT_EQ(EnsurePartitions(*conn, 6), 9);  // three more months ahead, for three tables
  EXPECT_EQ(EnsurePartitions(*conn, 6), 0);
}

}  // namespace
}  // namespace tscb::storage::pg

namespace tscb::storage::pg {
namespace {

TEST(RetentionPgTest, OldPartitionsAreDroppedOnlyWhenNotADryRun) {
  TestDatabase db;
  auto conn = Connect(db.ConnectionString());
  Migrate(*conn);
  // Two years ago: a partition per table, a row, its dedup key.
  for (const char* t : {"inbox", "events", "event_devices"})
    db.Exec(std::string("CREATE TABLE tscb.") + t + "_2024_01 PARTITION OF tscb." + t +
            " FOR VALUES FROM ('2024-01-01 00:00+00') TO ('2024-02-01 00:00+00')");
  db.Exec(
      "INSERT INTO tscb.inbox (id, received_at, service, dedup_key, body) VALUES "
      "(1, '2024-01-15 10:00+00', 'CarrierService', 'old', '{}')");
  db.Exec("INSERT INTO tscb.inbox_keys VALUES ('old', 1, '2024-01-15 10:00+00')");
  // Old actions: one that ended (goes), one waiting for a person (stays).
  db.Exec(
      "INSERT INTO tscb.actions (idempotency_key, rule, action, method, target, safe, state, "
      "max_attempts, created_at, completed_at) VALUES "
      "('k1', 'r', 'sms.send', 'POST', '/sms', false, 'succeeded', 5, '2024-01-15', '2024-01-15'),"
      "('k2', 'r', 'sms.send', 'POST', '/sms', false, 'needs_review', 5, '2024-01-15', "
      "'2024-01-15')");

  auto dry = RunMaintenance(db.ConnectionString(), 13, true);
  std::string text;
  for (const auto& l : dry.lines) text += l + "\n";
  EXPECT_NE(text.find("would drop tscb.inbox_2024_01"), std::string::npos) << text;
  EXPECT_NE(text.find("would delete 1 dedup key(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("would delete 1 finished action(s)"), std::string::npos) << text;
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM tscb.inbox"), 1);

  auto done = RunMaintenance(db.ConnectionString(), 13, false);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM tscb.inbox"), 0);
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM tscb.inbox_keys"), 0);
  EXPECT_EQ(db.Column("SELECT string_agg(state, ',') FROM tscb.actions")[0], "needs_review");
  for (const char* t : {"inbox_2024_01", "events_2024_01", "event_devices_2024_01"})
    EXPECT_EQ(db.Scalar(std::string("SELECT count(*) FROM pg_class WHERE relname = '") + t + "'"),
              0)
        << t;
  // This month's and last month's partitions stay.
  EXPECT_EQ(db.Scalar("SELECT count(*) FROM pg_inherits WHERE inhparent = 'tscb.inbox'::regclass"),
            6);
}

}  // namespace
}  // namespace tscb::storage::pg
