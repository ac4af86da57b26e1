#include "config/public_url.hpp"

#include <charconv>

#include "config/cidr.hpp"

namespace tscb::config {
namespace {

bool PortAccepted(int port) {
  // Spec 3.5: 80, 443, 9001-9006, 50551-50559, 28200-28220.
  return port == 80 || port == 443 || (port >= 9001 && port <= 9006) ||
         (port >= 50551 && port <= 50559) || (port >= 28200 && port <= 28220);
}

}  // namespace

std::string CheckPublicUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return "must start with https:// (ThingSpace needs a public CA certificate)";
  std::string_view rest = url.substr(kScheme.size());
  std::string_view authority = rest.substr(0, rest.find('/'));
  if (!authority.empty() && authority.front() == '[')
    return "must use a host name, not an IP address";
  std::string_view host = authority;
  int port = 443;
  if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    auto digits = authority.substr(colon + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size())
      return "has a port that is not a number";
  }
  if (host.empty()) return "has no host name";
  if (ParseIp(host)) return "must use a host name, not an IP address";
  if (host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
      std::string_view::npos)
    return "has a host name with characters DNS does not allow";
  if (!PortAccepted(port))
    return "uses port " + std::to_string(port) +
           ", which ThingSpace does not accept (80, 443, 9001-9006, 50551-50559, 28200-28220)";
  return {};
}

}  // namespace tscb::config
