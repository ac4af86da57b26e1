#include "daemon/cli.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "daemon/application.hpp"
#include "daemon/cli_data.hpp"
#include "daemon/cli_rules.hpp"
#include "daemon/cli_status.hpp"
#include "daemon/logging.hpp"
#include "daemon/registration_manager.hpp"
#include "daemon/rule_book.hpp"
#include "daemon/thingspace_client.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"

namespace tscb::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/ts-callbackd/config.yaml";
constexpr const char* kUsage =
    "usage: ts-callbackd [COMMAND] [--config FILE]\n"
    "\n"
    "commands:\n"
    "  run            run the daemon (default)\n"
    "  check-config   validate the configuration; print every error\n"
    "  migrate        apply database migrations and exit\n"
    "  status         the daemon's readiness and registrations, inbox backlog, pending\n"
    "                 requests and actions by state, paused rules, the last errors\n"
    "  events tail    the newest events, then each new one as it is stored (Ctrl-C\n"
    "                 stops): [--kind K|prefix.*] [--device ID] [--lines N] [--count N]\n"
    "  register       make every configured service point at registration.public_url;\n"
    "                 with --dry-run, only print the plan (keep, register, replace)\n"
    "  deregister SERVICE   remove one service's callback registration\n"
    "  pending add JSON|-   register a pending request sent by another system\n"
    "                 (the body of POST /v1/requests); its callbacks are then matched\n"
    "  pending show REQUEST_ID   print one pending request\n"
    "  replay         re-process inbox rows: --ids 1,2,3 or --state S / --since T /\n"
    "                 --until T; never creates a second event for a row\n"
    "  report NAME    print a reporting view (callbacks_daily, provisioning_latency,\n"
    "                 device_timeline, failed_actions, action_chains, sms, usage_alerts,\n"
    "                 pending_overdue) [--since T] [--until T] [--format table|csv|json]\n"
    "  rules check FILE     validate a rules file (no config needed)\n"
    "  rules test     dry run: --event-file F [--service S] or --since 7d; which rules\n"
    "                 match and the exact requests they would send [--rules FILE]\n"
    "  rules pause|resume RULE   hold or release a rule's actions (they are still planned)\n"
    "  actions list [--state S] | show ID | retry ID | cancel ID | paused\n"
    "  actions pause|resume NAME   hold or release every action of that name\n"
    "  actions catalogue    every action rules can fire, with its body fields\n"
    "  retention      drop monthly partitions older than retention.months (and their\n"
    "                 dedup keys); --dry-run lists what would go\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default /etc/ts-callbackd/config.yaml)\n"
    "  --dry-run           register: print the plan, change nothing\n"
    "  --allow-root        run: allow running as root (refused otherwise)\n"
    "  -h, --help          this text\n"
    "  --version           print the version\n";

std::optional<config::Config> LoadOrReport(const std::string& path) {
  auto result = config::LoadConfigFile(path);
  for (const auto& warning : result.warnings) std::cerr << "warning: " << warning << '\n';
  for (const auto& error : result.errors) std::cerr << error << '\n';
  if (!result.config)
    std::cerr << path << ": " << result.errors.size() << " error(s); nothing was started\n";
  return std::move(result.config);
}

int Migrate(const config::Config& config) {
  try {
    auto conn = storage::pg::Connect(config.database.ConnectionString());
    auto report = storage::pg::Migrate(*conn, [](const storage::pg::Migration& m) {
      std::cout << "applying " << m.name << " ..." << std::endl;
    });
    std::cout << "schema version " << report.from_version << " -> " << report.to_version << " ("
              << report.applied.size() << " applied, " << report.partitions_created
              << " inbox partition(s) created)\n";
    return 0;
  } catch (const storage::StorageError& e) {
    std::cerr << "migrate: database " << config.database.Describe() << ": " << e.what() << '\n';
    return 1;
  }
}

// Runs one coroutine on a private io_context with a ThingSpace client, then
// logs out. Returns the coroutine's exit code.
int WithThingSpace(
    const config::Config& config,
    std::function<asio::awaitable<int>(ThingSpaceClient&, RegistrationManager&)> body) {
  if (!config.thingspace.enabled) {
    std::cerr << config.source_file << ": thingspace: the section is required for this command\n";
    return 2;
  }
  try {
    asio::io_context ioc(1);
    ThingSpaceClient client(ioc, config.thingspace, nullptr);
    RegistrationManager manager(ioc, client, config, nullptr);
    int code = 1;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          code = co_await body(client, manager);
          co_await client.Logout();
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    ioc.run();
    return code;
  } catch (const std::exception& e) {
    std::cerr << "ts-callbackd: " << e.what() << '\n';
    return 1;
  }
}

int Register(const config::Config& config, bool dry_run) {
  if (config.registration.public_url.empty()) {
    std::cerr << config.source_file << ": registration.public_url is required (and "
              << "registration.enabled must not be false) to register\n";
    return 2;
  }
  return WithThingSpace(
      config, [dry_run](ThingSpaceClient&, RegistrationManager& manager) -> asio::awaitable<int> {
        CheckResult r = co_await manager.Check(!dry_run);
        if (!r.plan.empty()) std::cout << FormatPlan(r.plan, manager);
        if (!r.ok) {
          std::cerr << "register: " << r.error << '\n';
          co_return 1;
        }
        if (dry_run)
          std::cout << "dry run: nothing was changed\n";
        else
          std::cout << r.changes << " registration(s) sent\n";
        co_return 0;
      });
}

