#pragma once
// Reads a ThingSpace callback body (spec 4.1): checks that it is a JSON
// object, takes out the credentials ThingSpace copies into it (spec 3.6),
// picks the envelope fields the inbox indexes, and computes the dedup key
// (spec 4.4). Pure; any thread.
#include <optional>
#include <string>
#include <string_view>

namespace tscb::handlers {

enum class BodyError {
  kNotJson,     // not parseable, invalid UTF-8, or nested deeper than kMaxJsonDepth
  kNotObject,   // valid JSON but not an object
  kUnstorable,  // contains U+0000, which PostgreSQL jsonb cannot hold
};

inline constexpr int kMaxJsonDepth = 64;

struct ParsedBody {
  std::string username;        // as sent ("" when absent)
  std::string password;        // as sent; never stored or logged
  std::string stored_json;     // the body without username/password
  std::string dedup_key;       // hex SHA-256, see MakeDedupKey
  std::optional<int> attempt;  // callbackCount
  std::string request_id;      // requestId, "" when absent
  std::string device_id;       // first deviceIds[] entry, "" when absent
  std::string device_kind;     // its kind, lower-cased
};

struct BodyResult {
  std::optional<ParsedBody> body;
  BodyError error = BodyError::kNotJson;
};

// `service` is part of the dedup key: the same body on two services is two callbacks.
BodyResult ParseCallbackBody(std::string_view service, std::string_view raw);

const char* Describe(BodyError error);

// SHA-256 of `data` into `out` (32 bytes). Uses one explicitly fetched
// algorithm object: OpenSSL 3's implicit fetch per call takes a global lock.
void Sha256(std::string_view data, unsigned char out[32]);

}  // namespace tscb::handlers
