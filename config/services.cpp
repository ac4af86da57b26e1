#include "config/services.hpp"

#include <algorithm>
#include <array>

namespace tscb::config {
namespace {
// Spec 3.4. "AlertsService" is the deregister page's spelling of AlertService.
constexpr std::array<std::string_view, 24> kServices = {"CarrierService",
                                                        "NiddService",
                                                        "EnhancedConnectivityService",
                                                        "SMSDeliveryConfirmation",
                                                        "DiagnosticsService",
                                                        "AlertService",
                                                        "AlertsService",
                                                        "DeviceUsage",
                                                        "DeviceSuspensionStatus",
                                                        "DevicePRLInformation",
                                                        "DeviceService",
                                                        "DeviceProfileService",
                                                        "StateService",
                                                        "ExternalProvisioningChanges",
                                                        "PromoChanges",
                                                        "ResumeTrackingNotification",
                                                        "SubscriptionNotificationService",
                                                        "DevicePromoUsage",
                                                        "ExtendedEnhancedConnectivityService",
                                                        "IntelligenceService",
                                                        "NetworkEventService",
                                                        "PwnService",
                                                        "QoS",
                                                        "VIPCallbackService"};
}  // namespace

std::span<const std::string_view> KnownCallbackServices() { return kServices; }

bool IsKnownCallbackService(std::string_view name) {
  return std::find(kServices.begin(), kServices.end(), name) != kServices.end();
}

}  // namespace tscb::config
