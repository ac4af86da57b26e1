// The rule engine: conditions, templates, rule compilation and its errors,
// evaluation and idempotency keys (handlers/condition, template, rules).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "config/rules_file.hpp"
#include "handlers/classify.hpp"
#include "handlers/condition.hpp"
#include "handlers/rules.hpp"
#include "handlers/template.hpp"

namespace tscb::handlers {
namespace {
namespace json = boost::json;

json::value Parse(const std::string& text) { return json::parse(text); }

// An event context as the processor makes it.
json::object SampleContext() {
  Event e;
  e.kind = "provisioning.activate";
  e.status = "success";
  e.request_id = "req-1";
  e.account = "0000123456-00001";
  e.devices = {{{"89148000000800139708", "iccid"}, {"990013907835573", "imei"}},
               {{"89148000000800139716", "iccid"}}};
  e.payload = Parse(R"({"state": "active", "servicePlan": "M2M5GB", "usage": "150",
                        "bytes": 42, "note": null, "tags": ["a", "b"]})")
                  .as_object();
  json::object body =
      Parse(R"({"deviceResponse": {"activateResponse": {"state": "active"}}})").as_object();
  json::object request = Parse(R"({"requestId": "req-1", "action": "activate",
                                   "state": "succeeded", "origin": "api"})")
                             .as_object();
  return EventContext(e, {"CarrierService", 17, "2026-11-27 10:00:00+00", &request, &body, ""});
}

