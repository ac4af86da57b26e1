#pragma once
// The callback service names ThingSpace accepts in POST /callbacks
// (spec section 3.4). The body of a callback does not name its service, so
// the daemon gives each one its own URL path (spec 4.2).
#include <span>
#include <string_view>

namespace tscb::config {

std::span<const std::string_view> KnownCallbackServices();
bool IsKnownCallbackService(std::string_view name);

}  // namespace tscb::config
