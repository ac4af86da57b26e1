#pragma once
// What the registration manager must do so that each configured callback
// service points at this daemon (spec 3.1-3.3): compare the account's listed
// registrations with the wanted ones. Moving a service means deregister, then
// register (one endpoint per service per account). A service registered to a
// URL that is not ours is only taken over when the config allows it. Pure.
#include <string>
#include <vector>

#include "config/secret.hpp"

namespace tscb::handlers {

struct WantedRegistration {
  std::string service;
  std::string url;  // our public URL for this service
  std::string username;
  config::Secret password;
};

// One entry of GET /callbacks/{account} (spec 3.2); the password comes back in clear.
struct ListedRegistration {
  std::string service;
  std::string url;
  std::string username;
  std::string password;
};

enum class RegistrationStep {
  kKeep,         // already right: send nothing
  kRegister,     // not registered: POST /callbacks
  kReplace,      // ours but drifted (URL or credentials): DELETE then POST
  kTakeOver,     // someone else's URL, and the config allows replacing it
  kLeaveForeign  // someone else's URL, not allowed to replace: report only
};

struct PlannedRegistration {
  std::string service;
  RegistrationStep step = RegistrationStep::kKeep;
  std::string current_url;  // "" when not registered
  std::string reason;       // for logs and `register --dry-run`
};

// `our_url_prefix` tells our URLs from foreign ones (e.g. "https://cb.example.com:443/callbacks/").
std::vector<PlannedRegistration> PlanRegistrations(const std::vector<WantedRegistration>& wanted,
                                                   const std::vector<ListedRegistration>& listed,
                                                   const std::string& our_url_prefix,
                                                   bool replace_foreign);

const char* Describe(RegistrationStep step);

}  // namespace tscb::handlers
