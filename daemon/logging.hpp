#pragma once
// Logging set-up: spdlog to a buffered stderr (the journal under systemd),
// one line per event, ISO timestamps. Secrets are a type that prints "***"
// (config/secret.hpp); this header makes fmt use that.
#include <fmt/ostream.h>

#include <string>

#include "config/secret.hpp"

template <>
struct fmt::formatter<tscb::config::Secret> : fmt::ostream_formatter {};

namespace tscb::daemon {

// Returns false for an unknown level name (config validation prevents it).
bool SetUpLogging(const std::string& level);
// Flushes and stops the logging thread (call before exit).
void ShutDownLogging();

}  // namespace tscb::daemon
