// Start-up, readiness, shutdown and database failure, with the real binary.
#include <signal.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "tests/e2e/daemon_fixture.hpp"
#include "tests/e2e/private_cluster.hpp"

namespace tscb::testing {
namespace {

class LifecycleE2eTest : public DaemonTest {
 protected:
  // Starts the daemon with `grace` and a half-sent request that holds a
  // graceful stop (the returned client keeps it open).
  HttpClient StartWithRequestInFlight(const std::string& grace) {
    DaemonOptions options;
    options.grace_period = grace;
    options.request_timeout = "30s";
    StartDaemon(options);
    auto slow = Client();
    EXPECT_TRUE(slow.WriteRaw("POST /callbacks/CarrierService HTTP/1.1\r\nHost: x\r\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return slow;
  }
};

TEST_F(LifecycleE2eTest, HealthzAndReadyzAnswerWhenRunning) {
  StartDaemon();
  auto admin = Admin();
  auto health = admin.Get("/healthz");
  EXPECT_EQ(health.status, 200) << health.error;
  auto ready = admin.Get("/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;
  auto json = boost::json::parse(ready.body).as_object();
  EXPECT_TRUE(json.at("ready").as_bool());
  EXPECT_TRUE(json.at("database_ok").as_bool());
  EXPECT_EQ(json.at("schema_version"), json.at("schema_expected"));
  EXPECT_EQ(admin.Request("POST", "/readyz", "").status, 405);
  EXPECT_EQ(Admin().Get("/nope").status, 404);
}

// Operators (top -H, perf, pg_stat_activity) see which part of the daemon
// spends the CPU or holds a database connection.
TEST_F(LifecycleE2eTest, ThreadsAndDatabaseConnectionsAreNamedByRole) {
  StartDaemon();
  // The inbox writers connect with their first batch.
  boost::json::object body{{"requestId", "named-1"}};
  ASSERT_EQ(Client().Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  std::set<std::string> threads;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(daemon_->Pid()) + "/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    std::getline(comm, name);
    threads.insert(name);
  }
  for (const char* name : {"tscb-net0", "tscb-inbox0", "tscb-inbox1", "tscb-proc0", "tscb-actions",
                           "tscb-health", "tscb-stats", "tscb-dispatch", "tscb-reconcile"})
    EXPECT_EQ(threads.count(name), 1u) << name;

  const std::string roles =
      "SELECT count(DISTINCT application_name) FROM pg_stat_activity "
      "WHERE datname = current_database() AND application_name IN ('ts-callbackd/inbox', "
      "'ts-callbackd/processor', 'ts-callbackd/dispatcher', 'ts-callbackd/reconciler', "
      "'ts-callbackd/health')";
  EXPECT_TRUE(WaitFor([&] { return db_.Scalar(roles) == 5; })) << db_.Scalar(roles);
}

TEST_F(LifecycleE2eTest, CheckConfigPrintsEveryErrorWithFileLineAndPathAndExits2) {
  std::string file = dir_.Write("bad.yaml",
                                "account: \"0000123456-00001\"\n"
                                "listener:\n"
                                "  port: nine\n"
                                "  allow_from: [1.2.3.4/40]\n"
                                "services:\n"
                                "  CarrierService: { username: u, password: plain-text }\n");
  auto r = RunBinary({"check-config", "--config", file});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(file + ":3: listener.port: expected an integer"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(file + ":4: listener.allow_from[0]: expected an IP address"),
            std::string::npos);
  EXPECT_NE(r.output.find(file + ":6: services.CarrierService.password: secrets are not written"),
            std::string::npos);
  EXPECT_NE(r.output.find("listener.tls.certificate: is required"), std::string::npos);
}

TEST_F(LifecycleE2eTest, CheckConfigAcceptsAValidConfig) {
  auto r = RunBinary({"check-config", "--config", WriteConfig({})});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK (9 service(s), no rules file)"), std::string::npos) << r.output;

  // The rules file it names is checked too, with file, line and YAML path.
  DaemonOptions o;
  o.extra_yaml = "rules: { file: rules.yaml }\n";
  dir_.Write("rules.yaml", "rules:\n  - name: r\n    when: {}\n    do: [{action: sms.nope}]\n");
  r = RunBinary({"check-config", "--config", WriteConfig(o)});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(dir_.Path() + "/rules.yaml:4: rules[0].do[0]: unknown action sms.nope"),
            std::string::npos)
      << r.output;
  dir_.Write("rules.yaml", "rules: []\n");
  r = RunBinary({"check-config", "--config", WriteConfig(o)});
  EXPECT_NE(r.output.find("OK (9 service(s), 0 active rule(s))"), std::string::npos) << r.output;
}

TEST_F(LifecycleE2eTest, MigrateCommandAppliesTheSchemaOnce) {
  std::string config = WriteConfig({});
  auto first = RunBinary({"migrate", "--config", config});
  EXPECT_EQ(first.exit_code, 0) << first.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first.output, m,
                                std::regex("schema version 0 -> ([0-9]+) \\(([0-9]+) applied")))
      << first.output;
  EXPECT_EQ(m[1], m[2]);  // every migration, once
  std::string latest = m[1];
  auto second = RunBinary({"migrate", "--config", config});
  EXPECT_NE(second.output.find("schema version " + latest + " -> " + latest + " (0 applied"),
            std::string::npos)
      << second.output;
}

TEST_F(LifecycleE2eTest, UnknownCommandIsAUsageError) {
  auto r = RunBinary({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown command 'frobnicate'"), std::string::npos);
}

TEST_F(LifecycleE2eTest, StartFailsClearlyWhenTheDatabaseIsUnreachable) {
  std::string config = WriteConfig({});
  std::ifstream in(config);
  std::stringstream text;
  text << in.rdbuf();
  std::string yaml = text.str();
  auto pos = yaml.find("port: " + std::to_string(db_.Port()));
  yaml.replace(pos, 6 + std::to_string(db_.Port()).size(), "port: 1");
  auto file = dir_.Write("unreachable.yaml", yaml);
  auto r = RunBinary({"run", "--allow-root", "--config", file});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("cannot start: database"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("bound on"), std::string::npos) << "listened without a database";
}

TEST_F(LifecycleE2eTest, SigtermDuringLoadLosesNoAcknowledgedCallback) {
  StartDaemon();
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<int> unanswered{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      auto client = Client();
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      int failures = 0;
      for (int i = 0; !stop && failures < 3 && std::chrono::steady_clock::now() < deadline; ++i) {
        std::string id = "load-" + std::to_string(t) + "-" + std::to_string(i);
        boost::json::object body{{"requestId", id}, {"status", "Success"}};
        auto reply = client.Post("/callbacks/CarrierService", AsSent("CarrierService", body));
        if (reply.status == 200) {
          std::lock_guard lock(mu);
          acked.insert(id);
          failures = 0;
        } else {
          ++unanswered;
          ++failures;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  daemon_->Signal(SIGTERM);
  auto code = daemon_->Wait(std::chrono::seconds(15));
  stop = true;
  for (auto& c : clients) c.join();
  ASSERT_TRUE(code.has_value()) << "daemon did not stop";
  EXPECT_EQ(*code, 0) << daemon_->Log();
  ASSERT_GT(acked.size(), 50u) << "the load never got going";
  auto stored_list = db_.Column("SELECT request_id FROM tscb.inbox");
  std::set<std::string> stored(stored_list.begin(), stored_list.end());
  EXPECT_EQ(stored.size(), stored_list.size()) << "a callback was stored twice";
  std::size_t lost = 0;
  for (const auto& id : acked) lost += stored.count(id) ? 0 : 1;
  EXPECT_EQ(lost, 0u) << "acknowledged but not stored";
  // Stored but unanswered is allowed (the answer was cut off); ThingSpace resends it.
  EXPECT_GE(stored.size(), acked.size());
  EXPECT_NE(daemon_->Log().find("stopped:"), std::string::npos);
}

TEST_F(LifecycleE2eTest, SecondSigtermStopsAtOnceWithoutWaitingForTheGracePeriod) {
  auto slow = StartWithRequestInFlight("30s");
  daemon_->Signal(SIGTERM);
  EXPECT_FALSE(daemon_->Wait(std::chrono::milliseconds(700)).has_value())
      << "the first SIGTERM did not wait for the request in flight";
  auto start = std::chrono::steady_clock::now();
  daemon_->Signal(SIGTERM);
  auto code = daemon_->Wait(std::chrono::seconds(5));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_NE(daemon_->Log().find("again: stopping at once"), std::string::npos);
}

TEST_F(LifecycleE2eTest, GracePeriodOverStopsWithARequestStillInFlight) {
  auto slow = StartWithRequestInFlight("1s");
  auto start = std::chrono::steady_clock::now();
  daemon_->Signal(SIGTERM);
  auto code = daemon_->Wait(std::chrono::seconds(10));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_NE(daemon_->Log().find("grace period over"), std::string::npos);
}

TEST_F(LifecycleE2eTest, AFloodOfRefusedRequestsIsCountedButLoggedOnlyAFewTimes) {
  StartDaemon();
  for (int i = 0; i < 60; ++i) {
    auto client = Client();
    EXPECT_EQ(client.Post("/callbacks/Nope", "{}").status, 404);
  }
  auto metrics = Admin().Get("/metrics").body;
  EXPECT_NE(metrics.find("tscb_http_rejected_total{reason=\"not_found\"} 60"), std::string::npos);
  daemon_->Signal(SIGTERM);
  ASSERT_TRUE(daemon_->Wait(std::chrono::seconds(10)).has_value());
  std::string log = daemon_->Log();
  std::size_t lines = 0;
  for (auto pos = log.find("refused request /callbacks/Nope"); pos != std::string::npos;
       pos = log.find("refused request /callbacks/Nope", pos + 1))
    ++lines;
  EXPECT_GE(lines, 1u);
  EXPECT_LT(lines, 60u);
  EXPECT_LE(lines, 5u * 4);  // 5 a second; the flood takes well under 4 seconds
}

TEST_F(LifecycleE2eTest, DatabaseOutageAnswers503UntilItIsBackAndNeverAFalse200) {
  StartDaemon();
  auto client = Client();
  boost::json::object body{{"requestId", "before"}};
  ASSERT_EQ(client.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);

  db_.ExecAdmin("ALTER DATABASE " + db_.Name() + " ALLOW_CONNECTIONS false");
  db_.ExecAdmin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" +
                db_.Name() + "'");
  for (int i = 0; i < 5; ++i) {
    boost::json::object during{{"requestId", "during-" + std::to_string(i)}};
    auto reply = client.Post("/callbacks/CarrierService", AsSent("CarrierService", during));
    EXPECT_EQ(reply.status, 503) << reply.body;
    EXPECT_EQ(reply.headers["Retry-After"], "60");
  }
  // Readiness follows within a probe interval.
  bool not_ready = false;
  for (int i = 0; i < 50 && !not_ready; ++i) {
    not_ready = Admin().Get("/readyz").status == 503;
    if (!not_ready) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(not_ready);

  db_.ExecAdmin("ALTER DATABASE " + db_.Name() + " ALLOW_CONNECTIONS true");
  boost::json::object after{{"requestId", "after"}};
  EXPECT_EQ(client.Post("/callbacks/CarrierService", AsSent("CarrierService", after)).status, 200);
  EXPECT_EQ(db_.Column("SELECT request_id FROM tscb.inbox ORDER BY id"),
            (std::vector<std::string>{"before", "after"}));
  auto metrics = Admin().Get("/metrics").body;
  EXPECT_NE(
      metrics.find("tscb_callbacks_total{outcome=\"unavailable\",service=\"CarrierService\"} 5"),
      std::string::npos);
}

TEST_F(LifecycleE2eTest, PostgresqlStoppedAnswers503AndNothingIsFalselyAcknowledged) {
  TempDir cluster_dir;
  PrivateCluster pg(cluster_dir.Path() + "/pg");
  // The fixture's config, pointed at the private cluster.
  std::string yaml = WriteConfigText({});
  auto from = "port: " + std::to_string(db_.Port()) + ", name: " + db_.Name();
  yaml.replace(yaml.find(from), from.size(),
               "port: " + std::to_string(pg.Port()) + ", name: postgres");
  std::string config = dir_.Write("private.yaml", yaml);
  daemon_ = std::make_unique<DaemonProcess>(
      std::vector<std::string>{"run", "--allow-root", "--config", config},
      dir_.Path() + "/daemon.log");
  ASSERT_TRUE(daemon_->WaitUntilListening()) << daemon_->Log();
  auto client = Client();
  auto post = [&](const std::string& id) {
    boost::json::object body{{"requestId", id}};
    return client.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status;
  };
  ASSERT_EQ(post("before"), 200);

  pg.Stop();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(post("down-" + std::to_string(i)), 503);

  pg.Start();
  EXPECT_EQ(post("after"), 200) << daemon_->Log();
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM tscb.inbox"), 2);
  EXPECT_EQ(pg.Scalar("SELECT count(*) FROM tscb.inbox WHERE request_id LIKE 'down-%'"), 0);
  EXPECT_NE(daemon_->Log().find("database writes work again"), std::string::npos);
}

}  // namespace
}  // namespace tscb::testing
