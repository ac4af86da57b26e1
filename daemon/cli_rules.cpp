#include "daemon/cli_rules.hpp"

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>

#include "config/yaml_reader.hpp"
#include "daemon/cli_output.hpp"
#include "daemon/rule_book.hpp"
#include "daemon/time_format.hpp"
#include "handlers/action_catalogue.hpp"
#include "handlers/correlate.hpp"
#include "handlers/rules.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/pg_processing_store.hpp"

namespace tscb::daemon {
namespace json = boost::json;
namespace {

constexpr const char* kRulesUsage =
    "usage: ts-callbackd rules check FILE\n"
    "       ts-callbackd rules test (--event-file F [--service S] | --since 7d) [--rules FILE]\n"
    "                               [--format table|csv|json]   (a dry run: nothing is sent)\n"
    "       ts-callbackd rules pause|resume RULE\n";
constexpr const char* kActionsUsage =
    "usage: ts-callbackd actions list [--state S] [--limit N] [--format table|csv|json]\n"
    "       ts-callbackd actions show ID | retry ID | cancel ID\n"
    "       ts-callbackd actions pause|resume ACTION_NAME\n"
    "       ts-callbackd actions paused\n"
    "       ts-callbackd actions catalogue [--format markdown|table|csv|json]\n";

std::string Opt(const CommandLine& cl, const std::string& name) {
  auto it = cl.options.find(name);
  return it == cl.options.end() ? std::string() : it->second;
}

std::shared_ptr<const handlers::RuleSet> CompileOrReport(const std::string& file) {
  std::vector<std::string> errors;
  auto set = CompileRulesFile(file, errors);
  for (const auto& e : errors) std::cerr << e << '\n';
  if (!set) std::cerr << file << ": " << errors.size() << " error(s)\n";
  return set;
}

struct TestEvent {
  std::int64_t id = 0;
  std::string service, received_at;
  double epoch = 0;
  handlers::Event event;
  std::optional<json::object> request;
  std::optional<json::object> body;
};

// One callback from a file: a body as ThingSpace sends it (the service from
// --service or a file name such as CarrierService__activate.json), or
// {"service": ..., "body": {...}}.
std::optional<TestEvent> EventFromFile(const std::string& path, std::string service) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << path << ": cannot open the file\n";
    return std::nullopt;
  }
  std::string text((std::istreambuf_iterator<char>(in)), {});
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    std::cerr << path << ": not a JSON object\n";
    return std::nullopt;
  }
  json::object body = v.as_object();
  if (auto* b = body.if_contains("body"); b && b->is_object() && body.contains("service")) {
    if (service.empty() && body.at("service").is_string())
      service = std::string(body.at("service").as_string());
    body = b->as_object();
  }
  if (service.empty()) {
    auto slash = path.find_last_of('/');
    std::string name = path.substr(slash == std::string::npos ? 0 : slash + 1);
    if (auto cut = name.find("__"); cut != std::string::npos) service = name.substr(0, cut);
  }
  if (service.empty()) {
    std::cerr << path << ": which service sent it? give --service NAME\n";
    return std::nullopt;
  }
  body.erase("username");
  body.erase("password");
  TestEvent t;
  t.service = service;
  t.received_at = IsoUtc(std::chrono::system_clock::now());
  t.epoch =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  t.event = handlers::Classify(service, body);
  t.body = std::move(body);
  return t;
}

// "7d", "24h", "30m" ago, or a timestamp as given.
std::string SinceTimestamp(const std::string& since) {
  std::optional<config::Duration> d;
  if (!since.empty() && since.back() == 'd') {
    if (auto days = config::ParseDuration(since.substr(0, since.size() - 1) + "h")) d = *days * 24;
  } else {
    d = config::ParseDuration(since);
  }
  return d ? IsoUtc(std::chrono::system_clock::now() - *d) : since;
}

