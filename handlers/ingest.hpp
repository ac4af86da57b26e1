#pragma once
// The ingest decision for one callback whose source address and route have
// been accepted: parse the body, check the credentials ThingSpace copied into
// it (spec 3.6) in constant time, and build the inbox record (credentials
// removed). What it decides is turned into an HTTP status in one place
// (daemon/callback_endpoint). Pure; any thread.
#include <optional>
#include <string_view>

#include "config/config.hpp"
#include "storage/inbox.hpp"

namespace tscb::handlers {

enum class Verdict { kAccept, kNotJson, kNotObject, kUnstorable, kBadCredentials };

struct IngestDecision {
  Verdict verdict = Verdict::kNotJson;
  std::optional<storage::InboxRecord> record;  // set when verdict == kAccept
};

IngestDecision DecideCallback(const config::ServiceConfig& service, std::string_view client_ip,
                              std::string_view body);

// Constant-time equality (hashes both sides, so lengths do not leak either).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

const char* Describe(Verdict verdict);

}  // namespace tscb::handlers
