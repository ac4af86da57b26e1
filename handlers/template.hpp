#pragma once
// JSON-aware templates for action bodies (DESIGN.md section 6). A string
// that is exactly one `{{ path }}` becomes the JSON value at that path (an
// array of device ids stays an array); any other string with placeholders
// gets the values' text spliced in (strings as they are, other values as
// JSON), and the result is an ordinary JSON string, so quoting is always
// right. A placeholder whose value is missing or null makes rendering fail
// with the path named: never a silent empty string. Pure; any thread.
#include <boost/json/value.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tscb::handlers {

// A dotted path: "payload.deviceResponse.state", "device_ids.0.id".
using FieldPath = std::vector<std::string>;
FieldPath SplitPath(const std::string& dotted);

// The value at `path` in `root` (numeric segments index arrays), or nullptr.
const boost::json::value* Lookup(const boost::json::value& root, const FieldPath& path);

class Template {
 public:
  // Checks a placeholder's path at compile time; returns "" or why not.
  using PathCheck = std::function<std::string(const FieldPath&)>;

  Template() = default;
  // Problems go to `errors` as "<where>.<inner path>: message".
  static Template Compile(const boost::json::value& source, const std::string& where,
                          const PathCheck& check, std::vector<std::string>& errors);

  // The value for `context`; on failure returns null and sets `error`.
  boost::json::value Render(const boost::json::value& context, std::string& error) const;
  // Rendered as text (a string as it is, anything else as JSON).
  std::string RenderText(const boost::json::value& context, std::string& error) const;

  bool Empty() const { return !root_; }

  struct Node;  // defined in template.cpp

 private:
  std::shared_ptr<const Node> root_;
};

}  // namespace tscb::handlers
