#pragma once
// Small helpers for reading JSON bodies and normalising text, shared by the
// callback parser, the classifier, the ThingSpace client and the simulator.
// Pure; header-only.
#include <boost/json/object.hpp>
#include <cctype>
#include <string>
#include <string_view>

namespace tscb::handlers {

// The member `key` when it is a string; "" otherwise.
inline std::string StringField(const boost::json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// ASCII lower case (identifier kinds, header names); other bytes unchanged.
inline std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace tscb::handlers
