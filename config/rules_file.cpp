#include "config/rules_file.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "config/yaml_reader.hpp"

namespace tscb::config {
namespace {

const char* const kOperators[] = {"eq", "ne", "in", "regex", "gt", "gte", "lt", "lte", "exists"};

bool IsOperator(const std::string& key) {
  for (const char* op : kOperators)
    if (key == op) return true;
  return false;
}

Where At(const std::string& file, const YAML::Node& node, const std::string& path) {
  return {file, node.IsDefined() && node.Mark().line >= 0 ? node.Mark().line + 1 : 0, path};
}

// A plain (unquoted) scalar typed as YAML 1.2's core schema would: null,
// booleans, numbers; anything else, and every quoted scalar, is a string.
std::string ScalarJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return JsonQuote(s);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return "null";
  if (s == "true" || s == "True" || s == "TRUE") return "true";
  if (s == "false" || s == "False" || s == "FALSE") return "false";
  static const std::regex number(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, number)) return s;
  return JsonQuote(s);
}

std::string ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return ScalarJson(node);
    case YAML::NodeType::Sequence: {
      std::string out = "[";
      for (std::size_t i = 0; i < node.size(); ++i) out += (i ? "," : "") + ToJson(node[i]);
      return out + "]";
    }
    case YAML::NodeType::Map: {
      std::string out = "{";
      bool first = true;
      for (const auto& item : node) {
        if (!first) out += ',';
        first = false;
        out += JsonQuote(item.first.Scalar()) + ":" + ToJson(item.second);
      }
      return out + "}";
    }
    default:
      return "null";
  }
}

class RulesReader {
 public:
  RulesReader(std::string file, ErrorList& errors)
      : file_(std::move(file)), errors_(errors), ctx_{errors, {}, ""} {}

  RulesFile Read(const YAML::Node& root) {
    RulesFile out;
    out.file = file_;
    MapReader top(root, "", ctx_);
    YAML::Node rules = top.Child("rules");
    top.Finish();
    if (!rules.IsDefined()) {
      if (root.IsDefined() && !root.IsNull() && root.IsMap())
        errors_.Add(root, "rules", "is required (a list of rules; it may be empty: rules: [])");
      return out;
    }
    if (!rules.IsSequence()) {
      errors_.Add(rules, "rules", "expected a list of rules");
      return out;
    }
    std::vector<std::string> names;
    for (std::size_t i = 0; i < rules.size(); ++i) {
      std::string path = "rules[" + std::to_string(i) + "]";
      RuleSpec rule = ReadRule(rules[i], path);
      if (!rule.name.empty()) {
        for (const auto& n : names)
          if (n == rule.name) errors_.Add(rules[i], path + ".name", "duplicate rule name " + n);
        names.push_back(rule.name);
      }
      out.rules.push_back(std::move(rule));
    }
    return out;
  }

