// The action catalogue: every action's body check, and every action's
// request matching an endpoint of the spec's API list (the simulator's
// catalogue, itself checked against tests/data/api-reference.txt).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <iterator>
#include <set>

#include "handlers/action_catalogue.hpp"
#include "tests/sim/catalogue.hpp"

namespace tscb::handlers {
namespace {
namespace json = boost::json;

// A value of a type no field accepts alongside the right one.
json::value WrongFor(FieldType type) {
  return type == FieldType::kString ? json::value(42) : json::value("not-this-type");
}

TEST(ActionCatalogue, EveryActionChecksItsBody) {
  ASSERT_GE(Catalogue().size(), 60u);
  std::set<std::string> names;
  for (const auto& spec : Catalogue()) {
    SCOPED_TRACE(spec.name);
    EXPECT_TRUE(names.insert(spec.name).second) << "duplicate name";
    json::object good = ExampleBody(spec);
    auto problems = CheckBody(spec, good);
    EXPECT_TRUE(problems.empty()) << problems.front();
    for (const auto& f : spec.fields) {
      if (f.required) {
        json::object without = good;
        without.erase(f.name);
        auto p = CheckBody(spec, without);
        ASSERT_FALSE(p.empty()) << f.name << " is required but its absence passed";
        EXPECT_EQ(p.front(), std::string(f.name) + " is required");
      }
      json::object wrong = good;
      wrong[f.name] = WrongFor(f.type);
      auto p = CheckBody(spec, wrong);
      ASSERT_FALSE(p.empty()) << f.name << " accepted a value of the wrong type";
      EXPECT_EQ(p.front().rfind(std::string(f.name) + ": ", 0), 0u) << p.front();
    }
    json::object extra = good;
    extra["surelyNotAField"] = 1;
    EXPECT_EQ(CheckBody(spec, extra).empty(), spec.open);
    for (const auto& group : spec.one_of) {
      json::object none = good;
      for (const char* name : group) none.erase(name);
      auto p = CheckBody(spec, none);
      ASSERT_FALSE(p.empty());
      EXPECT_EQ(p.back().rfind("one of ", 0), 0u) << p.back();
    }
  }
}

TEST(ActionCatalogue, EveryActionIsAnEndpointOfTheApiList) {
  std::set<std::string> covered;
  for (const auto& spec : Catalogue()) {
    SCOPED_TRACE(spec.name);
    HttpCall call = BuildCall(spec, ExampleBody(spec));
    std::string path = call.path.substr(0, call.path.find('?'));
    EXPECT_EQ(path.find('{'), std::string::npos) << path;
    std::map<std::string, std::string> params;
    const sim::Endpoint* e = sim::Match(call.method, path, params);
    ASSERT_NE(e, nullptr) << call.method << " " << path << " is not in the API list";
    EXPECT_EQ(call.body.has_value(), spec.has_body());
    // An endpoint that answers with a requestId has a correlation action.
    if (e->kind == sim::Kind::kAsync && std::string(spec.correlate).empty())
      ADD_FAILURE() << spec.name << " answers a requestId but correlates as nothing";
    covered.insert(std::string(e->method) + " " + e->pattern);
  }
  // Every endpoint of the list is an action, except session management and
  // the simulator's extra aliases.
  for (const auto& e : sim::Endpoints()) {
    std::string key = std::string(e.method) + " " + e.pattern;
    if (key.find("/session/") != std::string::npos || key == "POST /devices/requests/status" ||
        key == "PUT /devices/actions/contactInfo" || key == "POST /devices/actions/upload" ||
        key == "POST /devices/actions/uploadactivate")
      continue;
    EXPECT_TRUE(covered.count(key)) << key << " has no action";
  }
}

TEST(ActionCatalogue, PathFieldsLeaveTheBody) {
  const ActionSpec* spec = FindAction("groups.update");
  ASSERT_NE(spec, nullptr);
  auto call = BuildCall(*spec, json::parse(R"({"accountName": "0000123456-00001",
      "groupName": "west coast", "newGroupDescription": "d"})")
                                   .as_object());
  EXPECT_EQ(call.method, "PUT");
  EXPECT_EQ(call.path, "/groups/0000123456-00001/name/west%20coast");
  ASSERT_TRUE(call.body);
  EXPECT_EQ(json::serialize(*call.body), R"({"newGroupDescription":"d"})");

