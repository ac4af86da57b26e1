#include "handlers/allow_list.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

std::vector<config::Cidr> List(std::initializer_list<const char*> items) {
  std::vector<config::Cidr> out;
  for (auto* item : items) out.push_back(config::Cidr::Parse(item).value());
  return out;
}

TEST(CidrTest, ParsesAddressesAndNetworks) {
  EXPECT_TRUE(config::Cidr::Parse("3.87.163.45"));
  EXPECT_TRUE(config::Cidr::Parse("10.0.0.0/8"));
  EXPECT_TRUE(config::Cidr::Parse("2001:db8::/32"));
  EXPECT_TRUE(config::Cidr::Parse("::1"));
  EXPECT_FALSE(config::Cidr::Parse("10.0.0.0/33"));
  EXPECT_FALSE(config::Cidr::Parse("10.0.0.0/"));
  EXPECT_FALSE(config::Cidr::Parse("10.0.0.0/8x"));
  EXPECT_FALSE(config::Cidr::Parse("example.com"));
  EXPECT_FALSE(config::Cidr::Parse("::1/129"));
}

TEST(CidrTest, NetworkContainsOnlyItsAddresses) {
  auto net = config::Cidr::Parse("192.0.2.128/25").value();
  EXPECT_TRUE(net.Contains(config::ParseIp("192.0.2.200").value()));
  EXPECT_FALSE(net.Contains(config::ParseIp("192.0.2.127").value()));
  auto zero = config::Cidr::Parse("0.0.0.0/0").value();
  EXPECT_TRUE(zero.Contains(config::ParseIp("8.8.8.8").value()));
  EXPECT_FALSE(zero.Contains(config::ParseIp("2001:db8::1").value()));
}

TEST(AllowListTest, ThingSpaceAddressIsAllowedOthersAreNot) {
  AllowList allow(List({"3.87.163.45", "137.117.33.109"}), {});
  EXPECT_TRUE(allow.Check("3.87.163.45", "").allowed);
  EXPECT_FALSE(allow.Check("3.87.163.46", "").allowed);
  EXPECT_FALSE(allow.Check("not-an-ip", "").allowed);
}

TEST(AllowListTest, Ipv4MappedIpv6PeerMatchesIpv4Entry) {
  AllowList allow(List({"127.0.0.1"}), {});
  EXPECT_TRUE(allow.Check("::ffff:127.0.0.1", "").allowed);
}

TEST(AllowListTest, ForwardedForIsIgnoredFromUntrustedPeers) {
  AllowList allow(List({"3.87.163.45"}), List({"10.0.0.1"}));
  auto d = allow.Check("192.0.2.9", "3.87.163.45");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.client, "192.0.2.9");
}

TEST(AllowListTest, ForwardedForFromTrustedProxyNamesTheClient) {
  AllowList allow(List({"3.87.163.45"}), List({"10.0.0.0/8"}));
  auto d = allow.Check("10.0.0.1", "3.87.163.45");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.client, "3.87.163.45");
  EXPECT_FALSE(allow.Check("10.0.0.1", "192.0.2.9").allowed);
}

TEST(AllowListTest, SpoofedLeftmostForwardedForEntryIsNotBelieved) {
  // The client can write anything left of what our proxy appended.
  AllowList allow(List({"3.87.163.45"}), List({"10.0.0.0/8"}));
  auto d = allow.Check("10.0.0.1", "3.87.163.45, 192.0.2.9");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.client, "192.0.2.9");
}

TEST(AllowListTest, ChainOfTrustedProxiesIsWalked) {
  AllowList allow(List({"3.87.163.45"}), List({"10.0.0.0/8"}));
  EXPECT_TRUE(allow.Check("10.0.0.1", "3.87.163.45, 10.0.0.7").allowed);
}

TEST(AllowListTest, GarbageInForwardedForIsRefused) {
  AllowList allow(List({"3.87.163.45"}), List({"10.0.0.0/8"}));
  EXPECT_FALSE(allow.Check("10.0.0.1", "3.87.163.45, junk").allowed);
}

}  // namespace
}  // namespace tscb::handlers
