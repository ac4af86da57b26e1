#include "daemon/rule_book.hpp"

#include <spdlog/spdlog.h>

#include "config/rules_file.hpp"

namespace tscb::daemon {

std::shared_ptr<const handlers::RuleSet> CompileRulesFile(const std::string& file,
                                                          std::vector<std::string>& errors) {
  auto spec = config::LoadRulesFile(file, errors);
  if (!errors.empty()) return nullptr;
  return handlers::RuleSet::Compile(spec, errors);
}

bool RuleBook::Reload() {
  auto file = File();
  auto next = Stage(file);
  if (!next) return false;
  Install(std::move(file), std::move(next));
  return true;
}

std::shared_ptr<const handlers::RuleSet> RuleBook::Stage(const std::string& file) {
  if (file.empty()) return handlers::RuleSet::Empty();
  std::vector<std::string> errors;
  auto next = CompileRulesFile(file, errors);
  if (!next) {
    spdlog::error("rules: {} rejected ({} error(s)); the rules in force stay:", file,
                  errors.size());
    for (const auto& e : errors) spdlog::error("  {}", e);
    if (metrics_) metrics_->CountRulesLoad("rejected", 0);
  }
  return next;
}

void RuleBook::Install(std::string file, std::shared_ptr<const handlers::RuleSet> rules) {
  std::lock_guard lock(mu_);
  if (file.empty() && loaded_once_ && file_.empty())
    ;  // still no rules: nothing to say on a reload
  else if (file.empty())
    spdlog::info(
        "rules: no rules.file configured; callbacks are stored and processed, no "
        "follow-up actions are planned");
  else if (loaded_once_ && file == file_)
    spdlog::info("rules: {} reloaded: {}", file, handlers::RuleSet::Changes(*current_, *rules));
  else
    spdlog::info("rules: {} loaded: {} active rule(s)", file, rules->Size());
  if (metrics_) metrics_->CountRulesLoad("loaded", rules->Size());
  current_ = std::move(rules);
  file_ = std::move(file);
  loaded_once_ = true;
}

std::string RuleBook::File() const {
  std::lock_guard lock(mu_);
  return file_;
}

std::shared_ptr<const handlers::RuleSet> RuleBook::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace tscb::daemon