int Deregister(const config::Config& config, const std::string& service) {
  return WithThingSpace(
      config, [&service](ThingSpaceClient&, RegistrationManager& manager) -> asio::awaitable<int> {
        ApiResult r = co_await manager.Deregister(service);
        if (!r.Ok()) {
          std::cerr << "deregister " << service << ": " << r.Describe() << '\n';
          co_return 1;
        }
        std::cout << service << ": deregistered\n";
        co_return 0;
      });
}

}  // namespace

int Main(int argc, char** argv) {
  std::string command = "run";
  std::string config_path = kDefaultConfig;
  bool command_seen = false;
  bool dry_run = false;
  bool allow_root = false;
  std::vector<std::string> operands;
  std::map<std::string, std::string> options;
  static const std::set<std::string> kValueOptions = {
      "--ids",   "--state", "--since", "--until",  "--format", "--event-file", "--service",
      "--rules", "--limit", "--kind",  "--device", "--lines",  "--count"};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "ts-callbackd 0.1.0\n";
      return 0;
    }
    if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) {
        std::cerr << "ts-callbackd: " << arg << " needs a file name\n" << kUsage;
        return 2;
      }
      config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      config_path = arg.substr(9);
    } else if (arg == "--dry-run") {
      dry_run = true;
    } else if (arg == "--allow-root") {
      allow_root = true;
    } else if (kValueOptions.count(arg)) {
      if (i + 1 >= argc) {
        std::cerr << "ts-callbackd: " << arg << " needs a value\n" << kUsage;
        return 2;
      }
      options[arg.substr(2)] = argv[++i];
    } else if (!command_seen && !arg.empty() && arg[0] != '-') {
      command = arg;
      command_seen = true;
    } else if (command_seen && !arg.empty() && arg[0] != '-') {
      operands.push_back(arg);
    } else {
      std::cerr << "ts-callbackd: unexpected argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  // Operator commands print their result on stdout (table, csv or json);
  // library log lines would mix into it, so only warnings, on stderr.
  if (command != "run" && command != "register" && command != "deregister") {
    auto logger = spdlog::stderr_logger_st("cli");
    logger->set_pattern("%l: %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::warn);
  }
  if (IsRulesCommand(command)) {
    CommandLine cl{command, operands, options, dry_run};
    if (auto code = RunRulesCommandWithoutConfig(cl)) return *code;
    auto config = LoadOrReport(config_path);
    if (!config) return 2;
    return RunRulesCommand(cl, *config);
  }
  if (IsStatusCommand(command)) {
    auto config = LoadOrReport(config_path);
    if (!config) return 2;
    return RunStatusCommand({command, operands, options, dry_run}, *config);
  }
  if (IsDataCommand(command)) {
    auto config = LoadOrReport(config_path);
    if (!config) return 2;
    return RunDataCommand({command, operands, options, dry_run}, *config);
  }
  if (command != "run" && command != "check-config" && command != "migrate" &&
      command != "register" && command != "deregister") {
    std::cerr << "ts-callbackd: unknown command '" << command << "'\n" << kUsage;
    return 2;
  }
  std::size_t wanted_operands = command == "deregister" ? 1 : 0;
  if (operands.size() != wanted_operands) {
    std::cerr << "ts-callbackd: " << command
              << (wanted_operands ? " needs one service name\n" : " takes no operands\n") << kUsage;
    return 2;
  }
  if (dry_run && command != "register") {
    std::cerr << "ts-callbackd: --dry-run only goes with register, replay and retention\n";
    return 2;
  }

  auto config = LoadOrReport(config_path);
  if (!config) return 2;
  if (command == "check-config") {
    std::string rules = "no rules file";
    if (!config->rules.file.empty()) {
      std::vector<std::string> errors;
      auto set = CompileRulesFile(config->rules.file, errors);
      for (const auto& error : errors) std::cerr << error << '\n';
      if (!set) {
        std::cerr << config->rules.file << ": " << errors.size() << " error(s)\n";
        return 2;
      }
      rules = std::to_string(set->Size()) + " active rule(s)";
    }
    std::cout << config_path << ": OK (" << config->services.size() << " service(s), " << rules
              << ")\n";
    return 0;
  }
  if (command == "migrate") return Migrate(*config);
  if (command == "register" || command == "deregister") {
    SetUpLogging(config->log.level);
    int code =
        command == "register" ? Register(*config, dry_run) : Deregister(*config, operands[0]);
    ShutDownLogging();
    return code;
  }
  if (geteuid() == 0 && !allow_root) {
    std::cerr << "ts-callbackd: refusing to run as root; run it as its own user (the "
                 "systemd unit does), or pass --allow-root\n";
    return 2;
  }
  SetUpLogging(config->log.level, config->log.file);
  spdlog::info("ts-callbackd 0.1.0 starting with {}", config_path);
  int code = RunDaemon(*config);
  ShutDownLogging();
  return code;
}

}  // namespace tscb::daemon