  // GET: no body; fields that are not in the path become the query.
  spec = FindAction("groups.get");
  call = BuildCall(*spec, json::parse(R"({"accountName": "a", "groupName": "g",
      "maxNumberOfDevices": 10})")
                              .as_object());
  EXPECT_EQ(call.path, "/groups/a/name/g?maxNumberOfDevices=10");
  EXPECT_FALSE(call.body);

  // DELETE with a body (spec 6.10).
  spec = FindAction("reachability.stop");
  call = BuildCall(*spec, json::parse(R"({"accountName": "a", "monitorIds": ["m1"]})").as_object());
  EXPECT_EQ(call.method, "DELETE");
  ASSERT_TRUE(call.body);
  EXPECT_EQ(call.body->at("monitorIds").at(0), "m1");
}

TEST(ActionCatalogue, SafetyAndLimitsFromTheSpec) {
  EXPECT_TRUE(FindAction("devices.custom_fields")->safe);
  EXPECT_FALSE(FindAction("sms.send")->safe);
  EXPECT_FALSE(FindAction("devices.activate")->safe);
  EXPECT_FALSE(FindAction("nidd.send")->safe);
  EXPECT_TRUE(FindAction("devices.list")->safe);
  EXPECT_EQ(std::string(FindAction("devices.activate")->correlate), "activate");
  EXPECT_EQ(std::string(FindAction("devices.plan")->correlate), "plan_change");

  auto sms = json::parse(R"({"deviceIds": [{"id": "1", "kind": "iccid"}]})").as_object();
  sms["smsMessage"] = std::string(161, 'x');
  EXPECT_EQ(CheckBody(*FindAction("sms.send"), sms).front(), "smsMessage: at most 160 characters");
  auto fields =
      json::parse(R"({"groupName": "g", "customFieldsToUpdate": [{"key": "CustomField1"}]})")
          .as_object();
  fields["customFieldsToUpdate"].as_array()[0].as_object()["value"] = std::string(51, 'x');
  EXPECT_EQ(CheckBody(*FindAction("devices.custom_fields"), fields).front(),
            "customFieldsToUpdate: values are at most 50 characters");
  // Devices must have the {"deviceIds": [{id, kind}]} shape.
  auto bad = json::parse(R"({"accountName": "a", "devices": [{"id": "1", "kind": "iccid"}],
                             "servicePlan": "p", "mdnZipCode": "1"})")
                 .as_object();
  EXPECT_EQ(CheckBody(*FindAction("devices.activate"), bad).front().rfind("devices: every item", 0),
            0u);
}

// The README's table is what `actions catalogue` prints: every action with
// its body fields.
TEST(ActionCatalogue, TheReadmeListsEveryActionWithItsFields) {
  std::ifstream in(TSCB_SOURCE_DIR "/README.md");
  std::string readme((std::istreambuf_iterator<char>(in)), {});
  for (const auto& spec : Catalogue()) {
    auto row = readme.find("| `" + std::string(spec.name) + "` | " + spec.method + " `" +
                           spec.path + "` |");
    ASSERT_NE(row, std::string::npos) << spec.name << " is missing from README.md";
    std::string line = readme.substr(row, readme.find('\n', row) - row);
    for (const auto& f : spec.fields)
      EXPECT_NE(line.find("`" + std::string(f.name) + "`"), std::string::npos)
          << spec.name << ": field " << f.name << " is missing from README.md";
  }
}

}  // namespace
}  // namespace tscb::handlers