std::vector<TestEvent> StoredEvents(const config::Config& config, const std::string& since) {
  storage::pg::PgProcessingStore store(config.database.ConnectionString());
  auto batch = store.Begin();
  std::vector<TestEvent> out;
  for (auto& row : batch->EventsSince(SinceTimestamp(since), 100'000)) {
    TestEvent t;
    t.id = row.id;
    t.service = row.service;
    t.received_at = row.received_at;
    t.epoch = row.received_epoch;
    t.event.kind = row.kind;
    t.event.status = row.status;
    t.event.raw_status = row.raw_status;
    t.event.request_id = row.request_id;
    t.event.account = row.account;
    t.event.devices = handlers::ParseDevicesJson(row.device_ids_json);
    t.event.error_code = row.error_code;
    t.event.error_message = row.error_message;
    boost::system::error_code ec;
    auto payload = json::parse(row.payload_json, ec);
    if (!ec && payload.is_object()) t.event.payload = payload.as_object();
    auto request = json::parse(row.request_json, ec);
    if (!ec && request.is_object()) t.request = request.as_object();
    auto body = json::parse(row.body_json, ec);
    if (!ec && body.is_object()) {
      body.as_object().erase("username");
      body.as_object().erase("password");
      t.body = body.as_object();
    }
    out.push_back(std::move(t));
  }
  return out;
}

int Test(const CommandLine& cl, const config::Config* config) {
  std::string rules_file = Opt(cl, "rules");
  if (rules_file.empty() && config) rules_file = config->rules.file;
  if (rules_file.empty()) {
    std::cerr << "rules test: no rules file (give --rules FILE or set rules.file)\n" << kRulesUsage;
    return 2;
  }
  auto set = CompileOrReport(rules_file);
  if (!set) return 2;
  std::vector<TestEvent> events;
  if (!Opt(cl, "event-file").empty()) {
    auto e = EventFromFile(Opt(cl, "event-file"), Opt(cl, "service"));
    if (!e) return 2;
    events.push_back(std::move(*e));
  } else if (!Opt(cl, "since").empty() && config) {
    events = StoredEvents(*config, Opt(cl, "since"));
  } else {
    std::cerr << kRulesUsage;
    return 2;
  }
  auto format = ParseFormat(Opt(cl, "format") == "text" ? "" : Opt(cl, "format"), "rules test");
  if (!format) return 2;
  const bool as_json = *format != Format::kTable;  // json and csv collect the planned actions
  json::array all;
  std::size_t matched = 0, planned = 0, errors = 0;
  for (auto& t : events) {
    auto context = handlers::EventContext(
        t.event, {t.service, t.id, t.received_at, t.request ? &*t.request : nullptr,
                  t.body ? &*t.body : nullptr, config ? config->account : std::string()});
    auto actions = set->Evaluate(std::move(context), t.id, t.epoch);
    if (!actions.empty()) ++matched;
    if (!as_json && (!actions.empty() || events.size() == 1)) {
      std::cout << "event " << (t.id ? std::to_string(t.id) : std::string("(file)")) << " "
                << t.event.kind << " " << t.event.status;
      if (!t.event.devices.empty() && !t.event.devices[0].empty())
        std::cout << " " << t.event.devices[0][0].kind << " " << t.event.devices[0][0].id;
      std::cout << (actions.empty() ? ": no rule matches\n" : "\n");
    }
    for (const auto& p : actions) {
      p.error.empty() ? ++planned : ++errors;
      json::object o{{"event_id", t.id},
                     {"kind", t.event.kind},
                     {"rule", p.rule},
                     {"action", p.action},
                     {"method", p.method},
                     {"target", p.target},
                     {"safe", p.safe},
                     {"idempotency_key", p.idempotency_key},
                     {"delay_ms", p.delay.count()}};
      if (p.body) o["body"] = *p.body;
      if (!p.error.empty()) o["error"] = p.error;
      if (as_json) {
        all.push_back(std::move(o));
        continue;
      }
      std::cout << "  rule " << p.rule << " -> " << p.action;
      if (!p.error.empty()) {
        std::cout << ": ERROR " << p.error << " (it would be recorded as failed)\n";
        continue;
      }
      std::cout << ": " << p.method << " " << p.target;
      if (p.delay.count() > 0) std::cout << " after " << p.delay.count() / 1000 << " s";
      std::cout << (p.safe ? "" : " [not safe to repeat]") << "\n";
      if (p.body) std::cout << "    " << json::serialize(*p.body) << "\n";
      std::cout << "    key " << p.idempotency_key << "\n";
    }
  }
  if (as_json) {
    PrintRows(
        std::cout, *format, all,
        *format == Format::kCsv
            ? std::vector<std::string>{"event_id", "kind", "rule", "action", "method", "target",
                                       "safe", "delay_ms", "idempotency_key", "body", "error"}
            : std::vector<std::string>{});
  } else {
    std::cout << events.size() << " event(s), " << matched << " matched a rule, " << planned
              << " request(s) would be sent, " << errors
              << " action(s) would fail; nothing was sent (dry run)\n";
  }
  return errors ? 1 : 0;
}

int Catalogue(const CommandLine& cl) {
  const std::string wanted = Opt(cl, "format");
  std::optional<Format> format;
  if (wanted != "markdown" && !wanted.empty()) {
    format = ParseFormat(wanted, "actions catalogue (or --format markdown, the default)");
    if (!format) return 2;
  }
  if (format) {
    json::array out;
    for (const auto& a : handlers::Catalogue()) {
      json::array fields;
      for (const auto& f : a.fields)
        fields.push_back(json::object{
            {"name", f.name}, {"type", handlers::TypeName(f.type)}, {"required", f.required}});
      out.push_back(json::object{{"name", a.name},
                                 {"method", a.method},
                                 {"path", a.path},
                                 {"safe", a.safe},
                                 {"correlate", a.correlate},
                                 {"summary", a.summary},
                                 {"fields", std::move(fields)},
                                 {"open", a.open}});
    }
    PrintRows(std::cout, *format, out,
              *format == Format::kJson ? std::vector<std::string>{}
                                       : std::vector<std::string>{"name", "method", "path", "safe",
                                                                  "correlate", "summary"});
    return 0;
  }
  std::cout << "| action | request | safe to repeat | body fields (* required) |\n"
               "|---|---|---|---|\n";
  for (const auto& a : handlers::Catalogue()) {
    std::string fields;
    for (const auto& f : a.fields)
      fields +=
          (fields.empty() ? "" : ", ") + std::string("`") + f.name + (f.required ? "`*" : "`");
    for (const auto& group : a.one_of) {
      std::string names;
      for (const char* n : group) names += (names.empty() ? "" : "/") + std::string(n);
      fields += "; one of " + names;
    }
    if (a.open) fields += "; others passed through";
    std::cout << "| `" << a.name << "` | " << a.method << " `" << a.path << "` | "
              << (a.safe ? "yes" : "no") << " | " << fields << " |\n";
  }
  std::cout << "| `thingspace.call` | `method` + `path` (any, under the API base) | `safe:` "
               "(default no) | any |\n"
               "| `http.post` | POST `url` (an internal http(s) URL) | `safe:` (default no) | "
               "any |\n";
  return 0;
}

json::object ActionJson(const storage::OutboxAction& a) {
  json::object o{{"id", a.id},
                 {"rule", a.rule},
                 {"action", a.action},
                 {"state", a.state},
                 {"safe", a.safe},
                 {"attempts", a.attempts},
                 {"max_attempts", a.max_attempts},
                 {"method", a.method},
                 {"target", a.target},
                 {"created_at", a.created_at},
                 {"next_attempt_at", a.next_attempt_at},
                 {"completed_at", a.completed_at},
                 {"http_status", a.http_status},
                 {"last_error", a.last_error},
                 {"request_id", a.request_id},
                 {"cause_event_id", a.cause_event_id},
                 {"chain_id", a.chain_id},
                 {"depth", a.depth}};
  if (a.body_json) {
    boost::system::error_code ec;
    o["body"] = json::parse(*a.body_json, ec);
  }
  return o;
}

void PrintActions(const std::vector<storage::OutboxAction>& actions, Format format) {
  if (format != Format::kTable) {
    json::array out;
    for (const auto& a : actions) {
      json::object o = ActionJson(a);
      out.push_back(std::move(o));
    }
    PrintRows(std::cout, format, out,
              format == Format::kJson
                  ? std::vector<std::string>{}
                  : std::vector<std::string>{"id", "state", "action", "rule", "attempts",
                                             "max_attempts", "method", "target", "request_id",
                                             "created_at", "completed_at", "last_error"});
    return;
  }
  // The table: one line per action, its last error in full below it.
  for (const auto& a : actions) {
    std::cout << a.id << "  " << a.state << "  " << a.action << "  rule " << a.rule << "  "
              << a.attempts << "/" << a.max_attempts << " attempt(s)  " << a.method << " "
              << a.target;
    if (!a.request_id.empty()) std::cout << "  request " << a.request_id;
    if (!a.last_error.empty()) std::cout << "\n    " << a.last_error;
    std::cout << '\n';
  }
  std::cout << "(" << actions.size() << " action" << (actions.size() == 1 ? "" : "s") << ")\n";
}

std::int64_t IdOperand(const CommandLine& cl) {
  try {
    return cl.operands.size() == 2 ? std::stoll(cl.operands[1]) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

int Pause(const std::string& kind, const CommandLine& cl, const config::Config& config) {
  const std::string& name = cl.operands[1];
  const bool pause = cl.operands[0] == "pause";
  if (kind == "action" && !handlers::FindAction(name) && name != handlers::kThingSpaceCall &&
      name != handlers::kHttpPost) {
    std::cerr << "actions " << cl.operands[0] << ": unknown action " << name
              << " (see `ts-callbackd actions catalogue`)\n";
    return 2;
  }
  if (kind == "rule" && !config.rules.file.empty()) {
    std::vector<std::string> errors;
    auto set = CompileRulesFile(config.rules.file, errors);
    if (set && !set->HasRule(name))
      std::cerr << "note: " << config.rules.file << " has no active rule " << name
                << " (another daemon's file may)\n";
  }
  storage::pg::PgProcessingStore store(config.database.ConnectionString());
  auto batch = store.Begin();
  batch->SetPaused(kind, name, pause);
  batch->Commit();
  std::cout << kind << " " << name
            << (pause ? ": paused; its actions are planned and wait"
                      : ": resumed; its waiting actions go out now")
            << '\n';
  return 0;
}

int Actions(const CommandLine& cl, const config::Config& config) {
  const std::string sub = cl.operands.empty() ? "" : cl.operands[0];
  if (sub == "catalogue") return Catalogue(cl);
  if ((sub == "pause" || sub == "resume") && cl.operands.size() == 2)
    return Pause("action", cl, config);
  auto format = ParseFormat(Opt(cl, "format"), "actions");
  if (!format) return 2;
  storage::pg::PgProcessingStore store(config.database.ConnectionString());
  auto batch = store.Begin();
  if (sub == "list" && cl.operands.size() == 1) {
    long limit = 100;
    const std::string text = Opt(cl, "limit");
    if (!text.empty()) {
      char* end = nullptr;
      limit = std::strtol(text.c_str(), &end, 10);
      if (*end != '\0' || limit < 1) {
        std::cerr << "actions list: --limit takes a whole number of at least 1\n";
        return 2;
      }
    }
    PrintActions(batch->ListActions(Opt(cl, "state"), 0, static_cast<std::size_t>(limit)), *format);
    return 0;
  }
  if (sub == "paused" && cl.operands.size() == 1) {
    json::array rows;
    for (const auto& [kind, name] : batch->Paused())
      rows.push_back(json::object{{"kind", kind}, {"name", name}});
    PrintRows(std::cout, *format, rows, {"kind", "name"});
    return 0;
  }
  const std::int64_t id = IdOperand(cl);
  if ((sub == "show" || sub == "retry" || sub == "cancel") && id > 0) {
    auto found = batch->ListActions("", id, 1);
    if (found.empty()) {
      std::cerr << "actions " << sub << ": no action " << id << '\n';
      return 1;
    }
    if (sub == "show") {
      if (*format == Format::kTable)
        PrintRecord(std::cout, *format, ActionJson(found[0]));
      else
        PrintActions(found, *format);
      return 0;
    }
    bool done = sub == "retry" ? batch->RetryAction(id) : batch->CancelAction(id);
    batch->Commit();
    if (!done) {
      std::cerr << "actions " << sub << ": action " << id << " is " << found[0].state
                << (sub == "retry" ? "; only failed, dead, needs_review or cancelled actions are "
                                     "retried"
                                   : "; only queued, needs_review, failed or dead actions are "
                                     "cancelled")
                << '\n';
      return 1;
    }
    std::cout << "action " << id << " (" << found[0].action
              << "): " << (sub == "retry" ? "queued again" : "cancelled") << '\n';
    return 0;
  }
  std::cerr << kActionsUsage;
  return 2;
}

}  // namespace

bool IsRulesCommand(const std::string& command) {
  return command == "rules" || command == "actions";
}

std::optional<int> RunRulesCommandWithoutConfig(const CommandLine& cl) {
  const std::string sub = cl.operands.empty() ? "" : cl.operands[0];
  if (cl.command == "rules" && sub == "check") {
    if (cl.operands.size() != 2) {
      std::cerr << kRulesUsage;
      return 2;
    }
    auto format = ParseFormat(Opt(cl, "format"), "rules check");
    if (!format) return 2;
    auto set = CompileOrReport(cl.operands[1]);
    if (!set) return 2;
    if (*format == Format::kTable)
      std::cout << cl.operands[1] << ": OK (" << set->Size() << " active rule(s))\n";
    else
      PrintRecord(
          std::cout, *format,
          json::object{{"file", cl.operands[1]}, {"ok", true}, {"active_rules", set->Size()}});
    return 0;
  }
  if (cl.command == "rules" && sub == "test" && !Opt(cl, "rules").empty() &&
      Opt(cl, "since").empty())
    return Test(cl, nullptr);
  if (cl.command == "actions" && sub == "catalogue") return Catalogue(cl);
  return std::nullopt;
}

int RunRulesCommand(const CommandLine& cl, const config::Config& config) {
  try {
    const std::string sub = cl.operands.empty() ? "" : cl.operands[0];
    if (cl.command == "actions") return Actions(cl, config);
    if (sub == "test" && cl.operands.size() == 1) return Test(cl, &config);
    if ((sub == "pause" || sub == "resume") && cl.operands.size() == 2)
      return Pause("rule", cl, config);
    std::cerr << kRulesUsage;
    return 2;
  } catch (const storage::StorageError& e) {
    std::cerr << cl.command << ": database " << config.database.Describe() << ": " << e.what()
              << '\n';
    return 1;
  }
}

}  // namespace tscb::daemon