// Compiles one `match` written in YAML; fails the test on errors.
Condition Match(const std::string& yaml) {
  std::vector<std::string> errors;
  auto file = config::ParseRulesText(
      "rules:\n  - name: r\n    when:\n      match: " + yaml +
          "\n    do:\n      - action: sms.history\n        with: {accountName: a}\n",
      "t.yaml", errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  return Condition::Compile(*file.rules.at(0).match, errors);
}

bool Matches(const std::string& yaml) { return Match(yaml).Matches(SampleContext()); }

TEST(Condition, EveryOperator) {
  EXPECT_TRUE(Matches(R"({state: {eq: active}})"));
  EXPECT_FALSE(Matches(R"({state: {eq: suspended}})"));
  EXPECT_TRUE(Matches(R"({state: active})"));  // short for eq
  EXPECT_TRUE(Matches(R"({state: {ne: suspended}})"));
  EXPECT_FALSE(Matches(R"({state: {ne: active}})"));
  EXPECT_TRUE(Matches(R"({missing: {ne: x}})"));  // missing is "not equal"
  EXPECT_TRUE(Matches(R"({servicePlan: {in: [M2M1GB, M2M5GB]}})"));
  EXPECT_FALSE(Matches(R"({servicePlan: {in: [M2M1GB]}})"));
  EXPECT_TRUE(Matches(R"({servicePlan: {regex: "^M2M[0-9]+GB$"}})"));
  EXPECT_FALSE(Matches(R"({servicePlan: {regex: "^Tablet"}})"));
  EXPECT_TRUE(Matches(R"({usage: {gt: 100}})"));  // numeric string vs number
  EXPECT_FALSE(Matches(R"({usage: {gt: 150}})"));
  EXPECT_TRUE(Matches(R"({usage: {gte: 150}})"));
  EXPECT_TRUE(Matches(R"({bytes: {lt: 43}})"));
  EXPECT_FALSE(Matches(R"({bytes: {lt: 42}})"));
  EXPECT_TRUE(Matches(R"({bytes: {lte: 42}})"));
  EXPECT_TRUE(Matches(R"({received_at: {gt: "2026-11-01"}})"));  // strings by bytes
  EXPECT_TRUE(Matches(R"({state: {exists: true}})"));
  EXPECT_FALSE(Matches(R"({note: {exists: true}})"));  // null counts as absent
  EXPECT_TRUE(Matches(R"({missing: {exists: false}})"));
  EXPECT_FALSE(Matches(R"({missing: {gt: 1}})"));
  EXPECT_TRUE(Matches(R"({bytes: {eq: "42"}})"));  // a number against its text
}

TEST(Condition, EventFieldsPayloadAndBody) {
  EXPECT_TRUE(Matches(R"({kind: provisioning.activate, status: success})"));
  EXPECT_TRUE(Matches(R"({primary_device.kind: iccid})"));
  EXPECT_TRUE(Matches(R"({device_ids.1.id: "89148000000800139716"})"));
  EXPECT_TRUE(Matches(R"({request.action: activate})"));
  EXPECT_TRUE(Matches(R"({payload.tags.1: b})"));
  // Not in the payload: the callback body as received (DESIGN.md's example).
  EXPECT_TRUE(Matches(R"({"deviceResponse.activateResponse.state": {eq: active}})"));
}

TEST(Condition, Combinators) {
  EXPECT_TRUE(Matches(R"({all: [{state: active}, {bytes: {gt: 1}}]})"));
  EXPECT_FALSE(Matches(R"({all: [{state: active}, {bytes: {gt: 100}}]})"));
  EXPECT_TRUE(Matches(R"({any: [{state: suspended}, {bytes: {gt: 1}}]})"));
  EXPECT_FALSE(Matches(R"({any: [{state: suspended}, {bytes: {gt: 100}}]})"));
  EXPECT_TRUE(Matches(R"({not: {state: suspended}})"));
  EXPECT_FALSE(Matches(R"({not: {state: active}})"));
  EXPECT_TRUE(Matches(R"({not: {any: [{state: x}, {state: y}]}, state: active})"));
  EXPECT_FALSE(Matches(R"({state: active, bytes: {gt: 100}})"));  // keys are an implicit all
  EXPECT_TRUE(Matches(R"({bytes: {gt: 1, lt: 100}})"));           // operators on one field: all
}

TEST(Template, WholeValuesKeepTheirType) {
  std::vector<std::string> errors;
  auto t = Template::Compile(Parse(R"({"ids": "{{ device_ids }}", "n": "{{event_id}}",
                                       "plain": 5, "list": ["{{ primary_device.id }}", true]})"),
                             "with", nullptr, errors);
  ASSERT_TRUE(errors.empty());
  std::string error;
  json::value out = t.Render(SampleContext(), error);
  ASSERT_TRUE(error.empty()) << error;
  ASSERT_TRUE(out.at("ids").is_array());
  EXPECT_EQ(out.at("ids").as_array().size(), 2u);
  EXPECT_EQ(out.at("ids").at(0).at("kind"), "iccid");
  EXPECT_EQ(out.at("n"), 17);
  EXPECT_EQ(out.at("plain"), 5);
  EXPECT_EQ(out.at("list").at(0), "89148000000800139708");
  EXPECT_EQ(out.at("list").at(1), true);
}

TEST(Template, InterpolationIsEscapedText) {
  Event e;
  e.kind = "sms.mo";
  e.payload = Parse(R"({"message": "say \"hi\"\nnow", "n": 3})").as_object();
  auto ctx = EventContext(e, {"EnhancedConnectivityService", 1, "", nullptr, nullptr, ""});
  std::vector<std::string> errors;
  auto t = Template::Compile(Parse(R"j({"text": "got {{ payload.message }} ({{payload.n}})"})j"),
                             "with", nullptr, errors);
  std::string error;
  json::value out = t.Render(ctx, error);
  ASSERT_TRUE(error.empty());
  EXPECT_EQ(out.at("text"), "got say \"hi\"\nnow (3)");
  // Serialised, the quotes and the newline are escaped: valid JSON.
  EXPECT_EQ(json::serialize(out), R"j({"text":"got say \"hi\"\nnow (3)"})j");
}

TEST(Template, MissingValueIsAnErrorNamingIt) {
  std::vector<std::string> errors;
  auto t = Template::Compile(Parse(R"({"a": "x {{ payload.nothing }}"})"), "with", nullptr, errors);
  std::string error;
  auto out = t.Render(SampleContext(), error);
  EXPECT_EQ(error, "no value for {{ payload.nothing }}");
  EXPECT_TRUE(out.is_null());
  error.clear();
  t = Template::Compile(Parse(R"({"a": "{{ payload.note }}"})"), "with", nullptr, errors);
  t.Render(SampleContext(), error);
  EXPECT_EQ(error, "no value for {{ payload.note }}");  // null is missing too
}

