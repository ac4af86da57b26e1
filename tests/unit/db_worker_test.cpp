#include "daemon/db_worker.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace tscb::daemon {
namespace {

// No database: the work below never touches the store; what is counted is
// how often DbWorker opens one (a new connection) and runs the work.
class NoStore final : public storage::ProcessingStore {
 public:
  std::unique_ptr<storage::ProcessingBatch> Begin() override { return nullptr; }
  bool WaitForInbox(std::chrono::milliseconds) override { return false; }
};

struct Counted {
  int stores = 0;  // connections opened
  int runs = 0;
  Metrics metrics{{"CarrierService"}};
  DbWorker worker{[this] {
                    ++stores;
                    return std::make_unique<NoStore>();
                  },
                  "tscb-test", &metrics};

  // Runs work that fails with `errors` (in order) before it succeeds; the
  // result, or the error Run threw.
  std::string Run(std::vector<storage::StorageError> errors) {
    asio::io_context io;
    auto done = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::string> {
          co_return co_await worker.Run([&](storage::ProcessingStore&) {
            std::size_t i = static_cast<std::size_t>(runs++);
            if (i < errors.size()) throw errors[i];
            return std::string("committed");
          });
        },
        asio::use_future);
    io.run();
    try {
      return done.get();
    } catch (const storage::StorageError& e) {
      return e.what();
    }
  }
};

storage::StorageError Deadlock() { return {"deadlock detected", false, false, true}; }

TEST(DbWorkerTest, ATransactionTheServerRolledBackIsRunAgainOnTheSameConnection) {
  Counted t;
  EXPECT_EQ(t.Run({Deadlock(), Deadlock()}), "committed");
  EXPECT_EQ(t.runs, 3);
  EXPECT_EQ(t.stores, 1);
  EXPECT_NE(t.metrics.Serialize().find(R"(tscb_db_rolled_back_total{part="tscb-test"} 2)"),
            std::string::npos);
}

TEST(DbWorkerTest, AfterThreeRollbacksTheErrorReachesTheCaller) {
  Counted t;
  EXPECT_EQ(t.Run({Deadlock(), Deadlock(), Deadlock()}), "deadlock detected");
  EXPECT_EQ(t.runs, 3);
  EXPECT_EQ(t.Run({}), "committed");
  EXPECT_EQ(t.stores, 1);  // the connection was fine all along
}

TEST(DbWorkerTest, OtherFailuresAreNotRepeatedAndDropTheConnection) {
  Counted t;
  EXPECT_EQ(t.Run({storage::StorageError("connection lost", true)}), "connection lost");
  EXPECT_EQ(t.runs, 1);
  EXPECT_EQ(t.Run({}), "committed");
  EXPECT_EQ(t.stores, 2);
}

}  // namespace
}  // namespace tscb::daemon
