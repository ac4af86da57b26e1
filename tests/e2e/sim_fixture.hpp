#pragma once
// E2E fixture with the carrier simulator: the real daemon (registering with
// the simulator on a port ThingSpace accepts), the real tscb-sim, both over
// TLS, and helpers to drive the simulator's control API and read its log.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "tests/e2e/daemon_fixture.hpp"

namespace tscb::testing {

namespace json = boost::json;
using namespace std::chrono_literals;
constexpr const char* kAccount = "0000123456-00001";

// A free port from ThingSpace's accepted range (spec 3.5), so that the
// public URL passes the daemon's own check. Tests run two at a time, and a
// test that restarts its daemon leaves the port free for a moment: each
// port is claimed with a lock file held until the test process ends
// (scripts/common.sh's thingspace_port honours the same locks).
inline int FreeThingSpacePort() {
  for (int i = 0; i < 21; ++i) {
    int port = 28200 + static_cast<int>((getpid() + i) % 21);
    int lock = open(("/tmp/tscb-thingspace-port-" + std::to_string(port) + ".lock").c_str(),
                    O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0) continue;
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
      close(lock);
      continue;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (ok) return port;  // the lock stays held (the fd is never closed)
    close(lock);
  }
  return 0;
}

inline std::string S(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : "";
}

struct SimCall {
  double at_ms;
  std::string method, target, authorization, session, body;
  int status;
};

// ThingSpace's secrets in these tests: distinctive, so a test can look for
// them in logs and tables.
inline constexpr const char* kAppSecret = "appsecret-Zq81xV";
inline constexpr const char* kUwsPassword = "uwspw-Kd02rT";

class ThingSpaceTest : public DaemonTest {
 protected:
  void StartSim(const std::string& faults = "{}", int retry_interval_ms = 300,
                const std::vector<std::string>& extra_args = {}) {
    std::vector<std::string> args = {"--cert",
                                     certs_->Path() + "/cert.pem",
                                     "--key",
                                     certs_->Path() + "/key.pem",
                                     "--ca",
                                     certs_->Path() + "/ca.pem",
                                     "--app-key",
                                     "app-key",
                                     "--app-secret",
                                     kAppSecret,
                                     "--uws-user",
                                     "uws-user",
                                     "--uws-password",
                                     kUwsPassword,
                                     "--retry-interval",
                                     std::to_string(retry_interval_ms),
                                     "--faults",
                                     faults};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    sim_ = std::make_unique<DaemonProcess>(args, dir_.Path() + "/sim.log",
                                           std::map<std::string, std::string>{}, TSCB_SIM_BINARY);
    auto port = sim_->WaitForPort("simulator bound on [^ \n]*:([0-9]+)");
    ASSERT_TRUE(port) << sim_->Log();
    sim_port_ = *port;
  }

  void TearDown() override {
    if (daemon_) {
      daemon_->Signal(SIGTERM);
      daemon_->Wait(10s);
    }
    if (sim_) {
      sim_->Signal(SIGTERM);
      sim_->Wait(5s);
    }
  }

  DaemonOptions Options(const std::string& interval = "1h", const std::string& extra = "") {
    if (public_port_ == 0) public_port_ = FreeThingSpacePort();
    dir_.Write("secrets/app-key", "app-key\n");
    dir_.Write("secrets/app-secret", std::string(kAppSecret) + "\n");
    dir_.Write("secrets/uws", std::string(kUwsPassword) + "\n");
    std::string base = "https://localhost:" + std::to_string(sim_port_);
    DaemonOptions o;
    o.listener_port = public_port_;
    o.extra_yaml =
        "thingspace:\n"
        "  oauth_url: " +
        base +
        "/api/ts/v1/oauth2/token\n"
        "  m2m_url: " +
        base +
        "/api/m2m/v1\n"
        "  ca_file: " +
        certs_->Path() +
        "/ca.pem\n"
        "  app_key: { file: secrets/app-key }\n"
        "  app_secret: { file: secrets/app-secret }\n"
        "  username: uws-user\n"
        "  password: { file: secrets/uws }\n"
        "  retry: { max_attempts: 5, initial: 100ms, max: 2s }\n"
        "registration:\n"
        "  public_url: https://localhost:" +
        std::to_string(public_port_) +
        "/callbacks\n"
        "  interval: " +
        interval + "\n" + extra;
    return o;
  }

  HttpClient Sim() { return HttpClient(sim_port_, certs_->Path() + "/ca.pem"); }

  json::value SimGet(const std::string& path) {
    auto reply = Sim().Get(path);
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body << reply.error;
    return json::parse(reply.body.empty() ? "null" : reply.body);
  }
  json::value SimPost(const std::string& path, const json::value& body) {
    auto reply = Sim().Post(path, json::serialize(body));
    EXPECT_EQ(reply.status, 200) << path << ": " << reply.body;
    return json::parse(reply.body.empty() ? "null" : reply.body);
  }

  // What the daemon sent to the simulator, in order.
  std::vector<SimCall> Calls() {
    std::vector<SimCall> out;
    json::value log = SimGet("/_sim/log");
    for (const auto& r : log.at("requests").as_array()) {
      const auto& o = r.as_object();
      SimCall call;
      call.at_ms = o.at("at_ms").to_number<double>();
      call.method = S(o.at("method"));
      call.target = S(o.at("target"));
      call.authorization = S(o.at("authorization"));
      call.session = S(o.at("session"));
      call.body = S(o.at("body"));
      call.status = static_cast<int>(o.at("status").as_int64());
      out.push_back(std::move(call));
    }
    return out;
  }
  int Count(const std::string& method, const std::string& target_part) {
    int n = 0;
    for (const auto& c : Calls())
      if (c.method == method && c.target.find(target_part) != std::string::npos) ++n;
    return n;
  }

  // The /readyz body; {} while the daemon does not answer (restarting).
  json::object Ready() {
    auto reply = Admin().Get("/readyz");
    boost::system::error_code ec;
    auto v = json::parse(reply.body, ec);
    return !ec && v.is_object() ? v.as_object() : json::object{};
  }
  bool AllRegistered() {
    auto r = Ready();
    auto* reg = r.if_contains("registration");
    if (!reg) return false;
    for (const auto& [service, state] : reg->as_object())
      if (S(state.as_object().at("state")) != "registered") return false;
    return reg->as_object().size() == FixtureServices().size();
  }
  std::string Metrics() { return Admin().Get("/metrics").body; }

  std::string OurUrl(const std::string& service) {
    return "https://localhost:" + std::to_string(public_port_) + "/callbacks/" + service;
  }

  std::unique_ptr<DaemonProcess> sim_;
  int sim_port_ = 0;
  int public_port_ = 0;
};

}  // namespace tscb::testing
