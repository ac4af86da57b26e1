#include "handlers/classify.hpp"

#include <algorithm>
#include <cctype>
#include <map>

#include "handlers/json_fields.hpp"

namespace tscb::handlers {
namespace json = boost::json;
namespace {

// "changeServicePlan" -> "change_service_plan"
std::string Snake(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      if (!out.empty()) out += '_';
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  return out;
}

const json::object* Obj(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return {};
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  return {};
}

// Keys compared without regard to case ("deviceIds", "DeviceIds").
const json::value* FindKey(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key)) return v;
  std::string want = AsciiLower(key);
  for (const auto& [k, v] : o)
    if (AsciiLower(k) == want) return &v;
  return nullptr;
}

Device ParseIds(const json::value* value) {
  Device out;
  if (!value || !value->is_array()) return out;
  for (const auto& item : value->as_array()) {
    if (!item.is_object()) continue;
    const auto& o = item.as_object();
    std::string id = Str(o, "id");
    std::string kind = AsciiLower(Str(o, "kind"));
    if (id.empty()) continue;
    DeviceId d{id, kind};
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(std::move(d));
  }
  return out;
}

void Merge(Device& into, const Device& more) {
  for (const auto& d : more)
    if (std::find(into.begin(), into.end(), d) == into.end()) into.push_back(d);
}

// The first accountName anywhere in the body (breadth-first, shallow first).
std::string FindAccount(const json::object& body) {
  std::vector<const json::object*> level{&body};
  for (int depth = 0; depth < 4 && !level.empty(); ++depth) {
    std::vector<const json::object*> next;
    for (const auto* o : level) {
      if (auto* v = FindKey(*o, "accountName"); v && v->is_string() && !v->as_string().empty())
        return std::string(v->as_string());
      for (const auto& [k, v] : *o)
        if (v.is_object()) next.push_back(&v.as_object());
    }
    level = std::move(next);
  }
  return {};
}

// Identifiers of the inner objects that describe the same single device.
void MergeInnerIds(const json::object& inner, Device& device) {
  Merge(device, ParseIds(FindKey(inner, "deviceIds")));
}

std::string NormaliseStatus(std::string_view raw) {
  std::string s = AsciiLower(raw);
  if (s == "success" || s == "succeeded" || s == "successful" || s == "completed") return "success";
  if (s == "failed" || s == "failure" || s == "error" || s == "deliveryfailed" ||
      s == "configfailed")
    return "failed";
  if (s == "configcreated") return "config_created";
  if (s.empty()) return "received";
  return Snake(raw.empty() ? s : AsciiLower(raw));
}

const std::map<std::string, std::string, std::less<>>& CarrierActions() {
  // deviceResponse.<name>Response -> provisioning.<action>
  static const std::map<std::string, std::string, std::less<>> m = {
      {"activate", "activate"},
      {"suspend", "suspend"},
      {"restore", "restore"},
      {"resume", "restore"},
      {"deactivate", "deactivate"},
      {"changeServicePlan", "plan_change"},
      {"servicePlan", "plan_change"},
      {"plan", "plan_change"},
      {"changeIdentifier", "device_id_change"},
      {"changeDeviceId", "device_id_change"},
      {"deviceId", "device_id_change"},
      {"customFields", "custom_fields"},
      {"customFieldsUpdate", "custom_fields"},
      {"move", "move"},
      {"costCenter", "cost_center"},
      {"contactInfo", "contact_info"},
      {"add", "add"},
      {"delete", "delete"},
      {"uploadActivate", "activate"},
      {"eidDeviceSwap", "device_swap"},
      {"simSecure", "sim_secure"},
  };
  return m;
}

void ClassifyCarrier(const json::object& body, Event& e) {
  const json::object* response = Obj(body, "deviceResponse");
  if (!response) {
    e.kind = "provisioning.result";
    return;
  }
  for (const auto& [key, value] : *response) {
    std::string_view k = key;
    constexpr std::string_view suffix = "Response";
    if (k.size() <= suffix.size() || k.substr(k.size() - suffix.size()) != suffix) continue;
    std::string_view name = k.substr(0, k.size() - suffix.size());
    auto it = CarrierActions().find(name);
    e.kind = "provisioning." + (it != CarrierActions().end() ? it->second : Snake(name));
    if (value.is_object()) {
      e.payload = value.as_object();
      if (!e.devices.empty()) MergeInnerIds(value.as_object(), e.devices.front());
    }
    return;
  }
  // No "<action>Response" object (spec 4.3: plan change and custom fields
  // examples): a plan field says plan change; otherwise the action is only
  // known from the pending request.
  e.payload = *response;
  e.kind = response->contains("servicePlan") ? "provisioning.plan_change" : "provisioning.result";
}

void ClassifyNidd(const json::object& body, Event& e) {
  const json::object* nidd = Obj(body, "niddResponse");
  if (!nidd) {
    e.kind = "unknown";
    return;
  }
  static const std::pair<const char*, const char*> shapes[] = {
      {"niddConfigResponse", "nidd.config"},
      {"niddMTDeliveryResponse", "nidd.delivery"},
      {"niddMONotificationResponse", "nidd.mo"},
  };
  for (const auto& [key, kind] : shapes) {
    if (const json::object* inner = Obj(*nidd, key)) {
      e.kind = kind;
      e.payload = *inner;
      Device inner_ids = ParseIds(FindKey(*inner, "deviceIds"));
      if (e.devices.empty() && !inner_ids.empty()) e.devices.push_back(Device{});
      if (!e.devices.empty()) Merge(e.devices.front(), inner_ids);
      if (e.raw_status.empty() && e.kind == "nidd.mo") e.status = "received";
      return;
    }
  }
  e.kind = "unknown";
}

