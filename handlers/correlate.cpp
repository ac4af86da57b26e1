#include "handlers/correlate.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace tscb::handlers {
namespace {

bool IsProvisioning(const std::string& action) {
  return action != "sms" && action != "nidd" && action != "reachability" && action != "other";
}

bool NeedsNiddConfig(const std::string& action, bool nbiot) {
  return nbiot && (action == "activate" || action == "restore" || action == "plan_change");
}

bool SameDevice(const Device& a, const Device& b) {
  for (const auto& x : a)
    for (const auto& y : b)
      if (x.id == y.id && (x.kind == y.kind || x.kind.empty() || y.kind.empty())) return true;
  return false;
}

// Is this event a final answer for one part of the device's work, and did
// that part fail?
bool IsFinal(const std::string& action, const Event& e, bool& failed) {
  failed = e.Failed();
  if (e.Failed()) return true;  // a failure ends that device's work, whatever the kind
  const std::string& k = e.kind;
  if (action == "sms") {
    // EnhancedConnectivityService says "sent"; the confirmation (delivered or
    // expired) is final.
    if (k != "sms.delivery") return false;
    if (e.status == "expired") failed = true;
    return e.status == "delivered" || e.status == "expired";
  }
  if (action == "nidd") return k == "nidd.delivery" && e.status != "queued";
  if (action == "reachability") return k == "reachability.status";
  if (IsProvisioning(action))
    return k.rfind("provisioning.", 0) == 0 || k == "nidd.config" || k == "device.result" ||
           k == "profile.result" || k == "usage.aggregate" || k == "device.prl" ||
           k == "suspension.status";
  return k != "request.timeout";
}

}  // namespace

int PartsPerDevice(const std::string& action, bool nbiot) {
  return NeedsNiddConfig(action, nbiot) ? 2 : 1;
}

int ExpectedCallbacks(const RequestProgress& request) {
  int per = PartsPerDevice(request.action, request.nbiot);
  if (request.action == "sms" || request.action == "nidd") per = 2;  // intermediate + final
  return per * static_cast<int>(std::max<std::size_t>(1, request.devices.size()));
}

bool Apply(RequestProgress& request, const Event& event) {
  ++request.received;
  DeviceProgress* target = nullptr;
  for (auto& d : request.devices) {
    for (const auto& ids : event.devices) {
      if (SameDevice(d.ids, ids)) {
        target = &d;
        break;
      }
    }
    if (target) break;
  }
  if (!target && request.devices.size() == 1) target = &request.devices.front();
  if (!target) return false;
  if (target->state != DeviceState::kPending) return true;  // late or repeated
  bool failed = false;
  if (!IsFinal(request.action, event, failed)) return true;
  // An NB-IoT activation waits for both the carrier result and the NIDD
  // configuration; a failure of either ends it.
  bool nidd_part = event.kind == "nidd.config";
  bool needs_nidd = NeedsNiddConfig(request.action, request.nbiot);
  if (nidd_part && !needs_nidd && !failed) return true;  // not a part of this request
  (nidd_part ? target->nidd_seen : target->result_seen) = true;
  if (failed && !target->failed) {
    target->failed = true;
    target->error = !event.error_code.empty() ? event.error_code : event.kind + ":" + event.status;
  }
  if (target->failed || (target->result_seen && (!needs_nidd || target->nidd_seen)))
    target->state = target->failed ? DeviceState::kFailed : DeviceState::kSucceeded;
  return true;
}

void Conclude(RequestProgress& request) {
  if (request.state == "timed_out") return;
  int ok = 0, bad = 0;
  for (const auto& d : request.devices) {
    if (d.state == DeviceState::kPending) {
      request.state = "pending";
      return;
    }
    (d.state == DeviceState::kSucceeded ? ok : bad)++;
  }
  if (request.devices.empty()) return;
  request.state = bad == 0 ? "succeeded" : ok == 0 ? "failed" : "partial";
}

bool StatusEndpointApplies(const RequestProgress& request) {
  const std::string& a = request.action;
  return request.devices.size() == 1 &&
         (a == "activate" || a == "deactivate" || a == "suspend" || a == "restore");
}

namespace {

boost::json::array IdsArray(const Device& d) {
  boost::json::array ids;
  for (const auto& x : d) ids.push_back(boost::json::object{{"id", x.id}, {"kind", x.kind}});
  return ids;
}

Device IdsFrom(const boost::json::value& v) {
  Device d;
  if (!v.is_array()) return d;
  for (const auto& x : v.as_array()) {
    if (!x.is_object()) continue;
    auto* id = x.as_object().if_contains("id");
    auto* kind = x.as_object().if_contains("kind");
    if (!id || !id->is_string()) continue;
    d.push_back({std::string(id->as_string()),
                 kind && kind->is_string() ? std::string(kind->as_string()) : std::string()});
  }
  return d;
}

}  // namespace

std::string DevicesJson(const std::vector<Device>& devices) {
  boost::json::array out;
  for (const auto& d : devices) out.push_back(IdsArray(d));
  return boost::json::serialize(out);
}

std::vector<Device> ParseDevicesJson(std::string_view json) {
  std::vector<Device> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& d : v.as_array()) out.push_back(IdsFrom(d));
  return out;
}

std::string ProgressJson(const std::vector<DeviceProgress>& devices) {
  boost::json::array out;
  for (const auto& d : devices)
    out.push_back(boost::json::object{{"ids", IdsArray(d.ids)},
                                      {"state", Name(d.state)},
                                      {"result", d.result_seen},
                                      {"nidd", d.nidd_seen},
                                      {"error", d.error}});
  return boost::json::serialize(out);
}

std::vector<DeviceProgress> ParseProgressJson(std::string_view json) {
  std::vector<DeviceProgress> out;
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_array()) return out;
  for (const auto& item : v.as_array()) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    DeviceProgress d;
    if (auto* ids = o.if_contains("ids")) d.ids = IdsFrom(*ids);
    if (auto* st = o.if_contains("state"); st && st->is_string()) {
      if (st->as_string() == "succeeded") d.state = DeviceState::kSucceeded;
      if (st->as_string() == "failed") d.state = DeviceState::kFailed;
    }
    if (auto* p = o.if_contains("result"); p && p->is_bool()) d.result_seen = p->as_bool();
    if (auto* p = o.if_contains("nidd"); p && p->is_bool()) d.nidd_seen = p->as_bool();
    if (auto* e = o.if_contains("error"); e && e->is_string())
      d.error = std::string(e->as_string());
    d.failed = d.state == DeviceState::kFailed || !d.error.empty();
    out.push_back(std::move(d));
  }
  return out;
}

const char* Name(DeviceState state) {
  switch (state) {
    case DeviceState::kPending:
      return "pending";
    case DeviceState::kSucceeded:
      return "succeeded";
    case DeviceState::kFailed:
      return "failed";
  }
  return "pending";
}

}  // namespace tscb::handlers
