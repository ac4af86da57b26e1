#include "config/cidr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace tscb::config {

std::optional<IpBytes> ParseIp(std::string_view text) {
  std::string s(text);
  IpBytes out{};
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out[10] = 0xff;
    out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<Cidr> Cidr::Parse(std::string_view text) {
  auto slash = text.find('/');
  auto address = ParseIp(text.substr(0, slash));
  if (!address) return std::nullopt;
  bool is_v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  int max_bits = is_v4 ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), bits);
    if (ec != std::errc() || end != digits.data() + digits.size() || bits < 0 || bits > max_bits)
      return std::nullopt;
  }
  Cidr cidr;
  cidr.prefix_bits = is_v4 ? bits + 96 : bits;
  cidr.text = std::string(text);
  for (int i = 0; i < 16; ++i) {
    int keep = cidr.prefix_bits - i * 8;
    std::uint8_t mask = keep >= 8   ? 0xff
                        : keep <= 0 ? 0
                                    : static_cast<std::uint8_t>(0xff << (8 - keep));
    cidr.network[i] = (*address)[i] & mask;
  }
  return cidr;
}

bool Cidr::Contains(const IpBytes& address) const {
  for (int i = 0; i < 16; ++i) {
    int keep = prefix_bits - i * 8;
    if (keep <= 0) return true;
    std::uint8_t mask = keep >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - keep));
    if ((address[i] & mask) != network[i]) return false;
  }
  return true;
}

}  // namespace tscb::config
