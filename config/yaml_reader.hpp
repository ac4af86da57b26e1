#pragma once
// A path-tracking reader over yaml-cpp nodes. Every problem is recorded as
// "FILE:LINE: yaml.path: message" and reading goes on, so one run reports
// every mistake in a file. Unknown keys are errors (a typo must not silently
// fall back to a default). Single-threaded; used only while loading.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/cidr.hpp"
#include "config/config.hpp"
#include "config/secret.hpp"

namespace tscb::config {

// Looks up an environment variable; injected so tests need not touch the
// process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

class ErrorList {
 public:
  explicit ErrorList(std::string file) : file_(std::move(file)) {}
  void Add(const YAML::Node& at, const std::string& path, const std::string& message);
  void AddFileLevel(const std::string& message);
  // Not an error: the config loads, and the message is shown (file modes).
  void Warn(const YAML::Node& at, const std::string& path, const std::string& message);
  const std::vector<std::string>& Messages() const { return messages_; }
  const std::vector<std::string>& Warnings() const { return warnings_; }
  const std::string& File() const { return file_; }

 private:
  std::string file_;
  std::vector<std::string> messages_;
  std::vector<std::string> warnings_;
};

struct ReadContext {
  ErrorList& errors;
  EnvLookup env;
  std::string base_dir;  // relative secret files resolve against the config's folder
};

// "" when only the owner and group can reach `file`; otherwise a warning
// naming the mode.
std::string OthersMayRead(const std::string& file);

class MapReader {
 public:
  // `node` may be undefined (an absent optional section): then every read
  // keeps its default and Finish() has nothing to say.
  MapReader(YAML::Node node, std::string path, ReadContext& ctx);

  void Read(const char* key, std::string& out, bool required = false);
  void Read(const char* key, bool& out);
  void Read(const char* key, int& out, int min, int max);
  void Read(const char* key, std::uint16_t& out);
  void Read(const char* key, std::size_t& out, std::size_t min, std::size_t max);
  void Read(const char* key, double& out, double min, double max);
  void Read(const char* key, Duration& out, Duration min, Duration max);
  void Read(const char* key, Secret& out, bool required = false);
  void Read(const char* key, std::vector<Cidr>& out);

  MapReader Map(const char* key);
  // The raw child (for maps with free keys such as `services`); marks it seen.
  YAML::Node Child(const char* key);
  std::string PathOf(const std::string& key) const;
  ReadContext& Context() { return ctx_; }
  bool Present() const { return node_.IsDefined() && !node_.IsNull(); }

  // Reports keys that no Read/Map/Child call asked for.
  void Finish();

 private:
  YAML::Node Lookup(const char* key);
  void Error(const YAML::Node& at, const std::string& key, const std::string& message);

  YAML::Node node_;
  std::string path_;
  ReadContext& ctx_;
  std::set<std::string> seen_;
  bool valid_ = true;
};

std::optional<Duration> ParseDuration(const std::string& text);

}  // namespace tscb::config
