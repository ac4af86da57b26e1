// The callback listener's TLS as clients and scanners see it: OCSP stapling
// from a real responder (`openssl ocsp`), handshakes without one, and
// testssl.sh finding nothing rated MEDIUM or worse.
#include <fstream>
#include <iterator>
#include <thread>

#include "tests/e2e/daemon_fixture.hpp"

namespace tscb::testing {
namespace {

using namespace std::chrono_literals;

class TlsE2eTest : public DaemonTest {
 protected:
  // Certificates naming an OCSP responder on `ocsp_port_`; with `responder`,
  // `openssl ocsp` answers there (bounded: 200 requests at most).
  void StartWithOcsp(bool responder) {
    ocsp_port_ = FreeLoopbackPort();
    MakeTestCertificates(ocsp_certs_.Path(),
                         "http://127.0.0.1:" + std::to_string(ocsp_port_) + "/");
    if (responder) {
      const std::string d = ocsp_certs_.Path();
      responder_ = std::make_unique<DaemonProcess>(
          std::vector<std::string>{"ocsp", "-index", d + "/index.txt", "-port",
                                   std::to_string(ocsp_port_), "-rsigner", d + "/ca.pem", "-rkey",
                                   d + "/ca.key", "-CA", d + "/ca.pem", "-nrequest", "200"},
          dir_.Path() + "/ocsp.log", std::map<std::string, std::string>{}, "/usr/bin/openssl");
      ASSERT_TRUE(WaitFor(
          [&] { return responder_->Log().find("waiting for OCSP client") != std::string::npos; },
          10s))
          << responder_->Log();
    }
    DaemonOptions options;
    options.cert_dir = ocsp_certs_.Path();
    StartDaemon(options);
  }
  // `openssl s_client -status`: the handshake's output.
  std::string StatusHandshake() {
    return RunShell("echo | openssl s_client -status -connect 127.0.0.1:" +
                    std::to_string(daemon_->CallbackPort()) + " -servername localhost -CAfile " +
                    ocsp_certs_.Path() + "/ca.pem -verify_return_error");
  }
  std::string Metrics() { return Admin().Get("/metrics").body; }

