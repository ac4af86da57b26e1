#pragma once
// A migrated test database with helpers to store callbacks in the inbox and
// to process them until none is pending: the base of the processing and
// outbox pg tests.
#include <gtest/gtest.h>

#include "daemon/processor.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"
#include "storage/pg/pg_inbox_store.hpp"
#include "storage/pg/pg_processing_store.hpp"
#include "tests/support/test_database.hpp"

namespace tscb::daemon {

class InboxFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto conn = storage::pg::Connect(db_.ConnectionString());
    storage::pg::Migrate(*conn);
  }

  // `received_us`: the arrival time (microseconds since 1970), 0 for now.
  void Store(const std::string& service, const std::string& body, const std::string& key,
             std::int64_t received_us = 0) {
    storage::pg::PgInboxStore store(db_.ConnectionString());
    storage::InboxRecord r;
    r.received_us = received_us;
    r.service = service;
    r.source_ip = "127.0.0.1";
    r.dedup_key = key;
    r.body_json = body;
    r.attempt = 1;
    std::vector<storage::InboxRecord> batch{r};
    store.InsertBatch(batch, storage::Announce::kNow);
  }

  // Processes until nothing is pending.
  ProcessResult Drain(Processor& p) {
    storage::pg::PgProcessingStore store(db_.ConnectionString());
    ProcessResult total;
    while (true) {
      auto r = p.ProcessPending(store);
      if (r.rows == 0) return total;
      total += r;
    }
  }

  // Prepared, as the daemon's processors and dispatchers use it (the outbox
  // tests); ProcessorPgTest plans each statement at its call.
  std::unique_ptr<storage::pg::PgProcessingStore> NewStore() {
    return std::make_unique<storage::pg::PgProcessingStore>(
        db_.ConnectionString(), storage::pg::PgProcessingStore::Planning::kPrepared);
  }

  testing::TestDatabase db_;
};

}  // namespace tscb::daemon
