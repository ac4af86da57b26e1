// Operations with the real binary: the systemd notify protocol (through a
// fake NOTIFY_SOCKET), SIGHUP reload of the whole config (allow-list,
// credentials, TLS certificate, a bad file rejected), running as root.
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <thread>

#include "tests/e2e/daemon_fixture.hpp"

namespace tscb::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The datagram socket systemd listens on; the daemon finds it through
// NOTIFY_SOCKET and sends "READY=1" and friends there.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot bind notify socket " + path_);
  }
  ~NotifySocket() {
    close(fd_);
    unlink(path_.c_str());
  }
  const std::string& Path() const { return path_; }

  struct Message {
    std::string text;
    Clock::time_point at;
  };
  // The next datagram, or nullopt after `timeout`.
  std::optional<Message> Next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return Message{std::string(buf, static_cast<std::size_t>(n)), Clock::now()};
  }
  // Reads until a message containing `line` (skipping others, which are
  // kept in `skipped`); nullopt after `timeout`.
  std::optional<Message> WaitFor(const std::string& line, std::chrono::milliseconds timeout,
                                 std::vector<Message>* skipped = nullptr) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto m = Next(left);
      if (!m) return std::nullopt;
      if (Has(m->text, line)) return m;
      if (skipped) skipped->push_back(*m);
    }
    return std::nullopt;
  }
  static bool Has(const std::string& text, const std::string& line) {
    return ("\n" + text + "\n").find("\n" + line + "\n") != std::string::npos;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

const std::string kPath = "/callbacks/CarrierService";

std::string Callback(const std::string& request_id) {
  return AsSent("CarrierService", boost::json::object{{"requestId", request_id},
                                                      {"deviceIds", boost::json::array{}}});
}

class OperationsE2eTest : public DaemonTest {
 protected:
  // Rewrites the config the way an editor does: a new file renamed over it.
  void ReplaceConfig(const DaemonOptions& options) {
    std::string text = WriteConfigText(options);
    std::string tmp = dir_.Write("config.yaml.new", text);
    std::filesystem::rename(tmp, dir_.Path() + "/config.yaml");
  }
  // SIGHUP, then waits for the reload's verdict in the log.
  bool Reload(const std::string& verdict) {
    auto before = Count(daemon_->Log(), verdict);
    daemon_->Signal(SIGHUP);
    for (int i = 0; i < 100; ++i) {
      if (Count(daemon_->Log(), verdict) > before) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  static std::size_t Count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
    return n;
  }
};

TEST_F(OperationsE2eTest, NotifySocketGetsReadyWatchdogReloadingAndStopping) {
  NotifySocket notify(dir_.Path() + "/notify.sock");
  DaemonOptions options;
  options.listener_port = FreeLoopbackPort();
  std::string config = WriteConfig(options);
  daemon_ = std::make_unique<DaemonProcess>(
      std::vector<std::string>{"run", "--allow-root", "--config", config},
      dir_.Path() + "/daemon.log",
      std::map<std::string, std::string>{{"NOTIFY_SOCKET", notify.Path()},
                                         {"WATCHDOG_USEC", "400000"}});

  // READY=1 comes once the listener accepts: a callback sent the moment it
  // arrives is stored.
  std::vector<NotifySocket::Message> before_ready;
  auto ready = notify.WaitFor("READY=1", std::chrono::seconds(15), &before_ready);
  ASSERT_TRUE(ready) << daemon_->Log();
  for (const auto& m : before_ready) EXPECT_FALSE(NotifySocket::Has(m.text, "WATCHDOG=1"));
  HttpClient client(options.listener_port, certs_->Path() + "/ca.pem");
  auto reply = client.Post(kPath, Callback("notify-1"));
  EXPECT_EQ(reply.status, 200) << reply.error << daemon_->Log();
  ASSERT_TRUE(daemon_->WaitUntilListening());

  // WATCHDOG=1 every half interval (200 ms): five in about a second.
  std::vector<Clock::time_point> pings;
  auto until = Clock::now() + std::chrono::milliseconds(1100);
  while (Clock::now() < until) {
    auto m = notify.Next(std::chrono::milliseconds(500));
    if (m && NotifySocket::Has(m->text, "WATCHDOG=1")) pings.push_back(m->at);
  }
  ASSERT_GE(pings.size(), 4u);
  EXPECT_LE(pings.size(), 7u);
  for (std::size_t i = 1; i < pings.size(); ++i) {
    auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(pings[i] - pings[i - 1]);
    EXPECT_GE(gap.count(), 100) << "ping " << i;
    EXPECT_LE(gap.count(), 400) << "ping " << i;
  }

  // SIGHUP: RELOADING=1 (with the monotonic time), then READY=1.
  daemon_->Signal(SIGHUP);
  std::vector<NotifySocket::Message> skipped;
  auto reloading = notify.WaitFor("RELOADING=1", std::chrono::seconds(5), &skipped);
  ASSERT_TRUE(reloading);
  EXPECT_NE(reloading->text.find("MONOTONIC_USEC="), std::string::npos) << reloading->text;
  auto ready_again = notify.WaitFor("READY=1", std::chrono::seconds(5), &skipped);
  ASSERT_TRUE(ready_again);
  for (const auto& m : skipped) EXPECT_FALSE(NotifySocket::Has(m.text, "READY=1"));

  daemon_->Signal(SIGTERM);
  auto stopping = notify.WaitFor("STOPPING=1", std::chrono::seconds(5));
  ASSERT_TRUE(stopping);
  EXPECT_EQ(daemon_->Wait(std::chrono::seconds(10)), 0);
}

TEST_F(OperationsE2eTest, ReloadAppliesAllowListAndCredentialsFromAReplacedFile) {
  DaemonOptions options;
  StartDaemon(options);
  auto client = Client();
  EXPECT_EQ(client.Post(kPath, Callback("r-1")).status, 200);

  // The allow-list no longer has loopback: refused, on the open connection too.
  DaemonOptions closed = options;
  closed.allow_from = "[198.51.100.0/24]";
  ReplaceConfig(closed);
  ASSERT_TRUE(Reload("reload: " + dir_.Path() + "/config.yaml applied")) << daemon_->Log();
  EXPECT_EQ(client.Post(kPath, Callback("r-2")).status, 403);

  // Back again, and a new password for CarrierService (its secret file).
  ReplaceConfig(options);
  dir_.Write("secrets/CarrierService", "a-new-password\n");
  ASSERT_TRUE(Reload("reload: " + dir_.Path() + "/config.yaml applied")) << daemon_->Log();
  auto fresh = Client();
  EXPECT_EQ(fresh.Post(kPath, Callback("r-3")).status, 401);
  boost::json::object body{{"requestId", "r-4"}, {"deviceIds", boost::json::array{}}};
  body["username"] = UsernameFor("CarrierService");
  body["password"] = "a-new-password";
  EXPECT_EQ(fresh.Post(kPath, boost::json::serialize(body)).status, 200);
  EXPECT_EQ(InboxRows(), 2);
  EXPECT_EQ(daemon_->Log().find("a-new-password"), std::string::npos);

  // A setting that needs a restart is reported, not silently ignored.
  DaemonOptions restart = options;
  restart.linger = "5ms";
  ReplaceConfig(restart);
  ASSERT_TRUE(Reload("applied")) << daemon_->Log();
  EXPECT_NE(daemon_->Log().find("inbox changed in"), std::string::npos) << daemon_->Log();
}

TEST_F(OperationsE2eTest, InvalidConfigIsRejectedWholeAndTheRunningOneStays) {
  DaemonOptions options;
  StartDaemon(options);
  auto client = Client();
  EXPECT_EQ(client.Post(kPath, Callback("i-1")).status, 200);

  // A valid allow-list change next to an unknown key: nothing is applied.
  DaemonOptions closed = options;
  closed.allow_from = "[198.51.100.0/24]";
  closed.extra_yaml = "no_such_key: 1\n";
  ReplaceConfig(closed);
  ASSERT_TRUE(Reload("rejected")) << daemon_->Log();
  EXPECT_NE(daemon_->Log().find("no_such_key"), std::string::npos) << daemon_->Log();
  EXPECT_EQ(client.Post(kPath, Callback("i-2")).status, 200);

  // A certificate file that is not there: rejected as well.
  DaemonOptions broken = closed;
  broken.extra_yaml.clear();
  broken.cert_dir = dir_.Path() + "/missing";
  ReplaceConfig(broken);
  ASSERT_TRUE(Reload("rejected")) << daemon_->Log();
  EXPECT_EQ(Client().Post(kPath, Callback("i-3")).status, 200);
  EXPECT_EQ(InboxRows(), 3);

  auto metrics = Admin().Get("/metrics");
  EXPECT_NE(metrics.body.find("tscb_config_reloads_total{result=\"rejected\"} 2"),
            std::string::npos)
      << metrics.body;
}

TEST_F(OperationsE2eTest, CertificateRotationServesNewHandshakesAndKeepsOpenConnections) {
  std::string live = dir_.Path() + "/tls";
  std::string next = dir_.Path() + "/tls-next";
  MakeTestCertificates(live);
  MakeTestCertificates(next);  // another CA: a client tells the two apart
  DaemonOptions options;
  options.cert_dir = live;
  StartDaemon(options);
  HttpClient old_ca_open(daemon_->CallbackPort(), live + "/ca.pem");
  EXPECT_EQ(old_ca_open.Post(kPath, Callback("t-1")).status, 200);

  std::filesystem::copy_file(next + "/cert.pem", live + "/cert.pem",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(next + "/key.pem", live + "/key.pem",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(Reload("TLS certificate re-read")) << daemon_->Log();

  // The open keep-alive connection goes on with the old certificate.
  EXPECT_EQ(old_ca_open.Post(kPath, Callback("t-2")).status, 200);
  // A new handshake gets the new certificate: only the new CA accepts it.
  HttpClient new_ca(daemon_->CallbackPort(), next + "/ca.pem");
  auto reply = new_ca.Post(kPath, Callback("t-3"));
  EXPECT_EQ(reply.status, 200) << reply.error;
  HttpClient old_ca(daemon_->CallbackPort(), live + "/ca.pem");
  EXPECT_EQ(old_ca.Post(kPath, Callback("t-4")).status, 0);
  EXPECT_EQ(InboxRows(), 3);
}

// The value of one sample in a Prometheus text scrape, or -1. Labels are
// written sorted by name, as prometheus-cpp does: "name{a=\"x\",b=\"y\"}".
TEST_F(OperationsE2eTest, MetricsPassPromtoolAndCountWhatWasSent) {
  StartDaemon();
  auto client = Client();
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(client.Post(kPath, Callback("m-" + std::to_string(i))).status, 200);
  EXPECT_EQ(client.Post(kPath, Callback("m-0")).status, 200);  // a resend
  EXPECT_EQ(Client().Post(kPath, "not json").status, 400);
  boost::json::object wrong{{"requestId", "m-x"}, {"username", "u"}, {"password", "bad"}};
  EXPECT_EQ(Client().Post(kPath, boost::json::serialize(wrong)).status, 401);
  EXPECT_EQ(Client().Post("/callbacks/NoSuchService", Callback("m-y")).status, 404);
  EXPECT_EQ(Client().Post(kPath, Callback("m-z"), {{"X-Forwarded-For", "203.0.113.9"}}).status,
            403);

  // The processor turns the 5 stored callbacks into events (none matches a
  // request), and the sampler sees an empty backlog.
  std::string scrape;
  for (int i = 0; i < 100; ++i) {
    scrape = Admin().Get("/metrics").body;
    if (MetricSample(scrape, "tscb_callbacks_unmatched_total{service=\"CarrierService\"}") == 5 &&
        MetricSample(scrape, "tscb_stats_sampled_timestamp_seconds") > 0 &&
        MetricSample(scrape, "tscb_inbox_backlog") == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const std::string svc = "service=\"CarrierService\"";
  EXPECT_EQ(MetricSample(scrape, "tscb_callbacks_total{outcome=\"stored\"," + svc + "}"), 5)
      << scrape;
  EXPECT_EQ(MetricSample(scrape, "tscb_callbacks_total{outcome=\"duplicate\"," + svc + "}"), 1);
  EXPECT_EQ(MetricSample(scrape, "tscb_callbacks_total{outcome=\"not_json\"," + svc + "}"), 1);
  EXPECT_EQ(MetricSample(scrape, "tscb_callbacks_total{outcome=\"bad_credentials\"," + svc + "}"),
            1);
  EXPECT_EQ(MetricSample(scrape, "tscb_http_rejected_total{reason=\"not_found\"}"), 1);
  EXPECT_EQ(MetricSample(scrape, "tscb_http_rejected_total{reason=\"forbidden\"}"), 1);
  EXPECT_EQ(MetricSample(scrape, "tscb_ack_latency_seconds_count"), 6);
  EXPECT_EQ(MetricSample(scrape, "tscb_callbacks_unmatched_total{" + svc + "}"), 5);
  EXPECT_EQ(MetricSample(scrape, "tscb_processing_latency_seconds_count"), 5);
  EXPECT_EQ(MetricSample(scrape, "tscb_inbox_backlog"), 0);
  EXPECT_EQ(MetricSample(scrape, "tscb_actions_by_state{state=\"queued\"}"), 0);
  EXPECT_GE(MetricSample(scrape, "tscb_open_connections"), 0);

  // promtool (Debian's prometheus package) lints the exposition format.
  std::string file = dir_.Write("scrape.txt", scrape);
  int rc = -1;
  std::string out = RunShell("promtool check metrics < '" + file + "'", &rc);
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << out;
  EXPECT_EQ(out, "") << out;
}

boost::json::object FixtureBody(const std::string& name) {
  for (auto& f : LoadFixtures())
    if (f.name == name) return f.body;
  throw std::runtime_error("no fixture " + name);
}

TEST_F(OperationsE2eTest, StatusAndEventsTailInEveryFormat) {
  DaemonOptions options;
  options.admin_port = FreeLoopbackPort();  // status finds the daemon through admin.port
  StartDaemon(options);
  std::string config = dir_.Path() + "/config.yaml";
  // Follows only new events, of one device (any of its identifiers), then stops.
  DaemonProcess tail({"events", "tail", "--lines", "0", "--device", "5555550100", "--count", "2",
                      "--format", "json", "--config", config},
                     dir_.Path() + "/tail.txt");
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // it has read the newest id
  auto client = Client();
  auto activate = FixtureBody("CarrierService__activate_success");
  auto sms = FixtureBody("EnhancedConnectivityService__sms_mo");
  auto other = FixtureBody("CarrierService__suspend");
  EXPECT_EQ(client.Post(kPath, AsSent("CarrierService", activate)).status, 200);
  EXPECT_EQ(client.Post(kPath, AsSent("CarrierService", other)).status, 200);
  EXPECT_EQ(client
                .Post("/callbacks/EnhancedConnectivityService",
                      AsSent("EnhancedConnectivityService", sms))
                .status,
            200);
  ASSERT_EQ(tail.Wait(std::chrono::seconds(15)), 0) << tail.Log();
  std::istringstream lines(tail.Log());
  std::vector<boost::json::object> events;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) events.push_back(boost::json::parse(line).as_object());
  ASSERT_EQ(events.size(), 2u) << tail.Log();
  EXPECT_EQ(events[0].at("service").as_string(), "CarrierService");
  EXPECT_EQ(events[1].at("service").as_string(), "EnhancedConnectivityService");
  EXPECT_LT(events[0].at("id").as_int64(), events[1].at("id").as_int64());

  // Kind filter with a prefix, as a table, from the start.
  auto kinds = RunBinary({"events", "tail", "--kind", events[1].at("kind").as_string().c_str(),
                          "--count", "1", "--config", config});
  EXPECT_EQ(kinds.exit_code, 0) << kinds.output;
  EXPECT_NE(kinds.output.find("EnhancedConnectivityService"), std::string::npos) << kinds.output;

  for (int i = 0; i < 50 && db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = "
                                       "'pending'") > 0;
       ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto json = RunBinary({"status", "--format", "json", "--config", config});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  auto status = boost::json::parse(json.output).as_object();
  EXPECT_EQ(status.at("daemon").at("ready"), true);
  EXPECT_EQ(status.at("inbox").at("backlog").as_int64(), 0);
  EXPECT_FALSE(status.at("inbox").at("last_callback_at").as_string().empty());
  EXPECT_EQ(status.at("requests").at("pending").as_int64(), 0);
  EXPECT_EQ(status.at("actions").at("queued").as_int64(), 0);
  EXPECT_TRUE(status.at("last_errors").as_array().empty());

  auto table = RunBinary({"status", "--config", config});
  EXPECT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("daemon.ready"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("inbox.backlog"), std::string::npos);
  EXPECT_NE(table.output.find("last errors"), std::string::npos);
  auto csv = RunBinary({"status", "--format", "csv", "--config", config});
  EXPECT_EQ(csv.output.rfind("field,value\n", 0), 0u) << csv.output;
  auto bad = RunBinary({"status", "--format", "xml", "--config", config});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--format is table, csv or json"), std::string::npos);

  // The daemon gone: status says so and exits 1.
  daemon_->Signal(SIGTERM);
  ASSERT_EQ(daemon_->Wait(std::chrono::seconds(10)), 0);
  auto down = RunBinary({"status", "--format", "json", "--config", config});
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_EQ(boost::json::parse(down.output).at("daemon").at("reachable"), false);
}

TEST_F(OperationsE2eTest, RefusesToRunAsRootUnlessAllowed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  std::string config = WriteConfig({});
  DaemonProcess daemon({"run", "--config", config}, dir_.Path() + "/root.log");
  EXPECT_EQ(daemon.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(daemon.Log().find("refusing to run as root"), std::string::npos) << daemon.Log();
}

}  // namespace
}  // namespace tscb::testing
