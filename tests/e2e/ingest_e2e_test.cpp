// The ingest path end to end: the real binary, real TLS, real PostgreSQL.
#include <fstream>
#include <iterator>
#include <set>

#include "tests/e2e/daemon_fixture.hpp"

namespace tscb::testing {
namespace {

class IngestE2eTest : public DaemonTest {};

TEST_F(IngestE2eTest, EverySpecExampleIsStoredExactlyOnceOnItsServicePath) {
  StartDaemon();
  auto fixtures = LoadFixtures();
  ASSERT_EQ(fixtures.size(), 15u);
  auto client = Client();
  for (const auto& f : fixtures) {
    auto reply = client.Post("/callbacks/" + f.service, AsSent(f.service, f.body));
    EXPECT_EQ(reply.status, 200) << f.name << ": " << reply.body << reply.error;
    EXPECT_EQ(reply.body, R"({"status":"stored"})") << f.name;
  }
  EXPECT_EQ(InboxRows(), static_cast<long long>(fixtures.size()));
  for (const auto& f : fixtures) {
    // Each example sits on its own service with its own content.
    std::string body = boost::json::serialize(f.body);
    EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE service = '" + f.service +
                         "' AND body = ('" + body + "'::jsonb - 'username' - 'password')"),
              1)
        << f.name;
  }
  // Credentials are removed before storing (spec 3.6).
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE body ? 'username' OR body ? "
                       "'password' OR body::text LIKE '%s3cr3t%'"),
            0);
  EXPECT_EQ(daemon_->Log().find("s3cr3t"), std::string::npos) << "a password reached the log";
}

TEST_F(IngestE2eTest, ResendsAreAcknowledgedWithoutASecondRow) {
  StartDaemon();
  auto fixtures = LoadFixtures();
  auto client = Client();
  for (int attempt = 1; attempt <= 4; ++attempt) {  // ThingSpace sends at most 4 times (spec 3.7)
    for (const auto& f : fixtures) {
      auto body = f.body;
      body["callbackCount"] = attempt;
      auto reply = client.Post("/callbacks/" + f.service, AsSent(f.service, body));
      ASSERT_EQ(reply.status, 200) << f.name << " attempt " << attempt;
      EXPECT_EQ(reply.body, attempt == 1 ? R"({"status":"stored"})" : R"({"status":"duplicate"})");
    }
  }
  EXPECT_EQ(InboxRows(), static_cast<long long>(fixtures.size()));
  EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE deliveries = 4 AND attempt = 4"),
            static_cast<long long>(fixtures.size()));
}

