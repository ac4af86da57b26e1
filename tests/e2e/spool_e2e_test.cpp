// The local spool with the real binary and a PostgreSQL of the test's own:
// stopped under load, callbacks are spooled (fsync'd, then 200), drained in
// arrival order once it is back, none lost, none twice; a spool left by a
// killed daemon is drained at the next start and its torn tail discarded;
// a full spool answers 503.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/e2e/daemon_fixture.hpp"
#include "tests/e2e/private_cluster.hpp"

namespace tscb::testing {
namespace {

class SpoolE2eTest : public DaemonTest {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<PrivateCluster>(cluster_dir_.Path() + "/pg");
  }

  // The fixture's config, on the private cluster, with a spool.
  std::string Config(const std::string& max_bytes = "1073741824") {
    DaemonOptions o;
    o.extra_yaml = "spool: { file: " + SpoolPath() + ", max_bytes: " + max_bytes + " }\n";
    std::string yaml = WriteConfigText(o);
    auto from = "port: " + std::to_string(db_.Port()) + ", name: " + db_.Name();
    yaml.replace(yaml.find(from), from.size(),
                 "port: " + std::to_string(cluster_->Port()) + ", name: postgres");
    return dir_.Write("spool.yaml", yaml);
  }
  std::string SpoolPath() { return dir_.Path() + "/state/inbox.spool"; }

  void Run(const std::string& config) {
    daemon_ = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"run", "--allow-root", "--config", config},
        dir_.Path() + "/daemon-" + std::to_string(++runs_) + ".log");
    ASSERT_TRUE(daemon_->WaitUntilListening()) << daemon_->Log();
  }

  static std::string Body(const std::string& id, int attempt = 1, std::size_t padding = 0) {
    boost::json::object body{{"requestId", id}, {"callbackCount", attempt}};
    if (padding) body["padding"] = std::string(padding, 'x');
    return AsSent("CarrierService", body);
  }

  long long Rows(const std::string& where = "true") {
    return cluster_->Scalar("SELECT count(*) FROM tscb.inbox WHERE " + where);
  }

  // Waits until the daemon says its spool is empty and `rows` are stored.
  bool Drained(long long rows) {
    for (int i = 0; i < 200; ++i) {
      auto ready = Admin().Get("/readyz");
      bool empty = ready.body.find("\"records\":0") != std::string::npos;
      if (empty && Rows() == rows) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  TempDir cluster_dir_;
  std::unique_ptr<PrivateCluster> cluster_;
  int runs_ = 0;
};

TEST_F(SpoolE2eTest, PostgresqlDownCallbacksAreSpooledThenDrainedInOrderNoneLostNoneTwice) {
  Run(Config());
  auto client = Client();
  ASSERT_EQ(client.Post("/callbacks/CarrierService", Body("before")).status, 200);

  cluster_->Stop();
  for (int i = 0; i < 30; ++i) {
    auto reply = client.Post("/callbacks/CarrierService", Body("down-" + std::to_string(i)));
    ASSERT_EQ(reply.status, 200) << reply.body << daemon_->Log();
    EXPECT_EQ(reply.body, R"({"status":"spooled"})");
  }
  // ThingSpace resends five of them (their acks were "lost"): spooled again.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(client.Post("/callbacks/CarrierService", Body("down-" + std::to_string(i), 2)).status,
              200);
  auto ready = Admin().Get("/readyz");
  EXPECT_NE(ready.body.find("\"records\":35"), std::string::npos) << ready.body;
  auto metrics = Admin().Get("/metrics").body;
  EXPECT_NE(metrics.find("tscb_spool_records 35"), std::string::npos);
  EXPECT_NE(metrics.find("tscb_callbacks_total{outcome=\"spooled\",service=\"CarrierService\"} 35"),
            std::string::npos);
  auto restarted_at = std::chrono::system_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));

  cluster_->Start();
  ASSERT_TRUE(Drained(31)) << daemon_->Log();
  EXPECT_EQ(Rows("request_id LIKE 'down-%'"), 30);
  EXPECT_EQ(Rows("request_id LIKE 'down-%' AND deliveries = 2 AND attempt = 2"), 5);
  // In arrival order, with their arrival time (not the time they were moved).
  std::string order;
  for (int i = 0; i < 30; ++i) order += (i ? "," : "") + std::string("down-") + std::to_string(i);
  pqxx::connection conn("host=127.0.0.1 port=" + std::to_string(cluster_->Port()) +
                        " user=postgres dbname=postgres");
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT string_agg(request_id, ',' ORDER BY id) FROM tscb.inbox WHERE "
                     "request_id LIKE 'down-%'")[0]
                .as<std::string>(),
            order);
  auto restart_epoch = std::chrono::duration<double>(restarted_at.time_since_epoch()).count();
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM tscb.inbox WHERE request_id LIKE 'down-%' AND "
                     "extract(epoch FROM received_at) > " +
                     std::to_string(restart_epoch))[0]
                .as<long long>(),
            0);
  EXPECT_EQ(std::filesystem::file_size(SpoolPath()), 0u);
  // New callbacks go straight to the inbox again.
  EXPECT_EQ(client.Post("/callbacks/CarrierService", Body("after")).body, R"({"status":"stored"})");
  EXPECT_EQ(daemon_->Log().find("s3cr3t"), std::string::npos);  // no password logged
}

