#include "handlers/registration_plan.hpp"

#include <gtest/gtest.h>

#include "config/public_url.hpp"

namespace tscb::handlers {
namespace {

const std::string kPrefix = "https://cb.example.com/callbacks/";

WantedRegistration Want(const std::string& service) {
  return {service, kPrefix + service, "u-" + service, config::Secret("p-" + service)};
}

ListedRegistration Listed(const std::string& service, const std::string& url) {
  return {service, url, "u-" + service, "p-" + service};
}

TEST(RegistrationPlanTest, CorrectRegistrationIsKeptAndNothingIsSent) {
  auto plan =
      PlanRegistrations({Want("CarrierService")},
                        {Listed("CarrierService", kPrefix + "CarrierService")}, kPrefix, false);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].step, RegistrationStep::kKeep);
}

TEST(RegistrationPlanTest, MissingServiceIsRegistered) {
  auto plan = PlanRegistrations({Want("NiddService")}, {}, kPrefix, false);
  EXPECT_EQ(plan[0].step, RegistrationStep::kRegister);
  EXPECT_EQ(plan[0].current_url, "");
}

TEST(RegistrationPlanTest, OurUrlWithAnotherPathIsReplaced) {
  auto plan = PlanRegistrations({Want("CarrierService")},
                                {Listed("CarrierService", kPrefix + "Old")}, kPrefix, false);
  EXPECT_EQ(plan[0].step, RegistrationStep::kReplace);
  EXPECT_EQ(plan[0].reason, "URL drifted");
}

TEST(RegistrationPlanTest, ChangedCredentialsAreReplaced) {
  auto listed = Listed("CarrierService", kPrefix + "CarrierService");
  listed.password = "rotated";
  auto plan = PlanRegistrations({Want("CarrierService")}, {listed}, kPrefix, false);
  EXPECT_EQ(plan[0].step, RegistrationStep::kReplace);
  EXPECT_EQ(plan[0].reason, "credentials differ");
}

TEST(RegistrationPlanTest, ForeignUrlIsOnlyReportedUnlessAllowed) {
  std::vector<ListedRegistration> listed = {
      Listed("CarrierService", "https://other.example.net/hook")};
  EXPECT_EQ(PlanRegistrations({Want("CarrierService")}, listed, kPrefix, false)[0].step,
            RegistrationStep::kLeaveForeign);
  EXPECT_EQ(PlanRegistrations({Want("CarrierService")}, listed, kPrefix, true)[0].step,
            RegistrationStep::kTakeOver);
}

TEST(RegistrationPlanTest, AlertsServiceSpellingMatchesAlertService) {
  auto listed = Listed("AlertService", kPrefix + "AlertService");
  listed.service = "AlertsService";  // as the deregister page spells it
  auto plan = PlanRegistrations({Want("AlertService")}, {listed}, kPrefix, false);
  EXPECT_EQ(plan[0].step, RegistrationStep::kKeep);
}

TEST(RegistrationPlanTest, ServicesNotWantedAreNotTouched) {
  auto plan = PlanRegistrations({Want("CarrierService")},
                                {Listed("CarrierService", kPrefix + "CarrierService"),
                                 Listed("PromoChanges", "https://other.example.net/promo")},
                                kPrefix, true);
  ASSERT_EQ(plan.size(), 1u);
}

TEST(PublicUrlTest, HttpsHostNameAndAcceptedPortPass) {
  EXPECT_EQ(config::CheckPublicUrl("https://cb.example.com/callbacks"), "");
  EXPECT_EQ(config::CheckPublicUrl("https://cb.example.com:9003/callbacks"), "");
  EXPECT_EQ(config::CheckPublicUrl("https://cb.example.com:50559"), "");
  EXPECT_EQ(config::CheckPublicUrl("https://cb.example.com:28200/x"), "");
}

TEST(PublicUrlTest, WhatThingSpaceRefusesIsExplained) {
  EXPECT_NE(config::CheckPublicUrl("http://cb.example.com/").find("https"), std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://203.0.113.7/").find("host name"), std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://[2001:db8::1]/").find("host name"), std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://cb.example.com:8443/").find("port 8443"),
            std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://cb.example.com:9007/").find("does not accept"),
            std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://:443/").find("no host"), std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://cb.example.com:x/").find("not a number"),
            std::string::npos);
  EXPECT_NE(config::CheckPublicUrl("https://cb_example.com/").find("DNS"), std::string::npos);
}

}  // namespace
}  // namespace tscb::handlers
