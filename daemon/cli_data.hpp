#pragma once
// The operator commands that work on the database: `pending add|show`,
// `replay`. Each prints what it did; long ones show progress.
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tscb::daemon {

struct CommandLine {
  std::string command;
  std::vector<std::string> operands;
  std::map<std::string, std::string> options;  // --name value
  bool dry_run = false;
};

bool IsDataCommand(const std::string& command);
// Exit code: 0 done, 1 failed, 2 usage.
int RunDataCommand(const CommandLine& cl, const config::Config& config);

}  // namespace tscb::daemon
