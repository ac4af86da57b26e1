#include "daemon/cli.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "config/loader.hpp"
#include "daemon/application.hpp"
#include "daemon/logging.hpp"
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
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (default /etc/ts-callbackd/config.yaml)\n"
    "  -h, --help          this text\n"
    "  --version           print the version\n";

std::optional<config::Config> LoadOrReport(const std::string& path) {
  auto result = config::LoadConfigFile(path);
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

}  // namespace

int Main(int argc, char** argv) {
  std::string command = "run";
  std::string config_path = kDefaultConfig;
  bool command_seen = false;
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
    } else if (!command_seen && !arg.empty() && arg[0] != '-') {
      command = arg;
      command_seen = true;
    } else {
      std::cerr << "ts-callbackd: unexpected argument '" << arg << "'\n" << kUsage;
      return 2;
    }
  }
  if (command != "run" && command != "check-config" && command != "migrate") {
    std::cerr << "ts-callbackd: unknown command '" << command << "'\n" << kUsage;
    return 2;
  }

  auto config = LoadOrReport(config_path);
  if (!config) return 2;
  if (command == "check-config") {
    std::cout << config_path << ": OK (" << config->services.size() << " service(s))\n";
    return 0;
  }
  if (command == "migrate") return Migrate(*config);
  SetUpLogging(config->log.level);
  spdlog::info("ts-callbackd 0.1.0 starting with {}", config_path);
  int code = RunDaemon(*config);
  ShutDownLogging();
  return code;
}

}  // namespace tscb::daemon
