#pragma once
// Who may post callbacks: the source-address allow-list (spec 3.5), with
// X-Forwarded-For believed only from configured proxies. Immutable once
// built; any thread.
#include <string>
#include <string_view>
#include <vector>

#include "config/cidr.hpp"

namespace tscb::handlers {

class AllowList {
 public:
  AllowList(std::vector<config::Cidr> allowed, std::vector<config::Cidr> trusted_proxies);

  struct Decision {
    bool allowed = false;
    std::string client;  // the address the decision was made on (for logs)
  };

  // `peer` is the TCP peer address; `forwarded_for` the X-Forwarded-For
  // header ("" when absent). The client is the right-most address that is
  // not a trusted proxy; an unparseable entry is refused.
  Decision Check(std::string_view peer, std::string_view forwarded_for) const;

 private:
  static bool AnyContains(const std::vector<config::Cidr>& list, const config::IpBytes& ip);

  std::vector<config::Cidr> allowed_;
  std::vector<config::Cidr> trusted_proxies_;
};

}  // namespace tscb::handlers
