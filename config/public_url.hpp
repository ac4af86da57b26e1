#pragma once
// Checks a public callback URL against what ThingSpace accepts in
// POST /callbacks (spec 3.5): https, a host name (not an address), and a port
// from ThingSpace's list. Pure.
#include <string>
#include <string_view>

namespace tscb::config {

// Returns "" when the URL is acceptable, otherwise why not.
std::string CheckPublicUrl(std::string_view url);

}  // namespace tscb::config
