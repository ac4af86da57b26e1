#pragma once
// Loads and validates the YAML configuration in one pass. On failure every
// error is returned, each as "FILE:LINE: yaml.path: message"; nothing is
// half-applied. Used at start, by `check-config`, and (later) on SIGHUP.
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"

namespace tscb::config {

struct LoadResult {
  std::optional<Config> config;     // set when errors is empty
  std::vector<std::string> errors;  // every problem found
  // Loaded anyway: config or secret files other users can read or write.
  std::vector<std::string> warnings;
};

// `env` defaults to the process environment.
LoadResult LoadConfigFile(const std::string& path, EnvLookup env = {});
LoadResult LoadConfigText(const std::string& text, const std::string& name_for_messages,
                          const std::string& base_dir, EnvLookup env = {});

EnvLookup ProcessEnvironment();

}  // namespace tscb::config
