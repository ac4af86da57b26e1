#pragma once
// A rule's `match` (DESIGN.md section 6): operators eq ne in regex gt gte lt
// lte exists on a field of the event (kind, status, account, ...) or of its
// payload (a path not naming an event field is looked up in the payload,
// then in the callback body as received),
// combined with all, any and not. Comparisons: numbers numerically (a
// numeric string counts as its number), strings by bytes (ISO-8601 times
// order correctly), a string against a number or boolean by its text. A
// missing field matches only `exists: false` and `ne`. Pure; any thread.
#include <boost/json/value.hpp>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "config/rules_file.hpp"
#include "handlers/template.hpp"

namespace tscb::handlers {

class Condition {
 public:
  // Problems (unknown operator, bad regex, operand of the wrong type) go to
  // `errors` with the file, line and YAML path of the condition.
  static Condition Compile(const config::ConditionSpec& spec, std::vector<std::string>& errors);

  // `context` is the event's template context (handlers/rules.hpp).
  bool Matches(const boost::json::value& context) const;

 private:
  enum class Op { kAll, kAny, kNot, kEq, kNe, kIn, kRegex, kGt, kGte, kLt, kLte, kExists };
  Op op_ = Op::kAll;
  FieldPath field_;
  bool event_field_ = false;  // field_ names an event field, not the payload's
  boost::json::value operand_;
  std::shared_ptr<const std::regex> regex_;
  std::vector<Condition> children_;
};

}  // namespace tscb::handlers
