#include "handlers/router.hpp"

#include <boost/url/parse.hpp>

namespace tscb::handlers {

Router::Router(std::string base_path, std::vector<std::string> services)
    : base_path_(std::move(base_path)), services_(std::move(services)) {}

Router::Match Router::Route(std::string_view target) const {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return {Kind::kBadTarget, 0};
  std::string path = url->path();  // percent-decoded; the query is ignored
  if (path.size() <= base_path_.size() + 1 || path.compare(0, base_path_.size(), base_path_) != 0 ||
      path[base_path_.size()] != '/')
    return {Kind::kNotFound, 0};
  std::string_view name = std::string_view(path).substr(base_path_.size() + 1);
  for (std::size_t i = 0; i < services_.size(); ++i)
    if (services_[i] == name) return {Kind::kService, i};
  return {Kind::kNotFound, 0};
}

}  // namespace tscb::handlers
