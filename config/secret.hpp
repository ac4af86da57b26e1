#pragma once
// A credential read from a file or the environment. It never prints itself:
// streaming it writes "***", and the value is reachable only through Reveal(),
// so every place that uses the clear text is easy to find.
#include <ostream>
#include <string>
#include <utility>

namespace tscb::config {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  const std::string& Reveal() const { return value_; }
  bool Empty() const { return value_.empty(); }
  bool operator==(const Secret&) const = default;  // reload compares configs

  friend std::ostream& operator<<(std::ostream& out, const Secret&) { return out << "***"; }

 private:
  std::string value_;
};

}  // namespace tscb::config
