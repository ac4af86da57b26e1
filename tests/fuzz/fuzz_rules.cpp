// libFuzzer: a rules file through the shape checks and the compiler
// (conditions, regexes, templates, catalogue bodies), then evaluated
// against an activation event.
#include <boost/json.hpp>
#include <cstdint>
#include <string>

#include "config/rules_file.hpp"
#include "handlers/classify.hpp"
#include "handlers/rules.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> errors;
  auto file = tscb::config::ParseRulesText(text, "fuzz-rules.yaml", errors);
  if (!errors.empty()) return 0;
  auto set = tscb::handlers::RuleSet::Compile(file, errors);
  if (!set) return 0;
  static const boost::json::object body =
      boost::json::parse(
          R"({"requestId":"r-1","deviceIds":[{"id":"89148000000800139708","kind":"iccid"}],
        "deviceResponse":{"activateResponse":{"state":"active","servicePlan":"M2M5GB"}},
        "status":"Success","callbackCount":1})")
          .as_object();
  auto event = tscb::handlers::Classify("CarrierService", body);
  boost::json::object copy = body;
  tscb::handlers::EventSource source{"CarrierService", 7,     "2026-01-01T00:00:00Z",
                                     nullptr,          &copy, "0000123456-00001"};
  auto planned = set->Evaluate(tscb::handlers::EventContext(std::move(event), source), 7, 1.7e9);
  for (const auto& p : planned)
    if (p.error.empty() && p.idempotency_key.empty()) __builtin_trap();
  return 0;
}
