#pragma once
// The rules in force: compiled from rules.file at start and again on SIGHUP.
// A file that fails validation is rejected whole and the rules in force stay
// (DESIGN.md section 6). Processors take the current set once per batch.
// Thread-safe.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/metrics.hpp"
#include "handlers/rules.hpp"

namespace tscb::daemon {

// Compiles `file` (reading and shape checks in config/, meaning in
// handlers/); null with `errors` filled when anything is wrong.
std::shared_ptr<const handlers::RuleSet> CompileRulesFile(const std::string& file,
                                                          std::vector<std::string>& errors);

class RuleBook {
 public:
  // `metrics` may be null (commands).
  explicit RuleBook(std::string file, Metrics* metrics = nullptr)
      : file_(std::move(file)), metrics_(metrics) {}

  // Loads the file (none configured: no rules). On failure the rules in
  // force stay and every error is logged; returns whether it loaded.
  bool Reload();
  // The two halves of Reload(), for a config reload that installs the rules
  // only when every other part of the new config is valid too. Stage()
  // compiles `file` ("" = no rules) and returns null, errors logged and
  // counted, when it is invalid; Install() puts a staged set in force.
  std::shared_ptr<const handlers::RuleSet> Stage(const std::string& file);
  void Install(std::string file, std::shared_ptr<const handlers::RuleSet> rules);
  std::shared_ptr<const handlers::RuleSet> Current() const;
  std::string File() const;

 private:
  std::string file_;
  Metrics* metrics_;
  mutable std::mutex mu_;
  std::shared_ptr<const handlers::RuleSet> current_ = handlers::RuleSet::Empty();
  bool loaded_once_ = false;
};

}  // namespace tscb::daemon
