// libFuzzer: a callback body through the ingest decision (JSON parse, depth
// and UTF-8 checks, credential check and removal, dedup key) and, when
// accepted, classification and the rules' event context.
#include <boost/json.hpp>
#include <cstdint>
#include <string_view>

#include "handlers/classify.hpp"
#include "handlers/ingest.hpp"
#include "handlers/rules.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const char* kServices[] = {
      "CarrierService",          "NiddService",  "EnhancedConnectivityService",
      "SMSDeliveryConfirmation", "AlertService", "ExternalProvisioningChanges"};
  if (size < 1) return 0;
  tscb::config::ServiceConfig service;
  service.name = kServices[data[0] % 6];
  service.username = "u";
  service.password = tscb::config::Secret("p");
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto decision = tscb::handlers::DecideCallback(service, "127.0.0.1", body);
  if (!decision.record) return 0;
  boost::system::error_code ec;
  auto parsed = boost::json::parse(decision.record->body_json, ec);
  if (ec || !parsed.is_object()) __builtin_trap();  // an accepted body must be stored as JSON
  auto event = tscb::handlers::Classify(service.name, parsed.as_object());
  tscb::handlers::EventSource source{service.name, 1,       "2026-01-01T00:00:00Z",
                                     nullptr,      nullptr, "0000123456-00001"};
  auto context = tscb::handlers::EventContext(std::move(event), source);
  (void)boost::json::serialize(context);
  return 0;
}
