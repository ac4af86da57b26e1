#pragma once
// An IPv4 or IPv6 network in CIDR form. IPv4 addresses are held as
// IPv4-mapped IPv6 (::ffff:a.b.c.d) so one comparison covers both families.
// Pure value type; safe to share between threads once built.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tscb::config {

using IpBytes = std::array<std::uint8_t, 16>;

// Parses "1.2.3.4" or "::1" (no brackets, no port). IPv4 comes back mapped.
std::optional<IpBytes> ParseIp(std::string_view text);

struct Cidr {
  IpBytes network{};
  int prefix_bits = 128;  // counted on the 128-bit (mapped) form
  std::string text;       // as written in the config, for messages

  // "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128).
  static std::optional<Cidr> Parse(std::string_view text);
  bool Contains(const IpBytes& address) const;
  bool operator==(const Cidr&) const = default;
};

}  // namespace tscb::config
