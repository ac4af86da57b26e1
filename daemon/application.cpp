#include "daemon/application.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <ctime>
#include <thread>

#include "config/loader.hpp"
#include "config/reload.hpp"

#include "daemon/admin_endpoint.hpp"
#include "daemon/callback_endpoint.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/health.hpp"
#include "daemon/http_server.hpp"
#include "daemon/inbox_writer.hpp"
#include "daemon/io_pool.hpp"
#include "daemon/logging.hpp"
#include "daemon/metrics.hpp"
#include "daemon/operator_api.hpp"
#include "daemon/processor.hpp"
#include "daemon/reconciler.hpp"
#include "daemon/rule_book.hpp"
#include "daemon/spool.hpp"
#include "daemon/stats_sampler.hpp"
#include "daemon/thingspace_worker.hpp"
#include "daemon/thread_name.hpp"
#include "daemon/tls_context.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"
#include "storage/pg/pg_inbox_store.hpp"
#include "storage/pg/pg_processing_store.hpp"

namespace tscb::daemon {
namespace {

// Applies or checks migrations before anything listens. Throws on failure.
void PrepareSchema(const config::DatabaseConfig& db) {
  auto conn = storage::pg::Connect(db.ConnectionString("migrate"));
  if (db.migrate_on_start) {
    auto report = storage::pg::Migrate(*conn, [](const storage::pg::Migration& m) {
      spdlog::info("applying migration {}", m.name);
    });
    spdlog::info("database schema at version {} ({} migration(s) applied, {} partition(s) created)",
                 report.to_version, report.applied.size(), report.partitions_created);
    return;
  }
  auto state = storage::pg::ReadSchemaState(*conn);
  if (state.current != state.latest)
    throw storage::StorageError("database schema is at version " + std::to_string(state.current) +
                                    ", this binary needs " + std::to_string(state.latest) +
                                    "; run `ts-callbackd migrate`",
                                false);
  storage::pg::EnsurePartitions(*conn);
}

// spool.file, or $STATE_DIRECTORY/inbox.spool under systemd; "" = no spool.
std::string SpoolFile(const config::SpoolConfig& spool) {
  if (!spool.enabled) return "";
  if (!spool.file.empty()) return spool.file;
  const char* state = std::getenv("STATE_DIRECTORY");
  if (!state || !*state) return "";
  std::string dir = state;
  if (auto colon = dir.find(':'); colon != std::string::npos) dir.resize(colon);  // several dirs
  return dir + "/inbox.spool";
}

// Each connection is a descriptor: raise the soft limit towards the hard one
// when it is too low (the unit sets LimitNOFILE=, but a daemon started
// elsewhere may have a soft limit of 1024) and say so when even that cannot
// hold max_connections plus the daemon's own files, sockets and connections.
void RaiseDescriptorLimit(std::size_t max_connections) {
  constexpr rlim_t kReserve = 256;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < max_connections + kReserve && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < max_connections + kReserve)
    spdlog::warn(
        "listener.limits.max_connections is {} but the daemon may open only {} file descriptors; "
        "connections beyond about {} will fail to be accepted (raise LimitNOFILE=)",
        max_connections, limit.rlim_cur, limit.rlim_cur > kReserve ? limit.rlim_cur - kReserve : 0);
}

ServerLimits ToServerLimits(const config::ListenerLimits& l) {
  return {l.max_body_bytes, l.max_header_bytes, l.request_timeout, l.idle_timeout,
          l.max_connections};
}

// systemd's RELOADING=1 carries the CLOCK_MONOTONIC time the reload began.
void NotifyReloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto usec = static_cast<unsigned long long>(ts.tv_sec) * 1'000'000ULL +
              static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
  sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu", usec);
}

// What a SIGHUP touches. Everything is validated before anything changes:
// the config file, the TLS certificate and key, the rules file and the log
// file. Then the reloadable settings are swapped in; the rest is reported
// as needing a restart. Returns whether the new config was applied.
struct Reloadable {
  config::Config& running;
  CallbackEndpoint& callbacks;
  HttpServer& callback_server;
  RuleBook& rules;
  Metrics& metrics;
};

