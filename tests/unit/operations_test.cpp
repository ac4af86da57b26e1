// Reload planning (which settings a SIGHUP applies, which need a restart)
// and the journal fields taken from log lines.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "config/loader.hpp"
#include "config/reload.hpp"
#include "daemon/logging.hpp"
#include "daemon/metrics.hpp"
#include "daemon/stats_sampler.hpp"

namespace tscb {
namespace {

config::Config Load(const std::string& extra, const std::string& password = "p",
                    const std::string& allow = "[127.0.0.1]") {
  std::string text =
      "account: \"0000123456-00001\"\nlistener:\n  tls: { enabled: false }\n"
      "  allow_from: " +
      allow + "\nservices:\n  CarrierService: { username: u, password: { env: PW } }\n" + extra;
  auto r = config::LoadConfigText(text, "cfg.yaml", "", [password](const std::string&) {
    return std::optional<std::string>(password);
  });
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  return *r.config;
}

TEST(ReloadPlan, SameConfigChangesNothing) {
  auto plan = config::PlanReload(Load(""), Load(""));
  EXPECT_FALSE(plan.log_level || plan.access || plan.credentials || plan.rules_file ||
               plan.tls_files);
  EXPECT_TRUE(plan.needs_restart.empty());
}

TEST(ReloadPlan, ReloadableSettingsAreAppliedOthersNeedARestart) {
  auto running = Load("");
  auto next = Load("log: { level: debug }\ninbox: { writers: 4 }\ndatabase: { port: 5433 }\n",
                   "new-password", "[10.0.0.0/8]");
  auto plan = config::PlanReload(running, next);
  EXPECT_TRUE(plan.log_level);
  EXPECT_TRUE(plan.access);
  EXPECT_TRUE(plan.credentials);
  EXPECT_EQ(plan.needs_restart, (std::vector<std::string>{"database", "inbox"}));

  auto applied = config::ApplyReloadable(running, next);
  EXPECT_EQ(applied.log.level, "debug");
  EXPECT_EQ(applied.services[0].password.Reveal(), "new-password");
  EXPECT_EQ(applied.listener.allow_from.at(0).text, "10.0.0.0/8");
  EXPECT_EQ(applied.inbox.writers, running.inbox.writers);  // still the running value
  EXPECT_EQ(applied.database.port, running.database.port);
  // Applied once, the same file plans only the restart-bound settings again.
  auto again = config::PlanReload(applied, next);
  EXPECT_FALSE(again.log_level || again.access || again.credentials);
  EXPECT_EQ(again.needs_restart.size(), 2u);
}

TEST(ReloadPlan, ANewServiceNeedsARestartAndKeepsTheRunningServices) {
  auto running = Load("");
  auto next = Load("", "p2");
  next.services.push_back({"NiddService", "n", config::Secret("x")});
  auto plan = config::PlanReload(running, next);
  EXPECT_FALSE(plan.credentials);
  EXPECT_EQ(plan.needs_restart, (std::vector<std::string>{"services"}));
  EXPECT_EQ(config::ApplyReloadable(running, next).services, running.services);
}

TEST(JournalFields, KnownKeyValueTokensBecomeFields) {
  auto fields = daemon::JournalFields(
      "callback stored service=CarrierService inbox_id=42 request_id=abc-1 client=1.2.3.4 "
      "latency_ms=1.5");
  std::vector<std::pair<std::string, std::string>> want = {
      {"SERVICE", "CarrierService"}, {"INBOX_ID", "42"}, {"REQUEST_ID", "abc-1"}};
  EXPECT_EQ(fields, want);
  // A key must start the token; trailing punctuation is not part of a value.
  auto inner = daemon::JournalFields("action_id=7 (rule=welcome, action=sms.send)");
  std::vector<std::pair<std::string, std::string>> inner_want = {{"ACTION_ID", "7"},
                                                                 {"ACTION", "sms.send"}};
  EXPECT_EQ(inner, inner_want);
  auto action = daemon::JournalFields("action 7 failed action_id=7 rule=welcome action=sms.send;");
  EXPECT_EQ(action.back(), (std::pair<std::string, std::string>{"ACTION", "sms.send"}));
  EXPECT_TRUE(daemon::JournalFields("inbox_id= rule=").empty());
}

}  // namespace
}  // namespace tscb

