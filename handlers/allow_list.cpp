#include "handlers/allow_list.hpp"

namespace tscb::handlers {
namespace {
std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

AllowList::AllowList(std::vector<config::Cidr> allowed, std::vector<config::Cidr> trusted)
    : allowed_(std::move(allowed)), trusted_proxies_(std::move(trusted)) {}

bool AllowList::AnyContains(const std::vector<config::Cidr>& list, const config::IpBytes& ip) {
  for (const auto& cidr : list)
    if (cidr.Contains(ip)) return true;
  return false;
}

AllowList::Decision AllowList::Check(std::string_view peer, std::string_view forwarded_for) const {
  auto peer_ip = config::ParseIp(peer);
  if (!peer_ip) return {false, std::string(peer)};
  config::IpBytes client = *peer_ip;
  std::string client_text(peer);
  if (!forwarded_for.empty() && AnyContains(trusted_proxies_, client)) {
    // Walk right to left: each trusted hop vouches for the one before it.
    std::string_view rest = forwarded_for;
    while (!rest.empty()) {
      auto comma = rest.rfind(',');
      std::string_view entry =
          Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
      auto ip = config::ParseIp(entry);
      if (!ip) return {false, std::string(entry)};
      client = *ip;
      client_text = std::string(entry);
      if (!AnyContains(trusted_proxies_, client)) break;
    }
  }
  return {AnyContains(allowed_, client), client_text};
}

}  // namespace tscb::handlers