bool ReloadConfig(Reloadable& r) {
  const std::string file = r.running.source_file;
  auto reject = [&](const std::string& why) {
    spdlog::error("reload: {} rejected: {}; the running configuration stays", file, why);
    r.metrics.CountConfigReload("rejected");
    return false;
  };
  auto loaded = config::LoadConfigFile(file);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) spdlog::error("reload: {}", e);
    return reject(std::to_string(loaded.errors.size()) + " error(s) above");
  }
  const config::Config& next = *loaded.config;
  for (const auto& w : loaded.warnings) spdlog::warn("reload: {}", w);
  config::ReloadPlan plan = config::PlanReload(r.running, next);

  std::shared_ptr<ssl::context> tls;
  if (r.running.listener.tls.enabled && next.listener.tls.enabled) {
    try {
      tls = MakeServerTlsContext(next.listener.tls, &r.metrics);
    } catch (const std::exception& e) {
      return reject(e.what());
    }
  }
  auto rules = r.rules.Stage(next.rules.file);
  if (!rules) return reject("rules file " + next.rules.file + " is not valid (errors above)");
  if (auto error = ReconfigureLogging(next.log); !error.empty()) return reject(error);

  r.callbacks.Apply(next);
  const bool tls_reread = tls != nullptr;
  if (tls) r.callback_server.SetTls(std::move(tls));
  r.rules.Install(next.rules.file, std::move(rules));
  std::vector<std::string> applied;
  if (plan.log_level) applied.emplace_back("log");
  if (plan.access) applied.emplace_back("allow-list");
  if (plan.credentials) applied.emplace_back("service credentials");
  if (tls_reread) applied.emplace_back("TLS certificate re-read");
  applied.emplace_back("rules re-read");
  for (const auto& path : plan.needs_restart)
    spdlog::warn("reload: {} changed in {}; it takes effect only after a restart", path, file);
  std::string what;
  for (const auto& a : applied) what += (what.empty() ? "" : ", ") + a;
  spdlog::info("reload: {} applied ({})", file, what);
  r.running = config::ApplyReloadable(r.running, next);
  r.metrics.CountConfigReload("applied");
  return true;
}

}  // namespace

