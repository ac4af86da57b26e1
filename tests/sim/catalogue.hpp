#pragma once
// The carrier simulator's catalogue of the ThingSpace API list
// (../shared/spec/api-reference.txt, spec sections 5.1 and 6): which
// endpoints answer synchronously with a plausible body, and which answer
// {"requestId": ...} and later deliver callbacks, on which services, with
// which bodies (spec section 4.3). Pure: no I/O.
//
// Simulated device behaviour, so tests can ask for it:
// - a device with any id ending in "9999" fails every action (faultResponse,
//   status Failed);
// - a request whose servicePlan contains "nbiot" (any case) makes its devices
//   NB-IoT: activate, restore and plan change add a NiddService
//   configuration callback per device.
#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace tscb::sim {

enum class Kind {
  kSync,     // answers a body now
  kAsync,    // answers {"requestId"} and delivers callbacks
  kSpecial,  // session, callback registry, request status: the simulator's state
};

struct Endpoint {
  const char* method;
  const char*
      pattern;  // path under /api/m2m/v1 ("/v2/..." under /api/m2m/v2); {name} = one segment
  Kind kind;
  const char* service;  // async: the callback service of the result
  const char* action;   // async: names the response object, e.g. "activate" -> activateResponse
};

const std::vector<Endpoint>& Endpoints();

// The endpoint for `method` and `path` (under /api/m2m/v1, "/v2/..." for v2),
// or nullptr; fills `params` from the {name} segments.
const Endpoint* Match(std::string_view method, std::string_view path,
                      std::map<std::string, std::string>& params);

// One device: its identifiers, as {id, kind} objects.
using Device = boost::json::array;

// The devices a request names: devices[].deviceIds, deviceIds[] (one device
// each), or device; a filter-only request gets one made-up device.
std::vector<Device> DevicesOf(const boost::json::object& request);

// A plausible synchronous answer.
boost::json::value SyncAnswer(const Endpoint& endpoint,
                              const std::map<std::string, std::string>& params,
                              const boost::json::object& request);

struct PlannedCallback {
  std::string service;
  boost::json::object body;  // without username/password/callbackCount
  bool failed = false;       // the device's action failed
};

// The callbacks an asynchronous request produces, in ThingSpace's order.
std::vector<PlannedCallback> CallbacksFor(const Endpoint& endpoint, const std::string& request_id,
                                          const std::string& account,
                                          const boost::json::object& request);

// Unsolicited messages (control API): ExternalProvisioningChanges,
// PromoChanges, ResumeTrackingNotification, AlertService,
// EnhancedConnectivityService (device SMS), NiddService (NIDD uplink).
// `type` is one of those service names; "" if unknown.
bool MakeUnsolicited(const std::string& type, const std::string& account, int n,
                     PlannedCallback& out);

std::string NewUuid();

}  // namespace tscb::sim
