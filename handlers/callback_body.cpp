#include "handlers/callback_body.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <boost/json.hpp>
#include <vector>

#include "handlers/json_fields.hpp"

namespace tscb::handlers {
namespace json = boost::json;
namespace {

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// Appends `v` as JSON through one serializer reused for every key and
// scalar: json::serialize() would build a serializer and a string each time.
class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}
  void Key(json::string_view key) {
    sr_.reset(key);
    Drain();
  }
  void Scalar(const json::value& v) {
    sr_.reset(&v);
    Drain();
  }
  std::string& out() { return out_; }

 private:
  void Drain() {
    while (!sr_.done()) {
      json::string_view part = sr_.read(buf_, sizeof buf_);
      out_.append(part.data(), part.size());
    }
  }
  std::string& out_;
  json::serializer sr_;
  char buf_[512];
};

// Writes `v` with object keys sorted, so a resend whose keys come in another
// order still gets the same key. Returns false on U+0000 anywhere.
bool WriteCanonical(const json::value& v, JsonWriter& w, bool top_level) {
  std::string& out = w.out();
  switch (v.kind()) {
    case json::kind::object: {
      const auto& obj = v.get_object();
      std::vector<const json::key_value_pair*> items;
      items.reserve(obj.size());
      for (const auto& kv : obj) {
        if (HasNul(kv.key())) return false;
        // callbackCount changes between resends (spec 3.7, 4.4); the
        // credentials are not part of the message.
        if (top_level &&
            (kv.key() == "callbackCount" || kv.key() == "username" || kv.key() == "password"))
          continue;
        items.push_back(&kv);
      }
      std::sort(items.begin(), items.end(), [](auto* a, auto* b) { return a->key() < b->key(); });
      out += '{';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        w.Key(items[i]->key());
        out += ':';
        if (!WriteCanonical(items[i]->value(), w, false)) return false;
      }
      out += '}';
      return true;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& item : v.get_array()) {
        if (!first) out += ',';
        first = false;
        if (!WriteCanonical(item, w, false)) return false;
      }
      out += ']';
      return true;
    }
    case json::kind::string:
      if (HasNul(v.get_string())) return false;
      w.Scalar(v);
      return true;
    default:
      w.Scalar(v);
      return true;
  }
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[32];
  Sha256(data, digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned int i = 0; i < 32; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace

void Sha256(std::string_view data, unsigned char out[32]) {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), out, &length, md, nullptr);
}

BodyResult ParseCallbackBody(std::string_view service, std::string_view raw) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  boost::system::error_code ec;
  // Most bodies are a few KiB: parse into stack memory, spill to the heap.
  unsigned char scratch[16 * 1024];
  json::monotonic_resource arena(scratch, sizeof scratch);
  json::value value = json::parse(raw, ec, &arena, options);
  if (ec) return {std::nullopt, BodyError::kNotJson};
  if (!value.is_object()) return {std::nullopt, BodyError::kNotObject};

  std::string canonical;
  canonical.reserve(raw.size() + service.size() + 1);
  canonical += service;
  canonical += '\n';
  JsonWriter writer(canonical);
  if (!WriteCanonical(value, writer, true)) return {std::nullopt, BodyError::kUnstorable};

  const auto& obj = value.get_object();
  ParsedBody body;
  body.username = StringField(obj, "username");
  body.password = StringField(obj, "password");
  body.request_id = StringField(obj, "requestId");
  body.dedup_key = Sha256Hex(canonical);
  // The stored body is the canonical text (credentials already left out)
  // with callbackCount put back: jsonb keeps no key order, so one pass over
  // the document serves both the key and the stored copy.
  body.stored_json.assign(canonical, service.size() + 1);
  if (auto it = obj.find("callbackCount"); it != obj.end()) {
    if (it->value().is_int64())
      body.attempt =
          static_cast<int>(std::clamp<std::int64_t>(it->value().get_int64(), 0, 1000000));
    body.stored_json.pop_back();  // '}'
    if (body.stored_json.size() > 1) body.stored_json += ',';
    body.stored_json += "\"callbackCount\":";
    JsonWriter(body.stored_json).Scalar(it->value());
    body.stored_json += '}';
  }
  if (auto it = obj.find("deviceIds"); it != obj.end() && it->value().is_array() &&
                                       !it->value().get_array().empty() &&
                                       it->value().get_array()[0].is_object()) {
    const auto& first = it->value().get_array()[0].get_object();
    body.device_id = StringField(first, "id");
    body.device_kind = AsciiLower(StringField(first, "kind"));
  }
  return {std::move(body), BodyError::kNotJson};
}

const char* Describe(BodyError error) {
  switch (error) {
    case BodyError::kNotJson:
      return "body is not valid JSON";
    case BodyError::kNotObject:
      return "body is not a JSON object";
    case BodyError::kUnstorable:
      return "body contains a NUL character";
  }
  return "bad body";
}

}  // namespace tscb::handlers