int RunDaemon(const config::Config& config) {
  try {
    PrepareSchema(config.database);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: database {}: {}", config.database.Describe(), e.what());
    return 1;
  }

  std::vector<std::string> service_names;
  for (const auto& s : config.services) service_names.push_back(s.name);
  Metrics metrics(service_names);
  std::shared_ptr<ssl::context> tls;
  if (config.listener.tls.enabled) {
    try {
      tls = MakeServerTlsContext(config.listener.tls, &metrics);
    } catch (const std::exception& e) {
      spdlog::critical("cannot start: {}", e.what());
      return 1;
    }
  } else {
    spdlog::warn(
        "listener.tls.enabled is false: callbacks are accepted over plain HTTP; only do "
        "this behind a TLS-terminating proxy");
  }

  // Each part of the daemon names itself in its connections' application_name.
  auto inbox_store = [&config](const char* role) {
    return [conn = config.database.ConnectionString(role)] {
      return std::make_unique<storage::pg::PgInboxStore>(conn);
    };
  };
  InboxWriter writer(inbox_store("inbox"), config.inbox, &metrics);
  Health health(config.database.ConnectionString("health"), std::chrono::seconds(2));

  // The local spool for database outages, checked (and a torn tail cut)
  // before anything listens; what a previous run left is drained at once.
  std::unique_ptr<Spool> spool;
  std::unique_ptr<SpoolDrainer> drainer;
  const std::string spool_file = SpoolFile(config.spool);
  if (!spool_file.empty()) {
    try {
      spool = std::make_unique<Spool>(spool_file, config.spool.max_bytes, &metrics);
    } catch (const std::exception& e) {
      spdlog::critical("cannot start: {}", e.what());
      return 1;
    }
    drainer = std::make_unique<SpoolDrainer>(*spool, inbox_store("spool"), &metrics);
    writer.UseSpool(spool.get(), [d = drainer.get()] { d->Wake(); });
    spdlog::info("spool: {} (at most {} MiB)", spool_file, config.spool.max_bytes >> 20);
  } else {
    spdlog::warn(
        "no spool ({}): while PostgreSQL cannot take callbacks they are answered 503 and "
        "ThingSpace resends them",
        config.spool.enabled ? "spool.file is unset and there is no $STATE_DIRECTORY"
                             : "spool.enabled is false");
  }

  int threads = config.listener.threads > 0 ? config.listener.threads
                                            : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  // The callback connections run on `threads` network threads; the main
  // thread runs the accept loops, the admin listener, signals and timers.
  IoPool network(threads);
  asio::io_context ioc(1);

  RuleBook rules(config.rules.file, &metrics);
  if (!rules.Reload()) {
    spdlog::critical("cannot start: the rules file {} is not valid (errors above)",
                     config.rules.file);
    return 1;
  }
  using Planning = storage::pg::PgProcessingStore::Planning;
  auto processing_store = [&config](const char* role, Planning planning = Planning::kPerCall) {
    return [conn = config.database.ConnectionString(role), planning] {
      return std::make_unique<storage::pg::PgProcessingStore>(conn, planning);
    };
  };
  Processor processor(processing_store("processor", Planning::kPrepared),
                      ProcessorOptions{config.processing.workers, config.processing.batch_max,
                                       config.processing.poll_interval, config.actions.max_attempts,
                                       config.account, config.processing.linger},
                      &metrics, &rules);
  Dispatcher dispatcher(config, processing_store("dispatcher", Planning::kPrepared), &metrics);
  processor.OnActionsPlanned([&dispatcher] { dispatcher.Wake(); });
  OperatorApi operator_api(config, processor, &metrics);
  Reconciler reconciler(config, processing_store("reconciler"), &metrics, &rules);
  // Without a ThingSpace client the reconciler only times requests out and
  // the dispatcher only sends http.post actions, on a thread of their own.
  asio::io_context reconcile_ioc(1);
  std::thread reconcile_thread;

  CallbackEndpoint callbacks(config, writer, metrics);
  AdminEndpoint admin(health, metrics);
  admin.SetOperatorApi(&operator_api);
  if (spool)
    admin.AddReadinessPart([&](boost::json::object& body) {
      auto s = spool->GetStats();
      body["spool"] =
          boost::json::object{{"file", spool->Path()},
                              {"bytes", s.bytes},
                              {"records", s.records},
                              {"oldest_seconds", static_cast<std::int64_t>(s.oldest_seconds)}};
      return true;  // spooling is how the daemon stays available; readiness says it
    });
  std::unique_ptr<ThingSpaceWorker> thingspace;
  if (config.thingspace.enabled) {
    try {
      thingspace = std::make_unique<ThingSpaceWorker>(config, &metrics);
    } catch (const std::exception& e) {
      spdlog::critical("cannot start: thingspace client: {}", e.what());
      return 1;
    }
    admin.AddReadinessPart([&](boost::json::object& body) { return thingspace->Readiness(body); });
    metrics.OnScrape([&](Metrics& m) { thingspace->ExportState(m); });
  } else {
    spdlog::info("no thingspace section: receiving callbacks only (no registration, no actions)");
  }
  RaiseDescriptorLimit(config.listener.limits.max_connections);
  HttpServer callback_server(ioc, "callback listener", tls, ToServerLimits(config.listener.limits),
                             callbacks, &metrics.OpenConnections(), &network);
  ServerLimits admin_limits;
  admin_limits.max_connections = 64;
  HttpServer admin_server(ioc, "admin listener", nullptr, admin_limits, admin, nullptr);
  std::uint16_t callback_port = 0;
  try {
    auto port = callback_server.Bind(config.listener.address, config.listener.port);
    callback_port = port;
    spdlog::info("callback listener bound on {}:{} ({}), {} service(s) under {}",
                 config.listener.address, port, tls ? "tls" : "plain http", config.services.size(),
                 config.listener.base_path);
    auto admin_port = admin_server.Bind(config.admin.address, config.admin.port);
    spdlog::info("admin listener bound on {}:{}", config.admin.address, admin_port);
  } catch (const boost::system::system_error& e) {
    spdlog::critical("cannot start: bind failed: {}", e.what());
    return 1;
  }

  StatsSampler sampler(processing_store("stats"), std::chrono::seconds(5), metrics);
  health.SetListenerBound();
  health.ProbeNow();
  health.Start();
  sampler.Start();
  writer.Start();
  if (drainer) drainer->Start();
  processor.Start();
  if (config.processing.workers == 0)
    spdlog::warn("processing.workers is 0: this daemon stores callbacks but does not process them");
  callback_server.Start();
  admin_server.Start();
  // Registration only once the listener accepts: callbacks may follow at once.
  if (thingspace) {
    thingspace->Start(&reconciler, &dispatcher);
  } else {
    asio::co_spawn(reconcile_ioc, reconciler.Run(nullptr), asio::detached);
    asio::co_spawn(reconcile_ioc, dispatcher.Run(nullptr), asio::detached);
    reconcile_thread = std::thread([&] {
      NameThisThread("tscb-actions");
      reconcile_ioc.run();
    });
  }

  // Signals, the grace timer and the watchdog share one strand: their
  // handlers never overlap, so a SIGTERM cannot slip between a reload and
  // the re-arming of its signal wait (which would keep the loop alive).
  auto control = asio::make_strand(ioc);
  asio::steady_timer grace(control);
  asio::signal_set stop_signals(control, SIGTERM, SIGINT);
  asio::signal_set hup(control, SIGHUP);
  config::Config running = config;
  Reloadable reloadable{running, callbacks, callback_server, rules, metrics};
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::info("SIGHUP: reloading {}", running.source_file);
      NotifyReloading();
      ReloadConfig(reloadable);
      sd_notify(0, "READY=1");
      spdlog::default_logger()->flush();
      arm_hup();
    });
  };
  arm_hup();

  // The watchdog is fed from the event loop, so a stuck loop starves it;
  // and only while no inbox commit has hung for a whole watchdog interval.
  std::uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  asio::steady_timer watchdog_timer(control);
  bool watchdog_starving = false;
  // Set on SIGTERM: a tick already queued when the timer is cancelled must
  // not arm it again (that would keep the event loop from ending).
  std::atomic<bool> watchdog_stopped{false};
  std::function<void()> feed_watchdog = [&] {
    watchdog_timer.expires_after(std::chrono::microseconds(watchdog_usec / 2));
    watchdog_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || watchdog_stopped) return;
      auto stuck = writer.LongestCommit();
      bool healthy = stuck < std::chrono::microseconds(watchdog_usec);
      if (healthy) sd_notify(0, "WATCHDOG=1");
      if (!healthy && !watchdog_starving)
        spdlog::error(
            "watchdog: an inbox commit has been running for {} ms; not feeding the watchdog, "
            "systemd will restart the daemon",
            std::chrono::duration_cast<std::chrono::milliseconds>(stuck).count());
      watchdog_starving = !healthy;
      feed_watchdog();
    });
  };
  if (watchdog) {
    spdlog::info("watchdog: enabled, every {} ms", watchdog_usec / 2000);
    feed_watchdog();
  }
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping; finishing in-flight callbacks (grace {} ms)", signal,
                 config.shutdown_grace.count());
    sd_notify(0, "STOPPING=1\nSTATUS=stopping");
    health.SetStopping();
    hup.cancel();
    watchdog_stopped = true;
    watchdog_timer.cancel();
    grace.expires_after(config.shutdown_grace);
    grace.async_wait([&](const boost::system::error_code& gec) {
      if (gec) return;
      spdlog::warn("grace period over with {} connection(s) open; stopping now",
                   callback_server.OpenConnections());
      network.Stop();
      ioc.stop();
    });
    // A second signal means "now": stop without waiting for the grace period.
    stop_signals.async_wait([&](const boost::system::error_code& again, int second) {
      if (again) return;
      spdlog::warn("signal {} again: stopping at once with {} connection(s) open", second,
                   callback_server.OpenConnections());
      network.Stop();
      ioc.stop();
    });
    auto remaining = std::make_shared<std::atomic<int>>(2);
    auto drained = [&, remaining] {
      if (--*remaining == 0)
        asio::post(control, [&] {
          grace.cancel();
          stop_signals.cancel();
        });
    };
    callback_server.Stop(drained);
    admin_server.Stop(drained);
  });

  sd_notifyf(0, "READY=1\nSTATUS=receiving callbacks on port %u", unsigned{callback_port});
  spdlog::info("ready");
  spdlog::default_logger()->flush();  // start-up lines now, not at the next periodic flush
  network.Start();
  ioc.run();
  // The listeners drained (or the grace period ended and stopped them all).
  // Connections cut off by the grace period end here, while the event loop
  // they report their end to still exists.
  network.Release();
  network.Join();
  network.Close();

  if (thingspace) thingspace->Stop(std::chrono::seconds(5));
  if (reconcile_thread.joinable()) {
    reconciler.Stop();
    dispatcher.Stop();
    reconcile_thread.join();
  }
  writer.Stop();
  if (drainer) drainer->Stop();  // what is left stays in the spool for the next start
  processor.Stop();
  health.Stop();
  sampler.Stop();
  auto stats = writer.GetStats();
  spdlog::info("stopped: {} callback(s) stored in {} batch(es)", stats.records, stats.batches);
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace tscb::daemon