TEST_F(IngestE2eTest, SameBodyOnTwoServicesIsTwoCallbacks) {
  StartDaemon();
  auto client = Client();
  boost::json::object body{{"requestId", "r-1"}, {"status", "Success"}};
  EXPECT_EQ(client.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  EXPECT_EQ(client.Post("/callbacks/StateService", AsSent("CarrierService", body)).status, 404);
  EXPECT_EQ(client.Post("/callbacks/NiddService", AsSent("NiddService", body)).status, 200);
  EXPECT_EQ(InboxRows(), 2);
}

struct BadInput {
  const char* name;
  const char* method;
  std::string target;
  std::string body;
  std::map<std::string, std::string> headers;
  int status;
};

TEST_F(IngestE2eTest, EachBadInputGetsItsStatusAShortErrorAndStoresNothing) {
  StartDaemon();
  const std::string marker = "MARKER-7f3a";
  boost::json::object good{{"requestId", marker}, {"status", "Success"}};
  std::string valid = AsSent("CarrierService", good);
  boost::json::object wrong = good;
  wrong["username"] = UsernameFor("CarrierService");
  wrong["password"] = "wrong-" + marker;
  std::vector<BadInput> cases = {
      {"not json", "POST", "/callbacks/CarrierService", "{" + marker, {}, 400},
      {"not an object", "POST", "/callbacks/CarrierService", "[\"" + marker + "\"]", {}, 400},
      {"NUL character",
       "POST",
       "/callbacks/CarrierService",
       R"({"requestId":"\u0000)" + marker + R"("})",
       {},
       400},
      {"wrong password",
       "POST",
       "/callbacks/CarrierService",
       boost::json::serialize(wrong),
       {},
       401},
      {"no credentials",
       "POST",
       "/callbacks/CarrierService",
       boost::json::serialize(good),
       {},
       401},
      {"another service's password",
       "POST",
       "/callbacks/CarrierService",
       AsSent("NiddService", good),
       {},
       401},
      {"address not allowed",
       "POST",
       "/callbacks/CarrierService",
       valid,
       {{"X-Forwarded-For", "203.0.113.9"}},
       403},
      {"unknown path", "POST", "/callbacks/Unknown" + marker, valid, {}, 404},
      {"wrong method", "GET", "/callbacks/CarrierService", "", {}, 405},
      {"body too large", "POST", "/callbacks/CarrierService", std::string(70'000, 'x'), {}, 413},
      {"headers too large",
       "POST",
       "/callbacks/CarrierService",
       valid,
       {{"X-Padding", std::string(9'000, 'h')}},
       431},
  };
  for (const auto& c : cases) {
    auto client = Client();
    auto reply = client.Request(c.method, c.target, c.body, c.headers);
    EXPECT_EQ(reply.status, c.status) << c.name << ": " << reply.error;
    EXPECT_LT(reply.body.size(), 100u) << c.name;
    EXPECT_EQ(reply.body.find(marker), std::string::npos) << c.name << " echoed its input";
    EXPECT_NO_THROW((void)boost::json::parse(reply.body)) << c.name;
  }
  EXPECT_EQ(InboxRows(), 0);
  // Each was counted once.
  auto metrics = Admin().Get("/metrics").body;
  for (const char* line :
       {"tscb_callbacks_total{outcome=\"not_json\",service=\"CarrierService\"} 1",
        "tscb_callbacks_total{outcome=\"not_object\",service=\"CarrierService\"} 1",
        "tscb_callbacks_total{outcome=\"unstorable\",service=\"CarrierService\"} 1",
        "tscb_callbacks_total{outcome=\"bad_credentials\",service=\"CarrierService\"} 3",
        "tscb_http_rejected_total{reason=\"forbidden\"} 1",
        "tscb_http_rejected_total{reason=\"not_found\"} 1",
        "tscb_http_rejected_total{reason=\"method_not_allowed\"} 1",
        "tscb_http_rejected_total{reason=\"body_too_large\"} 1",
        "tscb_http_rejected_total{reason=\"headers_too_large\"} 1"})
    EXPECT_NE(metrics.find(line), std::string::npos) << line;
}

TEST_F(IngestE2eTest, ForwardedForFromTrustedProxyIsTheStoredSourceAddress) {
  StartDaemon();
  auto client = Client();
  boost::json::object body{{"requestId", "via-proxy"}};
  auto reply = client.Post("/callbacks/CarrierService", AsSent("CarrierService", body),
                           {{"X-Forwarded-For", "198.51.100.7"}});
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(db_.Column("SELECT host(source_ip) FROM tscb.inbox"),
            std::vector<std::string>{"198.51.100.7"});
}

TEST_F(IngestE2eTest, SlowClientIsDisconnectedAndOthersAreStillServed) {
  DaemonOptions options;
  options.request_timeout = "500ms";
  StartDaemon(options);
  auto slow = Client();
  ASSERT_TRUE(slow.WriteRaw("POST /callbacks/CarrierService HTTP/1.1\r\nHost: local"));
  auto start = std::chrono::steady_clock::now();
  auto fast = Client();
  boost::json::object body{{"requestId", "fast"}};
  EXPECT_EQ(fast.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  EXPECT_TRUE(slow.WaitForClose(5000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(InboxRows(), 1);
  EXPECT_EQ(SettledMetric("tscb_http_rejected_total{reason=\"timeout\"}", 1), 1);
}

TEST_F(IngestE2eTest, KeepAliveConnectionCarriesManyCallbacks) {
  StartDaemon();
  auto client = Client();
  for (int i = 0; i < 50; ++i) {
    boost::json::object body{{"requestId", "ka-" + std::to_string(i)}};
    auto reply = client.Post("/callbacks/NiddService", AsSent("NiddService", body));
    ASSERT_EQ(reply.status, 200) << i;
    EXPECT_EQ(reply.headers.count("Connection"), 0u) << "server asked to close";
  }
  EXPECT_EQ(InboxRows(), 50);
  auto metrics = Admin().Get("/metrics").body;
  EXPECT_NE(metrics.find("tscb_open_connections 1"), std::string::npos) << metrics;
}

TEST_F(IngestE2eTest, ConnectionsBeyondTheCapAreClosedAndTheOthersStillWork) {
  DaemonOptions options;
  options.max_connections = "2";
  StartDaemon(options);
  auto first = Client();
  auto second = Client();
  boost::json::object body{{"requestId", "cap-1"}};
  ASSERT_EQ(first.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  body["requestId"] = "cap-2";
  ASSERT_EQ(second.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  auto third = Client();
  EXPECT_FALSE(third.Connect()) << "a third connection got through a cap of 2";
  body["requestId"] = "cap-3";
  EXPECT_EQ(first.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  EXPECT_EQ(InboxRows(), 3);
  auto metrics = Admin().Get("/metrics").body;
  EXPECT_NE(metrics.find("tscb_http_rejected_total{reason=\"connection_limit\"} 1"),
            std::string::npos);
}

TEST_F(IngestE2eTest, PlainHttpOnlyWhenConfiguredAndWithAWarning) {
  DaemonOptions options;
  options.tls = false;
  StartDaemon(options);
  EXPECT_NE(daemon_->Log().find("listener.tls.enabled is false"), std::string::npos);
  EXPECT_NE(daemon_->Log().find("(plain http)"), std::string::npos);
  auto client = Client();
  boost::json::object body{{"requestId", "plain"}};
  EXPECT_EQ(client.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
  EXPECT_EQ(InboxRows(), 1);
}

// Handshake with `openssl s_client` forcing one protocol version; true when
// the server accepted it.
bool HandshakeWith(int port, const std::string& ca, const std::string& version_flag) {
  std::string cmd = "echo | openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                    " -servername localhost -CAfile " + ca + " " + version_flag +
                    " -verify_return_error";
  int rc = -1;
  std::string out = RunShell(cmd, &rc);
  return rc == 0 && out.find("Verify return code: 0 (ok)") != std::string::npos;
}

TEST_F(IngestE2eTest, OnlyTls12And13AreOffered) {
  StartDaemon();
  std::string ca = certs_->Path() + "/ca.pem";
  EXPECT_TRUE(HandshakeWith(daemon_->CallbackPort(), ca, "-tls1_3"));
  EXPECT_TRUE(HandshakeWith(daemon_->CallbackPort(), ca, "-tls1_2"));
  EXPECT_FALSE(HandshakeWith(daemon_->CallbackPort(), ca, "-tls1_1 -cipher DEFAULT@SECLEVEL=0"));
  EXPECT_FALSE(HandshakeWith(daemon_->CallbackPort(), ca, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA"))
      << "a non-AEAD (CBC) cipher was accepted";
  auto client = Client();  // the listener still serves after the refused handshakes
  boost::json::object body{{"requestId", "after-tls-probes"}};
  EXPECT_EQ(client.Post("/callbacks/CarrierService", AsSent("CarrierService", body)).status, 200);
}

}  // namespace
}  // namespace tscb::testing
