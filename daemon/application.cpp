#include "daemon/application.hpp"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>

#include "daemon/admin_endpoint.hpp"
#include "daemon/callback_endpoint.hpp"
#include "daemon/dispatcher.hpp"
#include "daemon/health.hpp"
#include "daemon/http_server.hpp"
#include "daemon/inbox_writer.hpp"
#include "daemon/metrics.hpp"
#include "daemon/operator_api.hpp"
#include "daemon/processor.hpp"
#include "daemon/reconciler.hpp"
#include "daemon/rule_book.hpp"
#include "daemon/thingspace_worker.hpp"
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
  auto conn = storage::pg::Connect(db.ConnectionString());
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

ServerLimits ToServerLimits(const config::ListenerLimits& l) {
  return {l.max_body_bytes, l.max_header_bytes, l.request_timeout, l.idle_timeout,
          l.max_connections};
}

}  // namespace

int RunDaemon(const config::Config& config) {
  const std::string db_conn = config.database.ConnectionString();
  try {
    PrepareSchema(config.database);
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: database {}: {}", config.database.Describe(), e.what());
    return 1;
  }

  std::shared_ptr<ssl::context> tls;
  if (config.listener.tls.enabled) {
    try {
      tls = MakeServerTlsContext(config.listener.tls);
    } catch (const std::exception& e) {
      spdlog::critical("cannot start: {}", e.what());
      return 1;
    }
  } else {
    spdlog::warn(
        "listener.tls.enabled is false: callbacks are accepted over plain HTTP; only do "
        "this behind a TLS-terminating proxy");
  }

  std::vector<std::string> service_names;
  for (const auto& s : config.services) service_names.push_back(s.name);
  Metrics metrics(service_names);
  InboxWriter writer([db_conn] { return std::make_unique<storage::pg::PgInboxStore>(db_conn); },
                     config.inbox, &metrics);
  Health health(db_conn, std::chrono::seconds(2));

  int threads = config.listener.threads > 0 ? config.listener.threads
                                            : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::max(threads, 1);
  asio::io_context ioc(threads);

  RuleBook rules(config.rules.file, &metrics);
  if (!rules.Reload()) {
    spdlog::critical("cannot start: the rules file {} is not valid (errors above)",
                     config.rules.file);
    return 1;
  }
  auto processing_store = [db_conn] {
    return std::make_unique<storage::pg::PgProcessingStore>(db_conn);
  };
  Processor processor(processing_store,
                      ProcessorOptions{config.processing.workers, config.processing.batch_max,
                                       config.processing.poll_interval, config.actions.max_attempts,
                                       config.account},
                      &metrics, &rules);
  Dispatcher dispatcher(config, processing_store, &metrics);
  processor.OnActionsPlanned([&dispatcher] { dispatcher.Wake(); });
  OperatorApi operator_api(config, processor, &metrics);
  Reconciler reconciler(config, processing_store, &metrics, &rules);
  // Without a ThingSpace client the reconciler only times requests out and
  // the dispatcher only sends http.post actions, on a thread of their own.
  asio::io_context reconcile_ioc(1);
  std::thread reconcile_thread;

  CallbackEndpoint callbacks(config, writer, metrics);
  AdminEndpoint admin(health, metrics);
  admin.SetOperatorApi(&operator_api);
  std::unique_ptr<ThingSpaceWorker> thingspace;
  if (config.thingspace.enabled) {
    try {
      thingspace = std::make_unique<ThingSpaceWorker>(config, &metrics);
    } catch (const std::exception& e) {
      spdlog::critical("cannot start: thingspace client: {}", e.what());
      return 1;
    }
    admin.AddReadinessPart([&](boost::json::object& body) { return thingspace->Readiness(body); });
  } else {
    spdlog::info("no thingspace section: receiving callbacks only (no registration, no actions)");
  }
  HttpServer callback_server(ioc, "callback listener", tls, ToServerLimits(config.listener.limits),
                             callbacks, &metrics.OpenConnections());
  ServerLimits admin_limits;
  admin_limits.max_connections = 64;
  HttpServer admin_server(ioc, "admin listener", nullptr, admin_limits, admin, nullptr);
  try {
    auto port = callback_server.Bind(config.listener.address, config.listener.port);
    spdlog::info("callback listener bound on {}:{} ({}), {} service(s) under {}",
                 config.listener.address, port, tls ? "tls" : "plain http", config.services.size(),
                 config.listener.base_path);
    auto admin_port = admin_server.Bind(config.admin.address, config.admin.port);
    spdlog::info("admin listener bound on {}:{}", config.admin.address, admin_port);
  } catch (const boost::system::system_error& e) {
    spdlog::critical("cannot start: bind failed: {}", e.what());
    return 1;
  }

  health.SetListenerBound();
  health.ProbeNow();
  health.Start();
  writer.Start();
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
    reconcile_thread = std::thread([&] { reconcile_ioc.run(); });
  }

  asio::steady_timer grace(ioc);
  asio::signal_set stop_signals(ioc, SIGTERM, SIGINT);
  asio::signal_set hup(ioc, SIGHUP);
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      spdlog::info("SIGHUP: reloading the rules (other settings need a restart)");
      rules.Reload();
      arm_hup();
    });
  };
  arm_hup();
  stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    spdlog::info("signal {}: stopping; finishing in-flight callbacks (grace {} ms)", signal,
                 config.shutdown_grace.count());
    sd_notify(0, "STOPPING=1");
    health.SetStopping();
    hup.cancel();
    grace.expires_after(config.shutdown_grace);
    grace.async_wait([&](const boost::system::error_code& gec) {
      if (gec) return;
      spdlog::warn("grace period over with {} connection(s) open; stopping now",
                   callback_server.OpenConnections());
      ioc.stop();
    });
    // A second signal means "now": stop without waiting for the grace period.
    stop_signals.async_wait([&](const boost::system::error_code& again, int second) {
      if (again) return;
      spdlog::warn("signal {} again: stopping at once with {} connection(s) open", second,
                   callback_server.OpenConnections());
      ioc.stop();
    });
    auto remaining = std::make_shared<std::atomic<int>>(2);
    auto drained = [&, remaining] {
      if (--*remaining == 0)
        asio::post(ioc, [&] {
          grace.cancel();
          stop_signals.cancel();
        });
    };
    callback_server.Stop(drained);
    admin_server.Stop(drained);
  });

  sd_notify(0, "READY=1");
  spdlog::info("ready");
  spdlog::default_logger()->flush();  // start-up lines now, not at the next periodic flush
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();

  if (thingspace) thingspace->Stop(std::chrono::seconds(5));
  if (reconcile_thread.joinable()) {
    reconciler.Stop();
    dispatcher.Stop();
    reconcile_thread.join();
  }
  writer.Stop();
  processor.Stop();
  health.Stop();
  auto stats = writer.GetStats();
  spdlog::info("stopped: {} callback(s) stored in {} batch(es)", stats.records, stats.batches);
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace tscb::daemon
