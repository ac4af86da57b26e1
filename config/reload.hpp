#pragma once
// What a SIGHUP may change in a running daemon, and what needs a restart.
// The daemon loads and validates the whole new file first (loader.hpp);
// this compares it with the config in force. Pure; no I/O.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tscb::config {

struct ReloadPlan {
  bool log_level = false;    // log.level or log.file
  bool access = false;       // listener.allow_from, listener.trusted_proxies
  bool credentials = false;  // services[].username/password (same services, same order)
  bool rules_file = false;   // rules.file names another file (the file is re-read anyway)
  bool tls_files = false;    // listener.tls certificate/key paths (re-read anyway)
  // Settings that differ but only take effect after a restart, as YAML
  // paths ("database", "listener.port", "services" ...).
  std::vector<std::string> needs_restart;
};

ReloadPlan PlanReload(const Config& running, const Config& next);

// `running` with every reloadable setting taken from `next`: what is in
// force after the reload was applied.
Config ApplyReloadable(const Config& running, const Config& next);

}  // namespace tscb::config
