#pragma once
// The rules file (DESIGN.md section 6) read into plain structs: its shape is
// checked here (known keys, lists where lists belong, durations), every
// problem reported as "FILE:LINE: yaml.path: message". Values the rule engine
// interprets (condition operands, `with` bodies) are carried as JSON text
// with the place they came from, so that handlers/rules.hpp can report its
// own findings (unknown action, bad regex, a body its action refuses, an
// unknown template field) with the same file and YAML path.
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tscb::config {

// Where a value was written: "FILE:LINE: rules[0].do[1].with".
struct Where {
  std::string file;
  int line = 0;  // 1-based; 0 = unknown
  std::string path;
  std::string Describe() const;  // "FILE:LINE: path"
};

// One node of a `match` tree: a combinator (all, any, not) with children, or
// an operator (eq ne in regex gt gte lt lte exists) on a field with an operand.
struct ConditionSpec {
  std::string op;
  std::string field;         // operators: a dotted path into the event or its payload
  std::string operand_json;  // operators: the operand as JSON text
  std::vector<ConditionSpec> children;
  Where where;
};

struct RuleActionSpec {
  std::string action;            // catalogue name, thingspace.call or http.post
  std::string with_json = "{}";  // the request body template as JSON text
  Where where;                   // the action item
  Where with_where;              // its `with`
  Duration after{0};             // delay before it is sent
  std::string once_per;          // idempotency scope template ("" = once per cause event)
  Duration window{0};            // once_per window (0 = for ever)
  bool enabled = true;
  std::string method, path;  // thingspace.call
  std::string url;           // http.post
  std::optional<bool> safe;  // thingspace.call / http.post: may it be repeated?
  int max_attempts = 0;      // 0 = actions.max_attempts
};

struct RuleSpec {
  std::string name;
  Where where;
  bool enabled = true;
  std::vector<std::string> kinds;     // any of; empty = every kind
  std::vector<std::string> statuses;  // any of; empty = every status
  std::string account, service;       // "" = any
  std::optional<ConditionSpec> match;
  std::vector<RuleActionSpec> actions;
};

struct RulesFile {
  std::string file;
  std::vector<RuleSpec> rules;
};

// Reads `path`; problems go to `errors` (the result is then incomplete).
RulesFile LoadRulesFile(const std::string& path, std::vector<std::string>& errors);
RulesFile ParseRulesText(const std::string& text, const std::string& name,
                         std::vector<std::string>& errors);

// A JSON string literal for `text` (quotes included), for JSON written by hand.
std::string JsonQuote(const std::string& text);

}  // namespace tscb::config
