#include "handlers/ingest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "handlers/callback_body.hpp"

namespace tscb::handlers {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char da[32], db[32];
  Sha256(a, da);
  Sha256(b, db);
  return CRYPTO_memcmp(da, db, sizeof da) == 0;
}

IngestDecision DecideCallback(const config::ServiceConfig& service, std::string_view client_ip,
                              std::string_view raw) {
  BodyResult parsed = ParseCallbackBody(service.name, raw);
  if (!parsed.body) {
    switch (parsed.error) {
      case BodyError::kNotJson:
        return {Verdict::kNotJson, std::nullopt};
      case BodyError::kNotObject:
        return {Verdict::kNotObject, std::nullopt};
      case BodyError::kUnstorable:
        return {Verdict::kUnstorable, std::nullopt};
    }
  }
  ParsedBody& body = *parsed.body;
  // Both comparisons always run: no early exit that times the username.
  bool user_ok = ConstantTimeEquals(body.username, service.username);
  bool password_ok = ConstantTimeEquals(body.password, service.password.Reveal());
  if (!(user_ok & password_ok)) return {Verdict::kBadCredentials, std::nullopt};

  storage::InboxRecord record;
  record.service = service.name;
  record.source_ip = std::string(client_ip);
  record.dedup_key = std::move(body.dedup_key);
  record.body_json = std::move(body.stored_json);
  record.attempt = body.attempt.value_or(1);
  record.request_id = std::move(body.request_id);
  record.device_id = std::move(body.device_id);
  record.device_kind = std::move(body.device_kind);
  return {Verdict::kAccept, std::move(record)};
}

const char* Describe(Verdict verdict) {
  switch (verdict) {
    case Verdict::kAccept:
      return "accepted";
    case Verdict::kNotJson:
      return "body is not valid JSON";
    case Verdict::kNotObject:
      return "body is not a JSON object";
    case Verdict::kUnstorable:
      return "body contains a NUL character";
    case Verdict::kBadCredentials:
      return "wrong or missing credentials";
  }
  return "rejected";
}

}  // namespace tscb::handlers