  TempDir ocsp_certs_;
  int ocsp_port_ = 0;
  std::unique_ptr<DaemonProcess> responder_;
};

TEST_F(TlsE2eTest, TheCertificatesOcspStatusIsStapled) {
  StartWithOcsp(true);
  ASSERT_TRUE(WaitFor(
      [&] { return daemon_->Log().find("ocsp: stapling the status") != std::string::npos; }, 15s))
      << daemon_->Log() << responder_->Log();
  auto out = StatusHandshake();
  EXPECT_NE(out.find("OCSP Response Status: successful"), std::string::npos) << out;
  EXPECT_NE(out.find("Cert Status: good"), std::string::npos) << out;
  EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  auto metrics = Metrics();
  EXPECT_NE(metrics.find("tscb_ocsp_fetches_total{result=\"good\"} 1"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("tscb_ocsp_staple_valid_until_timestamp_seconds 0\n"), std::string::npos);
  // The responder gone, the response in hand is still stapled.
  responder_->Signal(SIGTERM);
  responder_->Wait(5s);
  out = StatusHandshake();
  EXPECT_NE(out.find("Cert Status: good"), std::string::npos) << out;
  HttpClient client(daemon_->CallbackPort(), ocsp_certs_.Path() + "/ca.pem");
  EXPECT_EQ(client
                .Post("/callbacks/CarrierService",
                      AsSent("CarrierService", boost::json::object{{"requestId", "ocsp"}}))
                .status,
            200);
}

TEST_F(TlsE2eTest, WithoutAResponderHandshakesGoOnWithoutAStaple) {
  StartWithOcsp(false);
  ASSERT_TRUE(WaitFor(
      [&] { return daemon_->Log().find("no response is stapled") != std::string::npos; }, 15s))
      << daemon_->Log();
  auto out = StatusHandshake();
  EXPECT_NE(out.find("OCSP response: no response sent"), std::string::npos) << out;
  EXPECT_NE(out.find("Verify return code: 0 (ok)"), std::string::npos) << out;
  EXPECT_NE(Metrics().find("tscb_ocsp_fetches_total{result=\"error\"} 1"), std::string::npos);
}

// A client that comes back resumes its session instead of a full handshake:
// a TLS 1.3 ticket, and for TLS 1.2 both a ticket and a session id from the
// server's cache. `openssl s_client` sends one request (so that it reads the
// ticket the server sends after the handshake) and saves the session.
TEST_F(TlsE2eTest, ReturningClientsResumeTheirSession) {
  StartDaemon();
  const std::string session = dir_.Path() + "/session.pem";
  auto handshake = [&](const std::string& flags) {
    return RunShell(
        "printf 'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | "
        "timeout 10 openssl s_client -ign_eof -connect 127.0.0.1:" +
        std::to_string(daemon_->CallbackPort()) + " -servername localhost -CAfile " +
        certs_->Path() + "/ca.pem -verify_return_error " + flags + " 2>&1");
  };
  for (const std::string version : {"-tls1_3", "-tls1_2", "-tls1_2 -no_ticket"}) {
    std::remove(session.c_str());
    auto first = handshake(version + " -sess_out " + session);
    EXPECT_NE(first.find("New, TLSv1."), std::string::npos) << version << first;
    EXPECT_NE(first.find("Verify return code: 0 (ok)"), std::string::npos) << version << first;
    auto again = handshake(version + " -sess_in " + session);
    EXPECT_NE(again.find("Reused, TLSv1."), std::string::npos) << version << again;
    EXPECT_NE(again.find("HTTP/1.1 "), std::string::npos) << version << again;
  }
  // After a restart (new ticket keys, an empty cache) an old session is
  // declined quietly: a full handshake, the request served.
  std::remove(session.c_str());
  EXPECT_NE(handshake("-tls1_3 -sess_out " + session).find("New, TLSv1.3"), std::string::npos);
  daemon_->Signal(SIGTERM);
  ASSERT_EQ(daemon_->Wait(10s), 0);
  StartDaemon();
  auto stale = handshake("-tls1_3 -sess_in " + session);
  EXPECT_NE(stale.find("New, TLSv1.3"), std::string::npos) << stale;
  EXPECT_NE(stale.find("HTTP/1.1 "), std::string::npos) << stale;
}

// testssl.sh (Debian's testssl.sh, which scripts/test.sh installs) against
// the listener with a stapling certificate: nothing rated MEDIUM or worse.
TEST_F(TlsE2eTest, TestsslFindsNothingRatedMediumOrWorse) {
  StartWithOcsp(true);
  ASSERT_TRUE(WaitFor(
      [&] { return daemon_->Log().find("ocsp: stapling the status") != std::string::npos; }, 15s));
  const std::string json = dir_.Path() + "/testssl.json";
  int rc = 0;
  // Everything but the per-cipher listing and the client simulation (long,
  // and not rated): protocols, cipher categories, forward secrecy, server
  // preferences and defaults (certificate, OCSP), HTTP headers, vulnerabilities.
  auto out = RunShell(
      "testssl --quiet --color 0 --warnings off --nodns none -p -s -f -P -S -h -U "
      "--add-ca " +
          ocsp_certs_.Path() + "/ca.pem --jsonfile " + json +
          " --ip 127.0.0.1 localhost:" + std::to_string(daemon_->CallbackPort()),
      &rc);
  std::ifstream in(json);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  ASSERT_FALSE(text.empty()) << "testssl wrote no findings (exit " << rc << "):\n" << out;
  auto findings = boost::json::parse(text).as_array();
  EXPECT_GT(findings.size(), 50u) << out;
  bool stapling_seen = false;
  for (const auto& f : findings) {
    const auto& o = f.as_object();
    std::string severity(o.at("severity").as_string());
    std::string id(o.at("id").as_string());
    std::string finding = boost::json::serialize(o.at("finding"));
    if (id == "OCSP_stapling") {
      stapling_seen = true;
      EXPECT_EQ(finding.find("not offered"), std::string::npos) << finding;
    }
    EXPECT_TRUE(severity != "MEDIUM" && severity != "HIGH" && severity != "CRITICAL")
        << id << " " << severity << ": " << finding;
    if (severity == "LOW" || severity == "WARN")
      std::printf("[ info ] testssl %s %s: %s\n", severity.c_str(), id.c_str(), finding.c_str());
  }
  EXPECT_TRUE(stapling_seen);
}

}  // namespace
}  // namespace tscb::testing
