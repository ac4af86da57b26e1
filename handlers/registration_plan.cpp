#include "handlers/registration_plan.hpp"

#include <algorithm>

namespace tscb::handlers {
namespace {

bool SameService(const std::string& a, const std::string& b) {
  // The deregister page spells AlertService as AlertsService (spec 3.4).
  auto norm = [](const std::string& s) { return s == "AlertsService" ? "AlertService" : s; };
  return norm(a) == norm(b);
}

}  // namespace

std::vector<PlannedRegistration> PlanRegistrations(const std::vector<WantedRegistration>& wanted,
                                                   const std::vector<ListedRegistration>& listed,
                                                   const std::string& our_url_prefix,
                                                   bool replace_foreign) {
  std::vector<PlannedRegistration> plan;
  for (const auto& want : wanted) {
    PlannedRegistration p;
    p.service = want.service;
    auto it = std::find_if(listed.begin(), listed.end(), [&](const ListedRegistration& l) {
      return SameService(l.service, want.service);
    });
    if (it == listed.end()) {
      p.step = RegistrationStep::kRegister;
      p.reason = "not registered";
    } else {
      p.current_url = it->url;
      bool ours = it->url.rfind(our_url_prefix, 0) == 0;
      if (!ours) {
        p.step = replace_foreign ? RegistrationStep::kTakeOver : RegistrationStep::kLeaveForeign;
        p.reason = "registered to a URL that is not this daemon's";
      } else if (it->url != want.url) {
        p.step = RegistrationStep::kReplace;
        p.reason = "URL drifted";
      } else if (it->username != want.username || it->password != want.password.Reveal()) {
        p.step = RegistrationStep::kReplace;
        p.reason = "credentials differ";
      } else {
        p.step = RegistrationStep::kKeep;
        p.reason = "up to date";
      }
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

const char* Describe(RegistrationStep step) {
  switch (step) {
    case RegistrationStep::kKeep:
      return "keep";
    case RegistrationStep::kRegister:
      return "register";
    case RegistrationStep::kReplace:
      return "replace";
    case RegistrationStep::kTakeOver:
      return "take over";
    case RegistrationStep::kLeaveForeign:
      return "leave (foreign)";
  }
  return "unknown";
}

}  // namespace tscb::handlers
