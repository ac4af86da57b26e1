#pragma once
// The operator commands for rules and the outbox (issue: rules and
// follow-up actions): `rules check FILE`, `rules test` (a dry run against an
// event file or stored events: which rules match and the exact requests
// they would send; nothing is sent), `rules pause|resume NAME`, `actions
// list|show|retry|cancel|pause|resume|catalogue`.
#include <optional>

#include "config/config.hpp"
#include "daemon/cli_data.hpp"

namespace tscb::daemon {

bool IsRulesCommand(const std::string& command);
// Commands that need no configuration (rules check, rules test --rules F
// --event-file F, actions catalogue); nullopt when this one needs it.
std::optional<int> RunRulesCommandWithoutConfig(const CommandLine& cl);
int RunRulesCommand(const CommandLine& cl, const config::Config& config);

}  // namespace tscb::daemon