void ClassifySms(std::string_view service, const json::object& body, Event& e) {
  if (const json::object* delivery = Obj(body, "smsDeliveryResponse")) {
    e.kind = "sms.delivery";
    e.payload = *delivery;
    // The delivery state lives inside; the top-level status only says the
    // notice itself is fine.
    std::string inner = Str(*delivery, "status");
    if (!inner.empty()) {
      e.raw_status = inner;
      e.status = NormaliseStatus(inner);
    }
    return;
  }
  if (auto* sms = body.if_contains("smsMessage")) {
    e.kind = "sms.mo";
    if (sms->is_object())
      e.payload = sms->as_object();
    else if (sms->is_string())
      e.payload = json::object{{"message", sms->as_string()}};
    if (e.raw_status.empty()) e.status = "received";
    return;
  }
  if (service == "SMSDeliveryConfirmation") {
    e.kind = "sms.delivery";
    return;
  }
  e.kind = "unknown";
}

bool IsEnvelope(std::string_view key) {
  static const std::vector<std::string_view> envelope = {"username",
                                                         "password",
                                                         "requestId",
                                                         "deviceIds",
                                                         "status",
                                                         "callbackCount",
                                                         "maxCallbackThreshold",
                                                         "faultResponse"};
  return std::find(envelope.begin(), envelope.end(), key) != envelope.end();
}

const std::map<std::string, std::string, std::less<>>& ServiceKinds() {
  static const std::map<std::string, std::string, std::less<>> m = {
      {"DiagnosticsService", "reachability.status"},
      {"AlertService", "usage.alert"},
      {"AlertsService", "usage.alert"},
      {"ExternalProvisioningChanges", "external.provisioning_change"},
      {"PromoChanges", "promo.change"},
      {"ResumeTrackingNotification", "suspension.resume_notice"},
      {"DeviceService", "device.result"},
      {"StateService", "provisioning.state_change"},
      {"DeviceUsage", "usage.aggregate"},
      {"DeviceSuspensionStatus", "suspension.status"},
      {"DevicePRLInformation", "device.prl"},
      {"DeviceProfileService", "profile.result"},
      {"SubscriptionNotificationService", "subscription.notice"},
  };
  return m;
}

}  // namespace

const std::vector<std::string>& KnownEventKinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> k = {"provisioning.result",
                                  "provisioning.failed",
                                  "nidd.config",
                                  "nidd.delivery",
                                  "nidd.mo",
                                  "sms.delivery",
                                  "sms.mo",
                                  "request.timeout",
                                  "unknown"};
    for (const auto& [name, action] : CarrierActions())
      if (std::find(k.begin(), k.end(), "provisioning." + action) == k.end())
        k.push_back("provisioning." + action);
    for (const auto& [service, kind] : ServiceKinds())
      if (std::find(k.begin(), k.end(), kind) == k.end()) k.push_back(kind);
    return k;
  }();
  return kinds;
}

Event Classify(std::string_view service, const json::object& body) {
  Event e;
  e.request_id = Str(body, "requestId");
  e.raw_status = Str(body, "status");
  e.status = NormaliseStatus(e.raw_status);
  e.account = FindAccount(body);
  Device top = ParseIds(FindKey(body, "deviceIds"));
  if (!top.empty()) e.devices.push_back(std::move(top));

  if (const json::object* fault = Obj(body, "faultResponse")) {
    e.error_code = Str(*fault, "faultcode");
    if (e.error_code.empty()) e.error_code = Str(*fault, "faultCode");
    e.error_message = Str(*fault, "faultstring");
    if (e.error_message.empty()) e.error_message = Str(*fault, "faultString");
    e.status = "failed";
    e.payload = *fault;
  }

  if (service == "CarrierService") {
    if (e.Failed() && !body.contains("deviceResponse"))
      e.kind = "provisioning.failed";
    else
      ClassifyCarrier(body, e);
  } else if (service == "NiddService") {
    ClassifyNidd(body, e);
  } else if (service == "EnhancedConnectivityService" || service == "SMSDeliveryConfirmation") {
    ClassifySms(service, body, e);
  } else if (auto it = ServiceKinds().find(service); it != ServiceKinds().end()) {
    e.kind = it->second;
    // Shapes here are [RECON]: keep everything beside the envelope, and take
    // device identifiers from any inner object (deviceInfo for external
    // provisioning changes).
    if (!e.Failed())
      for (const auto& [k, v] : body)
        if (!IsEnvelope(k)) e.payload[k] = v;
    for (const auto& [k, v] : body) {
      if (IsEnvelope(k) || !v.is_object()) continue;
      const json::object* holder = Obj(v.as_object(), "deviceInfo");
      Device inner_ids = ParseIds(FindKey(holder ? *holder : v.as_object(), "deviceIds"));
      if (inner_ids.empty()) continue;
      if (e.devices.empty()) e.devices.push_back(Device{});
      Merge(e.devices.front(), inner_ids);
    }
    if (e.raw_status.empty() && !e.Failed()) e.status = "received";
  } else {
    e.kind = "unknown";
  }
  if (e.kind == "unknown") e.payload = body;
  return e;
}

}  // namespace tscb::handlers