 private:
  std::vector<std::string> Strings(MapReader& r, const char* key) {
    YAML::Node n = r.Child(key);
    std::vector<std::string> out;
    if (!n.IsDefined()) return out;
    if (n.IsScalar()) return {n.Scalar()};
    if (!n.IsSequence()) {
      errors_.Add(n, r.PathOf(key), "expected a string or a list of strings");
      return out;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar())
        errors_.Add(n[i], r.PathOf(key) + "[" + std::to_string(i) + "]", "expected a string");
      else
        out.push_back(n[i].Scalar());
    }
    return out;
  }

  RuleSpec ReadRule(const YAML::Node& node, const std::string& path) {
    RuleSpec rule;
    rule.where = At(file_, node, path);
    MapReader r(node, path, ctx_);
    r.Read("name", rule.name, true);
    if (!rule.name.empty() && rule.name.find_first_of(" \t|/") != std::string::npos)
      errors_.Add(r.Child("name"), path + ".name", "a rule name has no spaces, '|' or '/'");
    r.Read("enabled", rule.enabled);
    MapReader when = r.Map("when");
    rule.kinds = Strings(when, "kind");
    rule.statuses = Strings(when, "status");
    when.Read("account", rule.account);
    when.Read("service", rule.service);
    YAML::Node match = when.Child("match");
    if (match.IsDefined()) rule.match = ReadCondition(match, path + ".when.match");
    when.Finish();
    if (!r.Child("when").IsDefined())
      errors_.Add(node, path + ".when", "is required (use when: {} to match every event)");

    YAML::Node actions = r.Child("do");
    if (!actions.IsDefined() || !actions.IsSequence() || actions.size() == 0) {
      errors_.Add(actions.IsDefined() ? actions : node, path + ".do",
                  "expected a non-empty list of actions");
    } else {
      for (std::size_t i = 0; i < actions.size(); ++i)
        rule.actions.push_back(ReadAction(actions[i], path + ".do[" + std::to_string(i) + "]"));
    }
    r.Finish();
    return rule;
  }

  RuleActionSpec ReadAction(const YAML::Node& node, const std::string& path) {
    RuleActionSpec a;
    a.where = At(file_, node, path);
    MapReader r(node, path, ctx_);
    r.Read("action", a.action, true);
    YAML::Node with = r.Child("with");
    if (with.IsDefined()) {
      if (!with.IsMap())
        errors_.Add(with, path + ".with", "expected a mapping (the request body)");
      else
        a.with_json = ToJson(with);
    }
    a.with_where = At(file_, with.IsDefined() ? with : node, path + ".with");
    r.Read("after", a.after, Duration(0), std::chrono::hours(24 * 30));
    YAML::Node once = r.Child("once_per");
    if (once.IsDefined()) {
      if (once.IsScalar()) {
        a.once_per = once.Scalar();
      } else {
        MapReader o(once, path + ".once_per", ctx_);
        o.Read("key", a.once_per, true);
        o.Read("window", a.window, std::chrono::seconds(1), std::chrono::hours(24 * 366));
        o.Finish();
      }
    }
    r.Read("enabled", a.enabled);
    r.Read("method", a.method);
    r.Read("path", a.path);
    r.Read("url", a.url);
    bool safe = false;
    if (r.Child("safe").IsDefined()) {
      r.Read("safe", safe);
      a.safe = safe;
    }
    r.Read("max_attempts", a.max_attempts, 1, 100);
    r.Finish();
    return a;
  }

  ConditionSpec ReadCondition(const YAML::Node& node, const std::string& path) {
    ConditionSpec all;
    all.op = "all";
    all.where = At(file_, node, path);
    if (node.IsSequence()) {  // a list is an implicit all
      for (std::size_t i = 0; i < node.size(); ++i)
        all.children.push_back(ReadCondition(node[i], path + "[" + std::to_string(i) + "]"));
      return all;
    }
    if (!node.IsMap()) {
      errors_.Add(node, path, "expected a mapping of field: {operator: value}, or all/any/not");
      return all;
    }
    for (const auto& item : node) {
      const std::string key = item.first.Scalar();
      const YAML::Node& value = item.second;
      const std::string sub = path + "." + key;
      if (key == "all" || key == "any") {
        ConditionSpec c;
        c.op = key;
        c.where = At(file_, value, sub);
        if (!value.IsSequence() || value.size() == 0) {
          errors_.Add(value, sub, "expected a non-empty list of conditions");
        } else {
          for (std::size_t i = 0; i < value.size(); ++i)
            c.children.push_back(ReadCondition(value[i], sub + "[" + std::to_string(i) + "]"));
        }
        all.children.push_back(std::move(c));
      } else if (key == "not") {
        ConditionSpec c;
        c.op = "not";
        c.where = At(file_, value, sub);
        c.children.push_back(ReadCondition(value, sub));
        all.children.push_back(std::move(c));
      } else if (IsOperator(key)) {
        errors_.Add(item.first, sub,
                    "an operator needs a field first: \"some.field\": {" + key + ": ...}");
      } else if (value.IsMap() && value.size() > 0 && IsOperator(value.begin()->first.Scalar())) {
        for (const auto& op : value) {
          ConditionSpec c;
          c.op = op.first.Scalar();
          c.field = key;
          c.where = At(file_, op.second, sub + "." + c.op);
          if (!IsOperator(c.op)) {
            errors_.Add(
                op.first, c.where.path,
                "unknown operator (expected eq, ne, in, regex, gt, gte, lt, lte or exists)");
            continue;
          }
          c.operand_json = ToJson(op.second);
          all.children.push_back(std::move(c));
        }
      } else {  // field: value is short for field: {eq: value}
        ConditionSpec c;
        c.op = "eq";
        c.field = key;
        c.where = At(file_, value, sub);
        c.operand_json = ToJson(value);
        all.children.push_back(std::move(c));
      }
    }
    return all;
  }

  std::string file_;
  ErrorList& errors_;
  ReadContext ctx_;
};

}  // namespace

std::string Where::Describe() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line);
  return out + ": " + path;
}

std::string JsonQuote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

namespace {
RulesFile ParseRulesTextUnguarded(const std::string& text, const std::string& name,
                                  std::vector<std::string>& errors);
}  // namespace

// A YAML shape no check foresaw (found by fuzzing) is an error in the file,
// never a crash.
RulesFile ParseRulesText(const std::string& text, const std::string& name,
                         std::vector<std::string>& errors) {
  try {
    return ParseRulesTextUnguarded(text, name, errors);
  } catch (const std::exception& e) {
    errors.push_back(name + ": cannot read the rules: " + e.what());
    return RulesFile{name, {}};
  }
}

namespace {
RulesFile ParseRulesTextUnguarded(const std::string& text, const std::string& name,
                                  std::vector<std::string>& errors) {
  ErrorList list(name);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errors.push_back(name + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    return RulesFile{name, {}};
  }
  RulesFile out;
  if (!root.IsDefined() || root.IsNull()) {
    list.AddFileLevel("the file is empty (write rules: [] for no rules)");
    out.file = name;
  } else {
    out = RulesReader(name, list).Read(root);
  }
  errors.insert(errors.end(), list.Messages().begin(), list.Messages().end());
  return out;
}
}  // namespace

RulesFile LoadRulesFile(const std::string& path, std::vector<std::string>& errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors.push_back(path + ": cannot open the rules file");
    return RulesFile{path, {}};
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseRulesText(text.str(), path, errors);
}

}  // namespace tscb::config
