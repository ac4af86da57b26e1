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
  if (file_.empty()) {
    spdlog::info(
        "rules: no rules.file configured; callbacks are stored and processed, no "
        "follow-up actions are planned");
    return true;
  }
  std::vector<std::string> errors;
  auto next = CompileRulesFile(file_, errors);
  if (!next) {
    spdlog::error("rules: {} rejected ({} error(s)); the rules in force stay:", file_,
                  errors.size());
    for (const auto& e : errors) spdlog::error("  {}", e);
    if (metrics_) metrics_->CountRulesLoad("rejected", 0);
    return false;
  }
  std::lock_guard lock(mu_);
  if (loaded_once_)
    spdlog::info("rules: {} reloaded: {}", file_, handlers::RuleSet::Changes(*current_, *next));
  else
    spdlog::info("rules: {} loaded: {} active rule(s)", file_, next->Size());
  if (metrics_) metrics_->CountRulesLoad("loaded", next->Size());
  current_ = std::move(next);
  loaded_once_ = true;
  return true;
}

std::shared_ptr<const handlers::RuleSet> RuleBook::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

}  // namespace tscb::daemon
