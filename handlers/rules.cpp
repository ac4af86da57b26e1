#include "handlers/rules.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>

namespace tscb::handlers {
namespace json = boost::json;

struct RuleSet::Action {
  int index = 0;
  std::string name;
  const ActionSpec* spec = nullptr;  // null for thingspace.call and http.post
  Template body;
  bool has_body = false;
  Template target;  // thingspace.call path or http.post URL
  std::string method;
  Template once_per;
  std::chrono::milliseconds window{0};
  std::chrono::milliseconds after{0};
  bool safe = false;
  int max_attempts = 0;
};

struct RuleSet::Rule {
  std::string name;
  std::string fingerprint;  // what the rule says, to tell a reload's changes
  std::vector<std::string> kinds, statuses;
  std::string account, service;
  std::optional<Condition> match;
  std::vector<Action> actions;
};

namespace {

bool Contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Template paths a rule may use (the payload's are not known in advance).
std::string CheckPath(const FieldPath& p) {
  static const std::vector<std::string> kLeaves = {
      "kind",    "status",   "raw_status",  "account",    "request_id",
      "service", "event_id", "received_at", "error_code", "error_message"};
  static const std::vector<std::string> kDevice = {"id", "kind", "ids"};
  static const std::vector<std::string> kRequest = {"requestId",        "account",
                                                    "action",           "nbiot",
                                                    "origin",           "state",
                                                    "submittedAt",      "deadlineAt",
                                                    "completedAt",      "expectedCallbacks",
                                                    "receivedCallbacks"};
  const std::string& root = p[0];
  if (Contains(kLeaves, root))
    return p.size() == 1 ? "" : root + " is a plain value with no fields";
  if (root == "payload" || root == "body" || root == "device_ids" || root == "devices") return "";
  if (root == "primary_device")
    return p.size() == 1 || Contains(kDevice, p[1]) ? "" : "primary_device has id, kind and ids";
  if (root == "request")
    return p.size() == 1 || Contains(kRequest, p[1])
               ? ""
               : "request has requestId, account, action, state, origin, devices, ...";
  if (root == "rule")
    return p.size() == 2 && (p[1] == "name" || p[1] == "action") ? "" : "rule has name and action";
  return "unknown field '" + root +
         "' (the event has kind, status, account, request_id, primary_device, device_ids, "
         "devices, payload, request, rule, ...)";
}

bool KindMatches(const std::vector<std::string>& kinds, const std::string& kind) {
  if (kinds.empty()) return true;
  for (const auto& k : kinds) {
    if (k == kind) return true;
    // "provisioning.*": the prefix up to and with the dot.
    if (k.size() > 2 && k.ends_with(".*") &&
        kind.starts_with(std::string_view(k).substr(0, k.size() - 1)))
      return true;
  }
  return false;
}

std::string ConditionFingerprint(const config::ConditionSpec& c) {
  std::string out = c.op + "(" + c.field + "," + c.operand_json;
  for (const auto& child : c.children) out += "," + ConditionFingerprint(child);
  return out + ")";
}

std::string Fingerprint(const config::RuleSpec& r) {
  std::string out = r.name + (r.enabled ? "+" : "-") + r.account + "|" + r.service + "|";
  for (const auto& k : r.kinds) out += k + ",";
  out += "|";
  for (const auto& s : r.statuses) out += s + ",";
  if (r.match) out += ConditionFingerprint(*r.match);
  for (const auto& a : r.actions)
    out += "|" + a.action + a.with_json + std::to_string(a.after.count()) + a.once_per +
           std::to_string(a.window.count()) + (a.enabled ? "+" : "-") + a.method + a.path + a.url +
           (a.safe ? (*a.safe ? "s" : "u") : "") + std::to_string(a.max_attempts);
  return out;
}

json::object DeviceJson(const DeviceId& d) { return {{"id", d.id}, {"kind", d.kind}}; }

}  // namespace

json::object EventContext(Event e, const EventSource& source) {
  json::object c;
  auto put = [&](const char* key, const std::string& value) {
    if (!value.empty()) c[key] = value;
  };
  put("kind", e.kind);
  put("status", e.status);
  put("raw_status", e.raw_status);
  std::string account = e.account;
  if (account.empty() && source.request)
    if (auto* a = source.request->if_contains("account"); a && a->is_string())
      account = std::string(a->as_string());
  put("account", account.empty() ? source.default_account : account);
  put("request_id", e.request_id);
  put("service", source.service);
  put("received_at", source.received_at);
  put("error_code", e.error_code);
  put("error_message", e.error_message);
  if (source.event_id) c["event_id"] = source.event_id;
  json::array device_ids, devices;
  for (const auto& device : e.devices) {
    if (device.empty()) continue;
    device_ids.push_back(DeviceJson(device.front()));
    json::array ids;
    for (const auto& id : device) ids.push_back(DeviceJson(id));
    devices.push_back(json::object{{"deviceIds", std::move(ids)}});
  }
  if (!devices.empty()) {
    json::object primary = DeviceJson(e.devices.front().front());
    primary["ids"] = devices.front().as_object().at("deviceIds");
    c["primary_device"] = std::move(primary);
  }
  c["device_ids"] = std::move(device_ids);
  c["devices"] = std::move(devices);
  c["payload"] = std::move(e.payload);
  if (source.request) c["request"] = *source.request;
  if (source.body) c["body"] = std::move(*source.body);
  return c;
}

RuleSet::~RuleSet() = default;

std::shared_ptr<const RuleSet> RuleSet::Empty() { return std::make_shared<const RuleSet>(); }

std::shared_ptr<const RuleSet> RuleSet::Compile(const config::RulesFile& file,
                                                std::vector<std::string>& errors) {
  auto set = std::make_shared<RuleSet>();
  set->file_ = file.file;
  const auto before = errors.size();
  const auto& known_kinds = KnownEventKinds();
  for (const auto& spec : file.rules) {
    auto rule = std::make_unique<Rule>();
    rule->name = spec.name;
    rule->fingerprint = Fingerprint(spec);
    rule->kinds = spec.kinds;
    rule->statuses = spec.statuses;
    rule->account = spec.account;
    rule->service = spec.service;
    const std::string at = spec.where.Describe();
    for (const auto& k : spec.kinds) {
      bool ok = Contains(known_kinds, k);
      if (!ok && k.ends_with(".*"))
        for (const auto& known : known_kinds)
          ok = ok || known.rfind(k.substr(0, k.size() - 1), 0) == 0;
      if (!ok) errors.push_back(at + ".when.kind: unknown event kind " + k);
    }
    if (spec.match) rule->match = Condition::Compile(*spec.match, errors);

    for (std::size_t i = 0; i < spec.actions.size(); ++i) {
      const auto& a = spec.actions[i];
      const std::string where = a.where.Describe();
      auto fail = [&](const std::string& message) { errors.push_back(where + ": " + message); };
      Action act;
      act.index = static_cast<int>(i);
      act.name = a.action;
      act.after = a.after;
      act.window = a.window;
      act.max_attempts = a.max_attempts;
      boost::system::error_code ec;
      json::value with = json::parse(a.with_json, ec);
      if (ec || !with.is_object()) {
        fail("with: not a mapping");
        continue;
      }
      const bool generic = a.action == kThingSpaceCall || a.action == kHttpPost;
      if (!generic) {
        act.spec = FindAction(a.action);
        if (!act.spec) {
          fail("unknown action " + a.action + " (see `ts-callbackd actions catalogue`)");
          continue;
        }
        for (const auto& why : CheckBody(*act.spec, with.as_object(), true))
          errors.push_back(a.with_where.Describe() + ": " + why);
        if (!a.method.empty() || !a.path.empty() || !a.url.empty())
          fail("method, path and url belong to thingspace.call and http.post");
        if (a.safe) fail("safe: the catalogue decides whether " + a.action + " may be repeated");
        act.safe = act.spec->safe;
        act.method = act.spec->method;
        act.has_body = true;  // BuildCall moves fields to the path or query
      } else if (a.action == kThingSpaceCall) {
        static const std::vector<std::string> kMethods = {"GET", "POST", "PUT", "DELETE"};
        if (!Contains(kMethods, a.method)) fail("method: expected GET, POST, PUT or DELETE");
        if (a.path.empty() || a.path.front() != '/')
          fail("path: expected a path under the API base, such as /devices/actions/list");
        if (!a.url.empty()) fail("url belongs to http.post");
        act.method = a.method;
        act.target = Template::Compile(json::string(a.path), where + ".path", CheckPath, errors);
        act.safe = a.safe.value_or(false);
        act.has_body = a.method != "GET";
      } else {
        if (a.url.rfind("http://", 0) != 0 && a.url.rfind("https://", 0) != 0)
          fail("url: expected an http:// or https:// URL");
        if (!a.method.empty() || !a.path.empty()) fail("method and path belong to thingspace.call");
        act.method = "POST";
        act.target = Template::Compile(json::string(a.url), where + ".url", CheckPath, errors);
        act.safe = a.safe.value_or(false);
        act.has_body = true;
      }
      act.body = Template::Compile(with, a.with_where.Describe(), CheckPath, errors);
      if (!a.once_per.empty())
        act.once_per =
            Template::Compile(json::string(a.once_per), where + ".once_per", CheckPath, errors);
      if (a.enabled) rule->actions.push_back(std::move(act));
    }
    if (spec.enabled) set->rules_.push_back(std::move(rule));
  }
  // Template errors carry a bare YAML path; give them the file.
  for (auto i = before; i < errors.size(); ++i)
    if (errors[i].rfind(file.file, 0) != 0) errors[i] = file.file + ": " + errors[i];
  if (errors.size() > before) return nullptr;
  return set;
}

bool RuleSet::Wants(const std::string& kind) const {
  for (const auto& rule : rules_)
    if (KindMatches(rule->kinds, kind)) return true;
  return false;
}

std::vector<PlannedAction> RuleSet::Evaluate(json::object event, std::int64_t event_id,
                                             double event_epoch) const {
  std::vector<PlannedAction> out;
  if (rules_.empty()) return out;
  auto field = [&](const char* key) {
    auto* v = event.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  const std::string kind = field("kind"), status = field("status"), account = field("account"),
                    service = field("service");
  json::value context(std::move(event));
  for (const auto& rule : rules_) {
    if (!KindMatches(rule->kinds, kind)) continue;
    if (!rule->statuses.empty() && !Contains(rule->statuses, status)) continue;
    if (!rule->account.empty() && rule->account != account) continue;
    if (!rule->service.empty() && rule->service != service) continue;
    if (rule->match && !rule->match->Matches(context)) continue;
    for (const auto& act : rule->actions) {
      PlannedAction p;
      p.rule = rule->name;
      p.index = act.index;
      p.action = act.name;
      p.method = act.method;
      p.safe = act.safe;
      p.max_attempts = act.max_attempts;
      p.delay = act.after;
      p.correlate = act.spec ? act.spec->correlate : "other";
      context.as_object()["rule"] = json::object{{"name", rule->name}, {"action", act.name}};
      std::string scope = "event:" + std::to_string(event_id);
      if (!act.once_per.Empty()) {
        scope = "scope:" + act.once_per.RenderText(context, p.error);
        if (act.window.count() > 0) {
          auto bucket = static_cast<long long>(
              std::floor(event_epoch * 1000.0 / static_cast<double>(act.window.count())));
          scope += "@" + std::to_string(bucket);
        }
      }
      p.idempotency_key =
          rule->name + "/" + std::to_string(act.index) + ":" + act.name + "/" + scope;
      json::value body = act.body.Render(context, p.error);
      if (p.error.empty() && act.spec) {
        auto problems = CheckBody(*act.spec, body.as_object());
        if (!problems.empty()) {
          p.error = "body refused: " + problems.front();
          for (std::size_t i = 1; i < problems.size(); ++i) p.error += "; " + problems[i];
        } else {
          HttpCall call = BuildCall(*act.spec, std::move(body.as_object()));
          p.target = std::move(call.path);
          p.body = std::move(call.body);
        }
      } else if (p.error.empty()) {
        p.target = act.target.RenderText(context, p.error);
        if (act.has_body) p.body = std::move(body.as_object());
      }
      if (!p.error.empty() && p.target.empty() && act.spec) p.target = act.spec->path;
      out.push_back(std::move(p));
    }
    context.as_object().erase("rule");
  }
  return out;
}

std::vector<std::string> RuleSet::Names() const {
  std::vector<std::string> out;
  for (const auto& r : rules_) out.push_back(r->name);
  return out;
}

bool RuleSet::HasRule(const std::string& name) const {
  for (const auto& r : rules_)
    if (r->name == name) return true;
  return false;
}

std::string RuleSet::Changes(const RuleSet& before, const RuleSet& after) {
  std::map<std::string, std::string> old_rules, new_rules;
  for (const auto& r : before.rules_) old_rules[r->name] = r->fingerprint;
  for (const auto& r : after.rules_) new_rules[r->name] = r->fingerprint;
  std::string added, removed, changed;
  auto add = [](std::string& list, const std::string& name) {
    list += (list.empty() ? "" : ", ") + name;
  };
  for (const auto& [name, fp] : new_rules) {
    auto it = old_rules.find(name);
    if (it == old_rules.end())
      add(added, name);
    else if (it->second != fp)
      add(changed, name);
  }
  for (const auto& [name, fp] : old_rules)
    if (!new_rules.count(name)) add(removed, name);
  std::string out = std::to_string(after.rules_.size()) + " active rule(s)";
  if (added.empty() && removed.empty() && changed.empty()) return out + ", no change";
  if (!added.empty()) out += "; added " + added;
  if (!removed.empty()) out += "; removed " + removed;
  if (!changed.empty()) out += "; changed " + changed;
  return out;
}

}  // namespace tscb::handlers