TEST(Template, BadPlaceholdersAreCompileErrors) {
  std::vector<std::string> errors;
  Template::Compile(Parse(R"({"a": "{{ unclosed", "b": "{{ no spaces allowed }}"})"), "with",
                    nullptr, errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("with.a: '{{' without '}}'"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("with.b"), std::string::npos);
}

// ---- rules files ----

std::shared_ptr<const RuleSet> Compile(const std::string& yaml, std::vector<std::string>& errors) {
  auto file = config::ParseRulesText(yaml, "rules.yaml", errors);
  if (!errors.empty()) return nullptr;
  return RuleSet::Compile(file, errors);
}

TEST(Rules, PlansTheActionsOfAMatchingRule) {
  std::vector<std::string> errors;
  auto file = config::LoadRulesFile(TSCB_SOURCE_DIR "/tests/data/rules/welcome.yaml", errors);
  ASSERT_TRUE(errors.empty()) << errors.front();
  auto set = RuleSet::Compile(file, errors);
  ASSERT_TRUE(set) << errors.front();
  auto planned = set->Evaluate(SampleContext(), 17, 1'700'000'000);
  ASSERT_EQ(planned.size(), 2u);
  const auto& sms = planned[0];
  EXPECT_EQ(sms.action, "sms.send");
  EXPECT_EQ(sms.method, "POST");
  EXPECT_EQ(sms.target, "/sms");
  EXPECT_FALSE(sms.safe);
  EXPECT_EQ(sms.correlate, "sms");
  ASSERT_TRUE(sms.body);
  EXPECT_EQ(sms.body->at("accountName"), "0000123456-00001");
  EXPECT_EQ(sms.body->at("deviceIds").as_array().size(), 2u);
  EXPECT_EQ(sms.body->at("smsMessage"), "welcome 89148000000800139708");
  EXPECT_EQ(sms.idempotency_key, "welcome/0:sms.send/scope:89148000000800139708");
  const auto& fields = planned[1];
  EXPECT_EQ(fields.method, "PUT");
  EXPECT_EQ(fields.target, "/devices/actions/customFields");
  EXPECT_TRUE(fields.safe);
  EXPECT_EQ(fields.idempotency_key, "welcome/1:devices.custom_fields/event:17");
  EXPECT_EQ(fields.body->at("customFieldsToUpdate").at(0).at("value"), "activated");
  EXPECT_TRUE(fields.error.empty());
}

TEST(Rules, WhenFiltersKindStatusAccountService) {
  std::vector<std::string> errors;
  auto set = Compile(R"(
rules:
  - name: any-provisioning
    when: {kind: "provisioning.*", service: CarrierService, account: "0000123456-00001"}
    do: [{action: sms.history, with: {accountName: "{{ account }}"}}]
  - name: failed-only
    when: {kind: provisioning.activate, status: [failed, partial]}
    do: [{action: sms.history, with: {accountName: x}}]
  - name: other-account
    when: {account: "9999"}
    do: [{action: sms.history, with: {accountName: x}}]
  - name: off
    enabled: false
    when: {}
    do: [{action: sms.history, with: {accountName: x}}]
)",
                     errors);
  ASSERT_TRUE(set) << errors.front();
  auto planned = set->Evaluate(SampleContext(), 17, 0);
  ASSERT_EQ(planned.size(), 1u);
  EXPECT_EQ(planned[0].rule, "any-provisioning");
  EXPECT_EQ(planned[0].method, "GET");
  EXPECT_EQ(planned[0].target, "/sms/0000123456-00001/history");
  EXPECT_FALSE(planned[0].body);
}

TEST(Rules, IdempotencyKeys) {
  std::vector<std::string> errors;
  auto set = Compile(R"(
rules:
  - name: r
    when: {}
    do:
      - {action: sms.history, with: {accountName: x}}
      - {action: sms.history, with: {accountName: x}, once_per: "{{ primary_device.id }}"}
      - action: sms.history
        with: {accountName: x}
        once_per: {key: "{{ primary_device.id }}", window: 1h}
)",
                     errors);
  ASSERT_TRUE(set) << errors.front();
  auto key = [&](std::int64_t event, double epoch, int i) {
    return set->Evaluate(SampleContext(), event, epoch).at(i).idempotency_key;
  };
  // Per cause event: the same event (a resend, a replay) gives the same key.
  EXPECT_EQ(key(17, 0, 0), key(17, 99999, 0));
  EXPECT_NE(key(17, 0, 0), key(18, 0, 0));
  // once_per: the same device gives the same key whatever the event.
  EXPECT_EQ(key(17, 0, 1), key(18, 5000, 1));
  // with a window: the same key inside one hour, another in the next.
  EXPECT_EQ(key(17, 3600.0 * 10 + 1, 2), key(18, 3600.0 * 10 + 3599, 2));
  EXPECT_NE(key(17, 3600.0 * 10 + 1, 2), key(18, 3600.0 * 11 + 1, 2));
  EXPECT_EQ(key(17, 3600.0 * 10, 2), "r/2:sms.history/scope:89148000000800139708@10");
  // Action positions and rule names are part of the key.
  EXPECT_NE(key(17, 0, 1), key(17, 0, 2));
}

TEST(Rules, RenderingFailureIsRecordedOnTheAction) {
  std::vector<std::string> errors;
  auto set = Compile(R"(
rules:
  - name: r
    when: {}
    do:
      - {action: sms.send, with: {deviceIds: "{{ device_ids }}", smsMessage: "{{ payload.nothing }}"}}
      - {action: sms.send, with: {deviceIds: "{{ payload.state }}", smsMessage: hi}}
)",
                     errors);
  ASSERT_TRUE(set) << errors.front();
  auto planned = set->Evaluate(SampleContext(), 1, 0);
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_EQ(planned[0].error, "no value for {{ payload.nothing }}");
  // A value of the wrong type only shows once rendered: the body check says so.
  EXPECT_NE(planned[1].error.find("deviceIds: expected"), std::string::npos) << planned[1].error;
  EXPECT_EQ(planned[1].target, "/sms");
}

TEST(Rules, GenericActions) {
  std::vector<std::string> errors;
  auto set = Compile(R"(
rules:
  - name: r
    when: {}
    do:
      - action: thingspace.call
        method: PUT
        path: "/devices/actions/{{ payload.state }}"
        safe: true
        with: {anything: "{{ device_ids }}"}
      - action: http.post
        url: "http://127.0.0.1:9/hook/{{ event_id }}"
        with: {kind: "{{ kind }}"}
        after: 10m
)",
                     errors);
  ASSERT_TRUE(set) << errors.front();
  auto planned = set->Evaluate(SampleContext(), 17, 0);
  ASSERT_EQ(planned.size(), 2u);
  EXPECT_EQ(planned[0].method, "PUT");
  EXPECT_EQ(planned[0].target, "/devices/actions/active");
  EXPECT_TRUE(planned[0].safe);
  EXPECT_TRUE(planned[0].body->at("anything").is_array());
  EXPECT_EQ(planned[1].target, "http://127.0.0.1:9/hook/17");
  EXPECT_FALSE(planned[1].safe);
  EXPECT_EQ(planned[1].delay, std::chrono::minutes(10));
  EXPECT_EQ(planned[1].body->at("kind"), "provisioning.activate");
}

