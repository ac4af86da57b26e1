#pragma once
// `ts-callbackd status` (the daemon's readiness and registrations from its
// admin listener, the backlog, requests, actions and last errors from the
// database) and `ts-callbackd events tail` (follows new events).
#include <string>

#include "config/config.hpp"
#include "daemon/cli_data.hpp"

namespace tscb::daemon {

bool IsStatusCommand(const std::string& command);
// Exit code: status 0 when the daemon is ready, 1 when not (or unreachable);
// 2 for a usage error.
int RunStatusCommand(const CommandLine& cl, const config::Config& config);

}  // namespace tscb::daemon
