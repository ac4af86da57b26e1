#pragma once
// Maps a request target to the callback service it is for:
// POST {base_path}/{ServiceName}. The path is the only way to know the
// service, since the body does not say (spec 4.2). Immutable; any thread.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tscb::handlers {

class Router {
 public:
  Router(std::string base_path, std::vector<std::string> services);

  enum class Kind { kService, kNotFound, kBadTarget };
  struct Match {
    Kind kind = Kind::kNotFound;
    std::size_t service_index = 0;  // into the services given to the constructor
  };

  Match Route(std::string_view target) const;
  const std::string& ServiceName(std::size_t index) const { return services_[index]; }
  std::size_t ServiceCount() const { return services_.size(); }

 private:
  std::string base_path_;
  std::vector<std::string> services_;
};

}  // namespace tscb::handlers
