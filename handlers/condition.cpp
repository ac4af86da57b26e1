#include "handlers/condition.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <optional>

namespace tscb::handlers {
namespace json = boost::json;
namespace {

std::optional<double> Number(const json::value& v) {
  if (v.is_number()) return v.to_number<double>();
  if (v.is_string()) {
    const auto& s = v.as_string();
    double d = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return d;
  }
  return std::nullopt;
}

std::string Text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

bool Equal(const json::value& a, const json::value& b) {
  if (a == b) return true;
  if (a.is_number() && b.is_number()) return a.to_number<double>() == b.to_number<double>();
  bool scalar_a = a.is_string() || a.is_number() || a.is_bool();
  bool scalar_b = b.is_string() || b.is_number() || b.is_bool();
  if (scalar_a && scalar_b && (a.is_string() || b.is_string())) return Text(a) == Text(b);
  return false;
}

// <0, 0, >0, or nullopt when the two cannot be ordered.
std::optional<int> Compare(const json::value& a, const json::value& b) {
  auto x = Number(a), y = Number(b);
  if (x && y) return *x < *y ? -1 : (*x > *y ? 1 : 0);
  if (a.is_string() && b.is_string()) return a.as_string().compare(b.as_string());
  return std::nullopt;
}

bool IsEventField(const std::string& name) {
  static const char* const kEventFields[] = {
      "kind",          "status",      "raw_status",     "account",    "request_id", "service",
      "event_id",      "received_at", "primary_device", "device_ids", "devices",    "error_code",
      "error_message", "payload",     "request",        "body"};
  for (const char* f : kEventFields)
    if (name == f) return true;
  return false;
}

// The field `path` of an event context: an event field (`event_field`,
// decided when the condition is compiled), else the payload's, else the
// body's.
const json::value* FieldOf(const json::value& context, const FieldPath& path, bool event_field) {
  if (path.empty() || !context.is_object()) return nullptr;
  if (event_field) return Lookup(context, path);
  // Otherwise the payload's field, else the callback body's (so that both
  // "state" and "deviceResponse.activateResponse.state" work).
  for (const char* part : {"payload", "body"})
    if (auto* root = context.as_object().if_contains(part))
      if (auto* v = Lookup(*root, path)) return v;
  return nullptr;
}

}  // namespace

Condition Condition::Compile(const config::ConditionSpec& spec, std::vector<std::string>& errors) {
  Condition c;
  auto fail = [&](const std::string& message) {
    errors.push_back(spec.where.Describe() + ": " + message);
  };
  static const std::pair<const char*, Op> kOps[] = {
      {"all", Op::kAll}, {"any", Op::kAny}, {"not", Op::kNot},     {"eq", Op::kEq},
      {"ne", Op::kNe},   {"in", Op::kIn},   {"regex", Op::kRegex}, {"gt", Op::kGt},
      {"gte", Op::kGte}, {"lt", Op::kLt},   {"lte", Op::kLte},     {"exists", Op::kExists}};
  bool known = false;
  for (const auto& [name, op] : kOps)
    if (spec.op == name) {
      c.op_ = op;
      known = true;
    }
  if (!known) {
    fail("unknown operator " + spec.op);
    return c;
  }
  for (const auto& child : spec.children) c.children_.push_back(Compile(child, errors));
  if (c.op_ == Op::kAll || c.op_ == Op::kAny || c.op_ == Op::kNot) return c;

  c.field_ = SplitPath(spec.field);
  // Which root the path starts from is known now, not at each event.
  c.event_field_ = !c.field_.empty() && IsEventField(c.field_[0]);
  for (const auto& seg : c.field_)
    if (seg.empty()) fail("'" + spec.field + "' is not a field path");
  boost::system::error_code ec;
  c.operand_ = json::parse(spec.operand_json, ec);
  if (ec) {
    fail("operand is not a value");
    return c;
  }
  switch (c.op_) {
    case Op::kIn:
      if (!c.operand_.is_array()) fail("in: expected a list of values");
      break;
    case Op::kRegex:
      if (!c.operand_.is_string()) {
        fail("regex: expected a regular expression (a string)");
        break;
      }
      try {
        c.regex_ = std::make_shared<const std::regex>(std::string(c.operand_.as_string()),
                                                      std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail("regex: invalid regular expression '" + std::string(c.operand_.as_string()) +
             "': " + e.what());
      }
      break;
    case Op::kGt:
    case Op::kGte:
    case Op::kLt:
    case Op::kLte:
      if (!c.operand_.is_number() && !c.operand_.is_string())
        fail(spec.op + ": expected a number or a string");
      break;
    case Op::kExists:
      if (!c.operand_.is_bool()) fail("exists: expected true or false");
      break;
    default:
      break;
  }
  return c;
}

bool Condition::Matches(const json::value& context) const {
  switch (op_) {
    case Op::kAll:
      for (const auto& c : children_)
        if (!c.Matches(context)) return false;
      return true;
    case Op::kAny:
      for (const auto& c : children_)
        if (c.Matches(context)) return true;
      return false;
    case Op::kNot:
      return !children_.empty() && !children_.front().Matches(context);
    default:
      break;
  }
  const json::value* v = FieldOf(context, field_, event_field_);
  if (v && v->is_null()) v = nullptr;
  switch (op_) {
    case Op::kExists:
      return (v != nullptr) == operand_.as_bool();
    case Op::kEq:
      return v && Equal(*v, operand_);
    case Op::kNe:
      return !v || !Equal(*v, operand_);
    case Op::kIn:
      if (!v || !operand_.is_array()) return false;
      for (const auto& item : operand_.as_array())
        if (Equal(*v, item)) return true;
      return false;
    case Op::kRegex:
      return v && regex_ && !v->is_object() && !v->is_array() &&
             std::regex_search(Text(*v), *regex_);
    case Op::kGt:
    case Op::kGte:
    case Op::kLt:
    case Op::kLte: {
      if (!v) return false;
      auto order = Compare(*v, operand_);
      if (!order) return false;
      if (op_ == Op::kGt) return *order > 0;
      if (op_ == Op::kGte) return *order >= 0;
      if (op_ == Op::kLt) return *order < 0;
      return *order <= 0;
    }
    default:
      return false;
  }
}

}  // namespace tscb::handlers
