#pragma once
// The rule engine (DESIGN.md section 6): a compiled rules file, evaluated
// against each new event inside the processing transaction. A rule matches
// an event by kind (exact, or "prefix.*"), status, account, service and its
// `match` conditions; each enabled action under `do` becomes a planned
// outbox row with its rendered request, whether it may be repeated, and an
// idempotency key: rule, action position and name, then either the cause
// event or the rendered `once_per` scope (and its time window), so a resent
// callback, a replay or a second daemon can never plan it twice.
// Compile() validates everything up front (unknown action or event kind,
// bodies the action refuses, bad regexes, unknown template fields), each
// error with its file, line and YAML path. Pure; a RuleSet is immutable and
// shared between threads.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/rules_file.hpp"
#include "handlers/action_catalogue.hpp"
#include "handlers/classify.hpp"
#include "handlers/condition.hpp"
#include "handlers/template.hpp"

namespace tscb::handlers {

// Where an event came from, and what else rules may see of it.
struct EventSource {
  std::string service;
  std::int64_t event_id = 0;
  std::string received_at;
  const boost::json::object* request = nullptr;  // the pending request it answers
  boost::json::object* body = nullptr;           // the callback as stored; moved into the context
  std::string default_account;                   // when neither the event nor its request names one
};

// What an event offers to conditions and templates: kind, status,
// raw_status, account (the event's, else its request's, else the
// configured one), request_id, service, event_id, received_at, error_code,
// error_message (absent when empty); primary_device {id, kind, ids};
// device_ids [{id, kind}] (each device's first identifier); devices
// [{"deviceIds": [...]}] (every identifier, the shape of most action
// bodies); payload; body (the callback as received, credentials removed,
// when known); request (the pending request it answers: requestId, account,
// action, nbiot, origin, state, submittedAt, deadlineAt, expectedCallbacks,
// receivedCallbacks); rule {name, action} while an action is rendered.
// `event`'s payload is moved into the context: pass a copy to keep it.
boost::json::object EventContext(Event event, const EventSource& source);

struct PlannedAction {
  std::string rule;
  int index = 0;       // position under the rule's `do`
  std::string action;  // catalogue name, thingspace.call or http.post
  std::string idempotency_key;
  std::string method;  // GET POST PUT DELETE
  std::string target;  // path under the M2M base, or the URL of http.post
  std::optional<boost::json::object> body;
  bool safe = false;      // may be sent again after a crash
  std::string correlate;  // pending-request action for a requestId answer ("" = none)
  int max_attempts = 0;   // 0 = the configured default
  std::chrono::milliseconds delay{0};
  std::string error;  // could not be rendered: recorded as failed, never sent
};

class RuleSet {
 public:
  struct Action;
  struct Rule;

  // Returns null when `errors` got anything.
  static std::shared_ptr<const RuleSet> Compile(const config::RulesFile& file,
                                                std::vector<std::string>& errors);
  static std::shared_ptr<const RuleSet> Empty();

  // The actions `context` (EventContext) triggers. `event_epoch` (seconds)
  // places once_per windows.
  std::vector<PlannedAction> Evaluate(boost::json::object context, std::int64_t event_id,
                                      double event_epoch) const;
  // Whether any rule looks at events of `kind` (so building a context pays).
  bool Wants(const std::string& kind) const;

  std::size_t Size() const { return rules_.size(); }
  const std::string& File() const { return file_; }
  std::vector<std::string> Names() const;
  // Whether a rule or action name exists (pause/resume checks).
  bool HasRule(const std::string& name) const;
  // "2 rule(s): added a; removed b; changed c" or "no change".
  static std::string Changes(const RuleSet& before, const RuleSet& after);

  ~RuleSet();

 private:
  std::string file_;
  std::vector<std::unique_ptr<Rule>> rules_;
};

}  // namespace tscb::handlers
