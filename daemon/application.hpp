#pragma once
// The composition root: builds the daemon from a validated Config, runs it
// until SIGTERM/SIGINT, and drains it within the grace period. Owns every
// long-lived object; nothing here is global.
#include "config/config.hpp"

namespace tscb::daemon {

// Returns the process exit code: 0 after a clean stop, 1 when start-up
// fails (database unreachable, schema too new, TLS files, bind).
int RunDaemon(const config::Config& config);

}  // namespace tscb::daemon
