#pragma once
// Matches events to the pending asynchronous request they answer (spec 4.4,
// 5.1) and decides when the request is over. A request expects, per device,
// the callbacks its action produces: one CarrierService result for a
// provisioning action, plus the NIDD configuration message on NB-IoT lines
// (activate, restore, plan change); for an SMS the delivery confirmation
// (the "sent" notice is intermediate); for a NIDD downlink the final delivery
// report (Queued is intermediate); for reachability the first report. A
// device is matched by any of its identifiers. The request ends succeeded
// (every device succeeded), failed (every device failed) or partial. Pure.
#include <string>
#include <vector>

#include "handlers/classify.hpp"

namespace tscb::handlers {

enum class DeviceState { kPending, kSucceeded, kFailed };

struct DeviceProgress {
  Device ids;  // as submitted
  DeviceState state = DeviceState::kPending;
  bool result_seen = false;  // the action's final callback
  bool nidd_seen = false;    // the NIDD configuration message (NB-IoT activate/restore/plan)
  bool failed = false;       // any part failed
  std::string error;         // first failure's code or status
};

struct RequestProgress {
  std::string request_id;
  std::string action;  // activate, suspend, ..., sms, nidd, reachability, other
  bool nbiot = false;
  std::vector<DeviceProgress> devices;
  int received = 0;               // matched callbacks, intermediate ones included
  std::string state = "pending";  // pending, succeeded, failed, partial, timed_out
};

// Final callbacks each device needs for `action`.
int PartsPerDevice(const std::string& action, bool nbiot);
// Callbacks the request expects in all (for reports; intermediates not counted).
int ExpectedCallbacks(const RequestProgress& request);

// Applies one event that carries the request's id. Returns false when the
// event names no device of the request and the request has more than one
// device (it is still counted as received).
bool Apply(RequestProgress& request, const Event& event);

// Recomputes request.state from the devices ("pending" while any is).
void Conclude(RequestProgress& request);

// Whether `action` is one the v1 request-status endpoint can answer (spec
// 5.2: single-device activate, deactivate, suspend, restore).
bool StatusEndpointApplies(const RequestProgress& request);

const char* Name(DeviceState state);

// JSON forms stored in the database: devices as [[{"id","kind"}, ...], ...];
// progress as [{"ids": [...], "state", "parts", "error"}, ...].
std::string DevicesJson(const std::vector<Device>& devices);
std::vector<Device> ParseDevicesJson(std::string_view json);  // [] on anything else
std::string ProgressJson(const std::vector<DeviceProgress>& devices);
std::vector<DeviceProgress> ParseProgressJson(std::string_view json);

}  // namespace tscb::handlers