// Every error is reported with file, line and YAML path, all at once.
TEST(Rules, ValidationNamesFileLineAndPath) {
  std::vector<std::string> errors;
  auto set = Compile(R"(rules:
  - name: bad
    when:
      kind: provisioning.nothing
      match: {state: {regex: "(unclosed"}, count: {gt: [1]}}
    do:
      - action: sms.launch
      - action: sms.send
        with: {smsMessage: "{{ devise_ids }}", colour: red}
      - action: devices.custom_fields
        with: {devices: "{{ devices }}"}
      - action: thingspace.call
        path: no-slash
)",
                     errors);
  EXPECT_FALSE(set);
  auto has = [&](const std::string& needle) {
    for (const auto& e : errors)
      if (e.find(needle) != std::string::npos) return true;
    ADD_FAILURE() << "no error containing: " << needle;
    return false;
  };
  has("rules.yaml:2: rules[0].when.kind: unknown event kind provisioning.nothing");
  has("rules.yaml:5: rules[0].when.match.state.regex: regex: invalid regular expression");
  has("rules[0].when.match.count.gt: gt: expected a number or a string");
  has("rules.yaml:7: rules[0].do[0]: unknown action sms.launch");
  has("rules.yaml:9: rules[0].do[1].with.smsMessage: {{ devise_ids }}: unknown field 'devise_ids'");
  has("rules[0].do[1].with: colour is not a field of sms.send");
  has("rules[0].do[1].with: one of deviceIds, groupName, servicePlan, customFields is required");
  has("rules[0].do[2].with: customFieldsToUpdate is required");
  has("rules[0].do[3]: method: expected GET, POST, PUT or DELETE");
  has("rules[0].do[3]: path: expected a path under the API base");
}

