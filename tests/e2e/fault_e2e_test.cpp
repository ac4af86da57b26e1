// Crash and fault tests (issue 7), bounded in time, on loopback: the
// simulator delivers waves of callbacks with ThingSpace's resend behaviour
// (every 1 s or 250 ms here instead of 5 minutes, 3 resends) while the daemon is
// killed with SIGKILL, or its database connections are killed. Every
// callback is counted: sent, acknowledged, stored; a run where an
// acknowledged callback is not stored exactly once, or where
// sent != acknowledged + never acknowledged, fails. The counts are printed
// (the closing note's table comes from them).
#include <signal.h>

#include <cstdio>
#include <map>
#include <thread>

#include "tests/e2e/sim_fixture.hpp"

namespace tscb::testing {
namespace {

constexpr const char* kService = "EnhancedConnectivityService";

class FaultTest : public ThingSpaceTest {
 protected:
  struct Tally {
    long long sent = 0, acknowledged = 0, never_acknowledged = 0, stored = 0;
    long long duplicates = 0, lost = 0, resends = 0;
  };

  // Sends `waves` waves of `per_wave` unsolicited device SMS, `gap` apart.
  std::thread Load(int waves, int per_wave, std::chrono::milliseconds gap) {
    return std::thread([this, waves, per_wave, gap] {
      for (int w = 0; w < waves; ++w) {
        Sim().Post("/_sim/unsolicited",
                   json::serialize(json::object{
                       {"account", kAccount}, {"service", kService}, {"count", per_wave}}));
        std::this_thread::sleep_for(gap);
      }
    });
  }

  // Waits until the simulator has finished every delivery (acknowledged, or
  // given up after the last resend), then counts.
  Tally Settle() {
    json::object deliveries;
    EXPECT_TRUE(WaitFor(
        [&] {
          deliveries = SimGet("/_sim/deliveries").as_object();
          for (const auto& [state, n] : deliveries.at("counts").as_object())
            if (state != "acked" && state != "failed") return false;
          return true;
        },
        60s));
    Tally t;
    std::map<std::string, std::string> state_of;  // requestId -> acked | failed
    for (const auto& d : deliveries.at("deliveries").as_array()) {
      const auto& o = d.as_object();
      if (S(o.at("service")) != kService) continue;
      ++t.sent;
      state_of[S(o.at("requestId"))] = S(o.at("state"));
      t.resends += static_cast<long long>(o.at("statuses").as_array().size()) - 1;
    }
    for (const auto& [id, state] : state_of) {
      if (state == "acked") ++t.acknowledged;
      if (state == "failed") ++t.never_acknowledged;
    }
    t.stored = db_.Scalar(std::string("SELECT count(*) FROM tscb.inbox WHERE service = '") +
                          kService + "'");
    t.duplicates = t.stored - db_.Scalar(std::string("SELECT count(DISTINCT request_id) FROM "
                                                     "tscb.inbox WHERE service = '") +
                                         kService + "'");
    auto stored_ids = db_.Column(
        std::string("SELECT request_id FROM tscb.inbox WHERE service = '") + kService + "'");
    std::set<std::string> stored(stored_ids.begin(), stored_ids.end());
    for (const auto& [id, state] : state_of)
      if (state == "acked" && !stored.count(id)) ++t.lost;
    for (const auto& id : stored)
      EXPECT_TRUE(state_of.count(id)) << "stored but never sent: " << id;
    return t;
  }

  static void Print(const char* fault, const Tally& t) {
    std::printf(
        "[ fault    ] %s: sent %lld, acknowledged %lld, never acknowledged %lld, stored %lld, "
        "duplicates %lld, lost %lld (resends %lld)\n",
        fault, t.sent, t.acknowledged, t.never_acknowledged, t.stored, t.duplicates, t.lost,
        t.resends);
  }

  void ExpectEveryEventOnce() {
    ASSERT_TRUE(WaitFor(
        [&] { return db_.Scalar("SELECT count(*) FROM tscb.inbox WHERE state = 'pending'") == 0; },
        30s));
    EXPECT_EQ(db_.Scalar("SELECT count(*) FROM tscb.inbox i WHERE (SELECT count(*) FROM "
                         "tscb.events e WHERE e.inbox_id = i.id) <> 1"),
              0);
  }
};

TEST_F(FaultTest, SigkillUnderLoadWithResendsLosesNothingAndStoresEachOnce) {
  StartSim("{}", 1000);  // a 3 s resend window: longer than a kill and a restart
  auto options = Options();
  StartDaemon(options);
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();

  // Each round: a wave, SIGKILL while it is being delivered, a second wave
  // while the daemon is down, a restart within the resend window.
  auto wave = [&] {
    Sim().Post(
        "/_sim/unsolicited",
        json::serialize(json::object{{"account", kAccount}, {"service", kService}, {"count", 40}}));
  };
  for (int kill = 0; kill < 3; ++kill) {
    std::thread during(wave);
    std::this_thread::sleep_for(5ms);
    daemon_->Signal(SIGKILL);
    daemon_->Wait(5s);
    during.join();
    wave();
    std::this_thread::sleep_for(300ms);
    StartDaemon(options);  // same port: the resends find it again
    wave();
  }
  Tally t = Settle();
  Print("SIGKILL x3 under load", t);
  EXPECT_EQ(t.sent, 360);
  EXPECT_GT(t.resends, 0);             // the kills did hit deliveries
  EXPECT_EQ(t.never_acknowledged, 0);  // every one got through on a resend
  EXPECT_EQ(t.stored, t.sent);
  EXPECT_EQ(t.sent, t.acknowledged + t.never_acknowledged);
  EXPECT_EQ(t.lost, 0);
  EXPECT_EQ(t.duplicates, 0);
  EXPECT_GE(t.stored, t.acknowledged);
  EXPECT_GT(t.acknowledged, 0);
  ExpectEveryEventOnce();
}

TEST_F(FaultTest, DatabaseConnectionsKilledUnderLoadReconnectWithoutLoss) {
  StartSim("{}", 250);
  auto options = Options();
  options.extra_yaml += "spool: { file: " + dir_.Path() + "/state/inbox.spool }\n";
  StartDaemon(options);
  ASSERT_TRUE(WaitFor([&] { return AllRegistered(); })) << daemon_->Log();

  auto load = Load(8, 40, 250ms);
  long long killed = 0;  // the daemon's connections: writers, processor, sampler, health
  for (int kill = 0; kill < 6; ++kill) {
    std::this_thread::sleep_for(300ms);
    killed += db_.Scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid()");
  }
  load.join();
  EXPECT_GE(killed, 6);
  Tally t = Settle();
  Print("pg_terminate_backend x6 under load", t);
  EXPECT_EQ(t.sent, 320);
  // The writers reconnect (or spool): every callback is acknowledged.
  EXPECT_EQ(t.acknowledged, t.sent);
  EXPECT_EQ(t.lost, 0);
  EXPECT_EQ(t.duplicates, 0);
  EXPECT_EQ(t.stored, t.sent);
  ExpectEveryEventOnce();
}

}  // namespace
}  // namespace tscb::testing