namespace tscb {
namespace {

std::string ReadSource(const std::string& path) {
  std::ifstream in(std::string(TSCB_SOURCE_DIR) + "/" + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The Grafana dashboard can only show what exists: every metric its queries
// name is one the daemon exports, every report view one a migration creates.
TEST(GrafanaDashboard, UsesOnlyExportedMetricsAndExistingViews) {
  auto dashboard = boost::json::parse(ReadSource("grafana/ts-callbackd.json")).as_object();
  std::string queries;
  for (const auto& panel : dashboard.at("panels").as_array())
    if (auto* targets = panel.as_object().if_contains("targets"))
      for (const auto& t : targets->as_array()) {
        const auto& o = t.as_object();
        if (auto* e = o.if_contains("expr")) queries += std::string(e->as_string()) + "\n";
        if (auto* q = o.if_contains("rawSql")) queries += std::string(q->as_string()) + "\n";
      }

  // Every family, with a child in each (a family without one prints nothing).
  daemon::Metrics metrics({"CarrierService"});
  metrics.CountApiCall("GET", "/v1/x", "success");
  metrics.CountLogin("token_ok");
  metrics.CountRegistration("CarrierService", "kept");
  metrics.CountEvent("sms.mo");
  metrics.CountUnmatched("CarrierService");
  metrics.CountOperatorApi(200);
  metrics.CountReconciled("succeeded");
  metrics.CountAction("sms.send", "succeeded");
  metrics.CountRulesLoad("loaded", 1);
  metrics.CountConfigReload("applied");
  storage::OperationalStats stats;
  stats.by_state = true;
  metrics.SetStats(stats);
  metrics.SetRegistrationState("CarrierService", "registered");
  metrics.CountSpoolAppend("ok", 1);
  std::string exported = metrics.Serialize();

  std::regex metric(R"(\btscb_[a-z_]+)");
  int checked = 0;
  for (auto it = std::sregex_iterator(queries.begin(), queries.end(), metric);
       it != std::sregex_iterator(); ++it) {
    std::string name = it->str();
    for (const char* suffix : {"_bucket", "_count", "_sum"})
      if (name.size() > std::strlen(suffix) &&
          name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0 &&
          exported.find("# TYPE " + name + " ") == std::string::npos)
        name.resize(name.size() - std::strlen(suffix));
    EXPECT_NE(exported.find("# TYPE " + name + " "), std::string::npos) << name;
    ++checked;
  }
  EXPECT_GT(checked, 20);

  std::string migrations;
  for (const auto& f :
       std::filesystem::directory_iterator(std::string(TSCB_SOURCE_DIR) + "/storage/migrations"))
    migrations += ReadSource("storage/migrations/" + f.path().filename().string());
  std::regex view(R"(report\.([a-z_]+))");
  int views = 0;
  for (auto it = std::sregex_iterator(queries.begin(), queries.end(), view);
       it != std::sregex_iterator(); ++it, ++views)
    EXPECT_NE(migrations.find("CREATE VIEW report." + (*it)[1].str() + " AS"), std::string::npos)
        << it->str();
  EXPECT_GE(views, 4);
}

}  // namespace
}  // namespace tscb

// The endpoint label of ThingSpace call metrics, and the key of the client's
// default per-endpoint rate limiter: bounded however many accounts, requests
// and devices there are.
// Counting requests and actions by state scans both tables: once that takes
// long, it is spaced so that it costs at most a twentieth of the time.
TEST(StatsSampler, CountsByStateTakeAtMostATwentiethOfTheTime) {
  using std::chrono::milliseconds;
  EXPECT_EQ(tscb::daemon::CountSpacing(milliseconds(5000), milliseconds(10)), milliseconds(5000));
  EXPECT_EQ(tscb::daemon::CountSpacing(milliseconds(5000), milliseconds(250)), milliseconds(5000));
  EXPECT_EQ(tscb::daemon::CountSpacing(milliseconds(5000), milliseconds(251)), milliseconds(5020));
  EXPECT_EQ(tscb::daemon::CountSpacing(milliseconds(5000), std::chrono::seconds(3)),
            std::chrono::seconds(60));
  EXPECT_EQ(tscb::daemon::CountSpacing(milliseconds(5000), std::chrono::microseconds(250'001)),
            milliseconds(5001));
}

TEST(EndpointOf, AccountsIdsAndServiceNamesBecomePlaceholders) {
  using tscb::daemon::Metrics;
  EXPECT_EQ(Metrics::EndpointOf("/accounts/0000123456-00001/requests/"
                                "4f1b1c2e-9a7d-4a55-8e0b-3c1d2e4f5a6b/status"),
            "/accounts/{}/requests/{}/status");
  EXPECT_EQ(Metrics::EndpointOf("/accounts/0000123456-00001/requests/"
                                "9d0c7e3a-1b2f-4c8d-a6e5-f0b1c2d3e4f5/status?x=1"),
            "/accounts/{}/requests/{}/status");
  EXPECT_EQ(Metrics::EndpointOf("/callbacks/0000123456-00001/name/CarrierService"),
            "/callbacks/{}/name/{}");
  EXPECT_EQ(Metrics::EndpointOf("/devices/actions/list"), "/devices/actions/list");
  EXPECT_EQ(Metrics::EndpointOf(""), "/");
}