TEST_F(SpoolE2eTest, ASpoolLeftByAKilledDaemonIsDrainedAtStartItsTornTailDiscarded) {
  std::string config = Config();
  Run(config);
  cluster_->Stop();
  auto client = Client();
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(client.Post("/callbacks/CarrierService", Body("k-" + std::to_string(i))).status, 200);
  daemon_->Signal(SIGKILL);
  daemon_->Wait(std::chrono::seconds(10));
  // A write the crash cut short: never acknowledged.
  std::ofstream(SpoolPath(), std::ios::app | std::ios::binary) << std::string("TSP1\x40\x00", 6);

  cluster_->Start();
  Run(config);
  ASSERT_TRUE(Drained(10)) << daemon_->Log();
  EXPECT_EQ(Rows("request_id LIKE 'k-%'"), 10);
  auto log = daemon_->Log();
  EXPECT_NE(log.find("are not a whole record"), std::string::npos) << log;
  EXPECT_NE(log.find("holds 10 callback(s)"), std::string::npos) << log;
}

TEST_F(SpoolE2eTest, AFullSpoolAnswers503AndRecoversOnceDrained) {
  Run(Config("1048576"));  // 1 MiB: about 17 callbacks of 60 KB
  cluster_->Stop();
  auto client = Client();
  int spooled = 0, refused = 0;
  for (int i = 0; i < 25; ++i) {
    auto reply =
        client.Post("/callbacks/CarrierService", Body("f-" + std::to_string(i), 1, 60'000));
    if (reply.status == 200) ++spooled;
    if (reply.status == 503) {
      ++refused;
      EXPECT_EQ(reply.headers["Retry-After"], "60");
    }
  }
  EXPECT_GE(spooled, 15);
  EXPECT_EQ(spooled + refused, 25);
  EXPECT_GT(refused, 0);
  EXPECT_LE(std::filesystem::file_size(SpoolPath()), 1048576u);
  EXPECT_NE(Admin().Get("/metrics").body.find("tscb_spool_appends_total{result=\"full\"}"),
            std::string::npos);

  cluster_->Start();
  ASSERT_TRUE(Drained(spooled)) << daemon_->Log();
  EXPECT_EQ(client.Post("/callbacks/CarrierService", Body("f-24", 2, 60'000)).status, 200);
}

// A small tmpfs for the spool: the disk fills before the spool's own limit.
class SmallDisk {
 public:
  explicit SmallDisk(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
    mounted_ = std::system(("mount -t tmpfs -o size=256k tmpfs '" + dir_ + "'").c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) std::system(("umount -l '" + dir_ + "'").c_str());
  }
  bool Mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

TEST_F(SpoolE2eTest, AFullDiskAnswers503LeavesNoTornRecordAndRecoversWhenSpaceReturns) {
  SmallDisk disk(dir_.Path() + "/state");  // where Config() puts the spool
  ASSERT_TRUE(disk.Mounted()) << "mounting a tmpfs needs root";
  Run(Config());
  cluster_->Stop();
  auto client = Client();
  int spooled = 0, refused = 0;
  for (int i = 0; i < 8; ++i) {
    auto reply =
        client.Post("/callbacks/CarrierService", Body("d-" + std::to_string(i), 1, 60'000));
    if (reply.status == 200) ++spooled;
    if (reply.status == 503) ++refused;
  }
  EXPECT_GE(spooled, 2);
  EXPECT_GT(refused, 0);
  EXPECT_NE(daemon_->Log().find("No space left on device"), std::string::npos) << daemon_->Log();
  EXPECT_NE(Admin().Get("/metrics").body.find("tscb_spool_appends_total{result=\"error\"}"),
            std::string::npos);

  // What is in the file is whole records only: a restart finds no torn tail.
  daemon_->Signal(SIGKILL);
  daemon_->Wait(std::chrono::seconds(10));
  cluster_->Start();
  Run(Config());
  ASSERT_TRUE(Drained(spooled)) << daemon_->Log();
  EXPECT_EQ(daemon_->Log().find("are not a whole record"), std::string::npos) << daemon_->Log();
  EXPECT_NE(daemon_->Log().find("holds " + std::to_string(spooled) + " callback(s)"),
            std::string::npos);

  // The drained file was emptied: the space is back for the next outage.
  cluster_->Stop();
  EXPECT_EQ(Client().Post("/callbacks/CarrierService", Body("d-again", 1, 60'000)).status, 200);
  cluster_->Start();
  ASSERT_TRUE(Drained(spooled + 1)) << daemon_->Log();
}

}  // namespace
}  // namespace tscb::testing
