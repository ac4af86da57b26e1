#pragma once
// The follow-up actions rules can fire (DESIGN.md section 6, spec section 6
// and ../shared/spec/api-reference.txt): every endpoint of the API list
// that changes or asks something, by name, with its method and path, a typed
// check of its request body, whether repeating it is harmless, and what
// pending-request action its requestId answer stands for (so the callbacks
// it causes are correlated). Plus two generic actions: `thingspace.call`
// (any method and path under the API base) and `http.post` (an internal URL).
// Pure; any thread.
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tscb::handlers {

enum class FieldType {
  kString,
  kBool,
  kInteger,
  kNumber,
  kObject,
  kArray,
  kStringList,  // ["a", "b"]
  kDevices,     // [{"deviceIds": [{"id", "kind"}, ...]}, ...]
  kDeviceIds,   // [{"id", "kind"}, ...]
  kDeviceId,    // {"id", "kind"}
  kKeyValues,   // [{"key", "value"}, ...]
};

struct FieldSpec {
  const char* name;
  FieldType type;
  bool required = false;
};

struct ActionSpec {
  const char* name;    // e.g. devices.activate
  const char* method;  // GET POST PUT DELETE
  // Under the M2M v1 base ("/v2/..." goes under v2). A {field} segment is
  // taken from the body field of that name, which then leaves the body.
  const char* path;
  bool safe;              // sending it twice has no further effect
  const char* correlate;  // pending-request action for a requestId answer; "" = answers now
  const char* summary;
  std::vector<FieldSpec> fields;
  std::vector<std::vector<const char*>> one_of;  // each group: at least one field present
  // Fields the spec does not list are accepted (the spec gives no full list).
  bool open = false;
  bool has_body() const;  // POST, PUT, and DELETE with non-path fields
};

const std::vector<ActionSpec>& Catalogue();
const ActionSpec* FindAction(std::string_view name);

constexpr std::string_view kThingSpaceCall = "thingspace.call";
constexpr std::string_view kHttpPost = "http.post";

// Why `body` does not fit `spec` (empty: it does). With `templates_unknown`,
// a string value holding "{{" is taken as not known yet (checked at load,
// before rendering): its type is not checked, its presence counts.
std::vector<std::string> CheckBody(const ActionSpec& spec, const boost::json::object& body,
                                   bool templates_unknown = false);

const char* TypeName(FieldType type);

// The request for `spec` made from a checked body: path fields filled in
// (percent-encoded) and removed; `body` is empty when the method carries none.
struct HttpCall {
  std::string method;
  std::string path;
  std::optional<boost::json::object> body;
};
HttpCall BuildCall(const ActionSpec& spec, boost::json::object body);

// A minimal body that passes CheckBody (tests and the catalogue listing).
boost::json::object ExampleBody(const ActionSpec& spec);

}  // namespace tscb::handlers
