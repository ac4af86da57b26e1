#pragma once
// Logging set-up. Under systemd (stderr is the journal stream named by
// JOURNAL_STREAM) every line goes to the journal with structured fields;
// elsewhere to a buffered stderr or to log.file (reopened on SIGHUP, for
// logrotate). Secrets are a type that prints "***" (config/secret.hpp);
// this header makes fmt use that.
#include <fmt/ostream.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "config/secret.hpp"

template <>
struct fmt::formatter<tscb::config::Secret> : fmt::ostream_formatter {};

namespace tscb::daemon {

// Returns false for an unknown level name (config validation prevents it).
// `file` "" means stderr (or the journal).
bool SetUpLogging(const std::string& level, const std::string& file = "");
// Reload: a new level, and the log file reopened (or switched). Returns an
// error message, "" on success; on error the old destination stays.
std::string ReconfigureLogging(const config::LogConfig& log);
// Flushes and stops the logging thread (call before exit).
void ShutDownLogging();

// The journal fields of one message: every `key=value` token whose key is
// one of service, request_id, inbox_id, event_id, rule, action, action_id,
// device becomes KEY=value (values end at a space; quotes are not special).
std::vector<std::pair<std::string, std::string>> JournalFields(std::string_view message);

}  // namespace tscb::daemon
