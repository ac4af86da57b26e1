// Reload planning (which settings a SIGHUP applies, which need a restart)
// and the journal fields taken from log lines.
#include <gtest/gtest.h>

#include "config/loader.hpp"
#include "config/reload.hpp"
#include "daemon/logging.hpp"

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