TEST(Rules, ShapeErrorsFromTheReader) {
  std::vector<std::string> errors;
  Compile(R"(rules:
  - name: a b
    when: {kind: [1, {x: y}]}
    do: []
    colour: red
  - name: dup
    when: {}
    do: [{action: sms.history, with: {accountName: x}, after: soon}]
  - name: dup
    when: {match: {gt: 5}}
    do: [{action: sms.history, with: [1]}]
)",
          errors);
  auto has = [&](const std::string& needle) {
    for (const auto& e : errors)
      if (e.find(needle) != std::string::npos) return;
    ADD_FAILURE() << "no error containing: " << needle;
  };
  has("rules.yaml:2: rules[0].name: a rule name has no spaces");
  has("rules[0].when.kind[1]: expected a string");
  has("rules[0].do: expected a non-empty list of actions");
  has("rules.yaml:5: rules[0].colour: unknown key");
  has("rules[1].do[0].after: expected a duration");
  has("rules[2].name: duplicate rule name dup");
  has("rules[2].when.match.gt: an operator needs a field first");
  has("rules[2].do[0].with: expected a mapping");
}

TEST(Rules, ChangesBetweenTwoSets) {
  std::vector<std::string> errors;
  auto a = Compile(R"(rules:
  - {name: keep, when: {}, do: [{action: sms.history, with: {accountName: x}}]}
  - {name: edit, when: {}, do: [{action: sms.history, with: {accountName: x}}]}
  - {name: drop, when: {}, do: [{action: sms.history, with: {accountName: x}}]}
)",
                   errors);
  auto b = Compile(R"(rules:
  - {name: keep, when: {}, do: [{action: sms.history, with: {accountName: x}}]}
  - {name: edit, when: {}, do: [{action: sms.history, with: {accountName: y}}]}
  - {name: new, when: {}, do: [{action: sms.history, with: {accountName: x}}]}
)",
                   errors);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(RuleSet::Changes(*a, *b), "3 active rule(s); added new; removed drop; changed edit");
  EXPECT_EQ(RuleSet::Changes(*a, *a), "3 active rule(s), no change");
}

TEST(Rules, TheExampleFileCompiles) {
  std::vector<std::string> errors;
  auto file = config::LoadRulesFile(TSCB_SOURCE_DIR "/config/rules.example.yaml", errors);
  ASSERT_TRUE(errors.empty()) << errors.front();
  auto set = RuleSet::Compile(file, errors);
  ASSERT_TRUE(set) << errors.front();
  EXPECT_EQ(set->Size(), 3u);
}

}  // namespace
}  // namespace tscb::handlers
