#pragma once
// Shared set-up for e2e tests: a fresh database, test certificates, a config
// file with every service of the fixtures (credentials in secret files), and
// the real ts-callbackd binary on port 0.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "tests/support/daemon_process.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/metric_sample.hpp"
#include "tests/support/test_database.hpp"

namespace tscb::testing {

inline const std::vector<std::string>& FixtureServices() {
  static const std::vector<std::string> services = {"CarrierService",
                                                    "NiddService",
                                                    "EnhancedConnectivityService",
                                                    "SMSDeliveryConfirmation",
                                                    "DiagnosticsService",
                                                    "ExternalProvisioningChanges",
                                                    "PromoChanges",
                                                    "ResumeTrackingNotification",
                                                    "AlertService"};
  return services;
}

inline std::string UsernameFor(const std::string& service) { return "user-" + service; }
inline std::string PasswordFor(const std::string& service) { return "pw-" + service + "-s3cr3t"; }

struct Fixture {
  std::string name;     // file name without .json
  std::string service;  // part before "__"
  boost::json::object body;
};

inline std::vector<Fixture> LoadFixtures() {
  std::vector<Fixture> out;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(TSCB_SOURCE_DIR) +
                                                               "/tests/data/callbacks")) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    std::string name = entry.path().stem().string();
    out.push_back(
        {name, name.substr(0, name.find("__")), boost::json::parse(text.str()).as_object()});
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

// The body as ThingSpace would send it: with the registered credentials.
inline std::string AsSent(const std::string& service, boost::json::object body) {
  body["username"] = UsernameFor(service);
  body["password"] = PasswordFor(service);
  return boost::json::serialize(body);
}

struct DaemonOptions {
  std::string request_timeout = "2s";
  std::string idle_timeout = "5s";
  std::string grace_period = "5s";
  std::string linger = "0ms";
  std::string allow_from = "[127.0.0.1/32, 198.51.100.0/24]";
  std::string trusted_proxies = "[127.0.0.1/32]";
  std::string log_level = "info";
  std::string max_connections = "100";
  bool tls = true;
  int listener_port = 0;
  int admin_port = 0;
  std::string extra_yaml;  // appended: thingspace and registration sections
  std::string api_token;   // admin.api_token (from a secret file) when set
  std::string cert_dir;    // cert.pem and key.pem; "" = the suite's test certificates
};

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = std::make_unique<TempDir>();
    MakeTestCertificates(certs_->Path());
  }
  static void TearDownTestSuite() { certs_.reset(); }

  std::string WriteConfig(const DaemonOptions& o) {
    return dir_.Write("config.yaml", WriteConfigText(o));
  }

  std::string WriteConfigText(const DaemonOptions& o) {
    std::ostringstream y;
    const std::string certs = o.cert_dir.empty() ? certs_->Path() : o.cert_dir;
    y << "account: \"0000123456-00001\"\n"
      << "log: { level: " << o.log_level << " }\n"
      << "database: { host: " << db_.Host() << ", port: " << db_.Port() << ", name: " << db_.Name()
      << ", user: " << db_.User() << " }\n"
      << "listener:\n  address: 127.0.0.1\n  port: " << o.listener_port << "\n"
      << "  tls: { enabled: " << (o.tls ? "true" : "false") << ", certificate: " << certs
      << "/cert.pem, private_key: " << certs << "/key.pem }\n"
      << "  limits: { request_timeout: " << o.request_timeout
      << ", idle_timeout: " << o.idle_timeout
      << ", max_body_bytes: 65536, max_header_bytes: 8192, max_connections: " << o.max_connections
      << " }\n"
      << "  allow_from: " << o.allow_from << "\n  trusted_proxies: " << o.trusted_proxies << "\n"
      << "services:\n";
    for (const auto& s : FixtureServices()) {
      dir_.Write("secrets/" + s, PasswordFor(s) + "\n");
      y << "  " << s << ": { username: " << UsernameFor(s) << ", password: { file: secrets/" << s
        << " } }\n";
    }
    y << "inbox: { linger: " << o.linger << " }\n"
      << "admin: { address: 127.0.0.1, port: " << o.admin_port
      << (o.api_token.empty()
              ? std::string()
              : ", api_token: { file: " + dir_.Write("secrets/api-token", o.api_token) + " }")
      << " }\n"
      << "shutdown: { grace_period: " << o.grace_period << " }\n"
      << o.extra_yaml;
    return y.str();
  }

  void StartDaemon(const DaemonOptions& options = {},
                   const std::map<std::string, std::string>& env = {}) {
    tls_ = options.tls;
    std::string config = WriteConfig(options);
    // A restart must not read the previous run's "bound on" lines.
    std::filesystem::remove(dir_.Path() + "/daemon.log");
    daemon_ = std::make_unique<DaemonProcess>(
        std::vector<std::string>{"run", "--allow-root", "--config", config},
        dir_.Path() + "/daemon.log", env);
    ASSERT_TRUE(daemon_->WaitUntilListening()) << daemon_->Log();
  }

  HttpClient Client() {
    return HttpClient(daemon_->CallbackPort(), tls_ ? certs_->Path() + "/ca.pem" : "");
  }
  HttpClient Admin() { return HttpClient(daemon_->AdminPort(), ""); }
  // A series' value once it reaches `want`, or what it is after 2 s. For
  // counters of closed connections: the daemon counts a rejection when the
  // connection's coroutine resumes, which can be just after the client saw
  // the close.
  double SettledMetric(const std::string& series, double want) {
    double value = -1;
    WaitFor([&] { return (value = MetricSample(Admin().Get("/metrics").body, series)) == want; },
            std::chrono::seconds(2));
    return value;
  }
  long long InboxRows() { return db_.Scalar("SELECT count(*) FROM tscb.inbox"); }

  static inline std::unique_ptr<TempDir> certs_;
  TestDatabase db_;
  TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  bool tls_ = true;
};

}  // namespace tscb::testing
