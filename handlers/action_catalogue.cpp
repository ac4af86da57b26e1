#include "handlers/action_catalogue.hpp"

#include <boost/json.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

namespace tscb::handlers {
namespace json = boost::json;
namespace {

using F = FieldSpec;
using T = FieldType;
using Fields = std::vector<FieldSpec>;
using Groups = std::vector<std::vector<const char*>>;

Fields operator+(Fields a, const Fields& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The device selection most actions share (spec section 6): a device list
// or one of the filters.
const Fields kSelect = {{"accountName", T::kString},
                        {"devices", T::kDevices},
                        {"groupName", T::kString},
                        {"servicePlan", T::kString},
                        {"customFields", T::kKeyValues}};
const Groups kSelectOne = {{"devices", "groupName", "servicePlan", "customFields"}};
const Fields kAccount = {{"accountName", T::kString, true}};
const Fields kAccountDevices = {{"accountName", T::kString, true}, {"devices", T::kDevices, true}};
const Fields kProfile = kAccountDevices + Fields{{"carrierName", T::kString},
                                                 {"servicePlan", T::kString},
                                                 {"mdnZipCode", T::kString},
                                                 {"profileType", T::kString},
                                                 {"customFields", T::kKeyValues}};
const Fields kPeriod = {{"earliest", T::kString}, {"latest", T::kString}};

ActionSpec A(const char* name, const char* method, const char* path, bool safe,
             const char* correlate, const char* summary, Fields fields, Groups one_of = {},
             bool open = false) {
  return ActionSpec{
      name, method, path, safe, correlate, summary, std::move(fields), std::move(one_of), open};
}

bool Templated(const json::value& v) {
  return v.is_string() && v.as_string().find("{{") != json::string::npos;
}

bool IsDeviceId(const json::value& v) {
  auto* o = v.if_object();
  if (!o) return false;
  auto* id = o->if_contains("id");
  auto* kind = o->if_contains("kind");
  return id && kind && (id->is_string() || Templated(*id)) && kind->is_string();
}

// Checks `v` against `type`; "" when it fits.
std::string CheckType(const json::value& v, FieldType type, bool templates_unknown) {
  if (templates_unknown && Templated(v)) return {};
  auto each = [&](const json::value& list, auto&& ok, const char* what) -> std::string {
    if (!list.is_array()) return std::string("expected ") + TypeName(type);
    for (const auto& item : list.as_array()) {
      if (templates_unknown && Templated(item)) continue;
      if (!ok(item)) return std::string("every item must be ") + what;
    }
    return {};
  };
  switch (type) {
    case T::kString:
      return v.is_string() ? "" : "expected a string";
    case T::kBool:
      return v.is_bool() ? "" : "expected true or false";
    case T::kInteger:
      return v.is_int64() || v.is_uint64() ? "" : "expected an integer";
    case T::kNumber:
      return v.is_number() ? "" : "expected a number";
    case T::kObject:
      return v.is_object() ? "" : "expected an object";
    case T::kArray:
      return v.is_array() ? "" : "expected a list";
    case T::kStringList:
      return each(
          v, [](const json::value& i) { return i.is_string(); }, "a string");
    case T::kDeviceIds:
      return each(v, IsDeviceId, "an {id, kind} object");
    case T::kDeviceId:
      return IsDeviceId(v) ? "" : "expected an {id, kind} object";
    case T::kKeyValues:
      return each(
          v,
          [](const json::value& i) {
            auto* o = i.if_object();
            return o && o->contains("key") && o->contains("value");
          },
          "a {key, value} object");
    case T::kDevices:
      return each(
          v,
          [&](const json::value& i) {
            auto* o = i.if_object();
            if (!o) return false;
            auto* ids = o->if_contains("deviceIds");
            if (!ids) return false;
            if (templates_unknown && Templated(*ids)) return true;
            if (!ids->is_array() || ids->as_array().empty()) return false;
            for (const auto& id : ids->as_array())
              if (!(templates_unknown && Templated(id)) && !IsDeviceId(id)) return false;
            return true;
          },
          "a {\"deviceIds\": [{id, kind}, ...]} object");
  }
  return {};
}

std::vector<std::string> PathFields(const char* path) {
  std::vector<std::string> out;
  std::string p = path;
  for (auto open = p.find('{'); open != std::string::npos; open = p.find('{', open + 1))
    out.push_back(p.substr(open + 1, p.find('}', open) - open - 1));
  return out;
}

// Percent-encodes everything but RFC 3986's unreserved characters.
std::string PercentEncode(const std::string& text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

std::string Text(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : json::serialize(v);
}

}  // namespace

bool ActionSpec::has_body() const {
  std::string m = method;
  if (m == "POST" || m == "PUT") return true;
  if (m != "DELETE") return false;
  auto in_path = PathFields(path);
  for (const auto& f : fields)
    if (std::find(in_path.begin(), in_path.end(), f.name) == in_path.end()) return true;
  return false;
}

const char* TypeName(FieldType type) {
  switch (type) {
    case T::kString:
      return "a string";
    case T::kBool:
      return "true or false";
    case T::kInteger:
      return "an integer";
    case T::kNumber:
      return "a number";
    case T::kObject:
      return "an object";
    case T::kArray:
      return "a list";
    case T::kStringList:
      return "a list of strings";
    case T::kDevices:
      return "a list of {\"deviceIds\": [{id, kind}]}";
    case T::kDeviceIds:
      return "a list of {id, kind}";
    case T::kDeviceId:
      return "an {id, kind} object";
    case T::kKeyValues:
      return "a list of {key, value}";
  }
  return "?";
}

const std::vector<ActionSpec>& Catalogue() {
  static const std::vector<ActionSpec> table = {
      // Device service provisioning (spec 6.1-6.5).
      A("devices.activate", "POST", "/devices/actions/activate", false, "activate",
        "Activate service for devices",
        kAccountDevices + Fields{{"servicePlan", T::kString, true},
                                 {"mdnZipCode", T::kString, true},
                                 {"carrierIpPoolName", T::kString},
                                 {"costCenterCode", T::kString},
                                 {"customFields", T::kKeyValues},
                                 {"groupName", T::kString},
                                 {"primaryPlaceOfUse", T::kObject},
                                 {"carrierName", T::kString},
                                 {"leadId", T::kString},
                                 {"publicIpRestriction", T::kString},
                                 {"skuNumber", T::kString}}),
      A("devices.suspend", "POST", "/devices/actions/suspend", false, "suspend",
        "Suspend service for devices", kSelect + Fields{{"withBilling", T::kBool}}, kSelectOne),
      A("devices.restore", "POST", "/devices/actions/restore", false, "restore",
        "Restore service for suspended devices", kSelect, kSelectOne),
      A("devices.deactivate", "POST", "/devices/actions/deactivate", false, "deactivate",
        "Deactivate service for devices",
        kSelect + Fields{{"reasonCode", T::kString, true},
                         {"etfWaiver", T::kBool},
                         {"deleteAfterDeactivation", T::kBool}},
        kSelectOne),
      A("devices.gotostate", "PUT", "/devices/actions/gotostate", false, "gotostate",
        "Set devices to a customer-defined service and state",
        kSelect + Fields{{"serviceName", T::kString, true},
                         {"stateName", T::kString, true},
                         {"mdnZipCode", T::kString},
                         {"carrierIpPoolName", T::kString},
                         {"publicIpRestriction", T::kString},
                         {"primaryPlaceOfUse", T::kObject}},
        kSelectOne, true),
      A("devices.move", "PUT", "/devices/actions/move", false, "move",
        "Move active devices to another billing account of the profile", kSelect, kSelectOne, true),
      A("devices.add", "POST", "/devices/actions/add", false, "add",
        "Add devices without activating service",
        kAccountDevices + Fields{{"state", T::kString},
                                 {"servicePlan", T::kString},
                                 {"groupName", T::kString},
                                 {"customFields", T::kKeyValues},
                                 {"skuNumber", T::kString}},
        {}, true),
      A("devices.delete", "POST", "/devices/actions/delete", false, "delete",
        "Delete deactivated devices",
        Fields{{"accountName", T::kString, true}, {"devicesToDelete", T::kDevices, true}}, {},
        true),
      A("devices.change_id", "PUT", "/devices/{serviceType}/actions/deviceId", false, "change_id",
        "Change device identifiers to match hardware changes",
        Fields{{"serviceType", T::kString, true},
               {"accountName", T::kString},
               {"deviceIds", T::kDeviceIds, true},
               {"deviceIdsTo", T::kDeviceIds},
               {"change4gOption", T::kString},
               {"servicePlan", T::kString},
               {"zipCode", T::kString}},
        {}, true),
      A("devices.custom_fields", "PUT", "/devices/actions/customFields", true, "custom_fields",
        "Change custom field values for devices",
        kSelect + Fields{{"customFieldsToUpdate", T::kKeyValues, true}}, kSelectOne),
      A("devices.cost_center", "PUT", "/devices/costCenter", true, "cost_center",
        "Change or remove the CostCenterCode of devices",
        kSelect + Fields{{"costCenter", T::kString}, {"clearCostCenter", T::kBool}}, kSelectOne,
        true),
      A("devices.contact_info", "PUT", "/devices/actions/contactinfo", true, "contact_info",
        "Change the name and address associated with devices",
        kSelect + Fields{{"primaryPlaceOfUse", T::kObject, true}}, kSelectOne),
      A("devices.plan", "PUT", "/devices/actions/plan", true, "plan_change",
        "Change the service plan of devices",
        kSelect + Fields{{"servicePlan", T::kString, true},
                         {"carrierIpPoolName", T::kString},
                         {"takeEffect", T::kString},
                         {"currentServicePlan", T::kString}}),
      A("devices.eid_swap", "POST", "/devices/actions/eidDeviceSwap", false, "eid_swap",
        "EID device swap", kAccountDevices, {}, true),
      // eUICC profiles.
      A("profile.activate_enable", "POST", "/devices/profile/actions/activate_enable", false,
        "profile", "Activate and enable a device for a profile", kProfile, {}, true),
      A("profile.activate", "POST", "/devices/profile/actions/activate", false, "profile",
        "Activate a device for a profile", kProfile, {}, true),
      A("profile.deactivate", "POST", "/devices/profile/actions/deactivate", false, "profile",
        "Deactivate a device for a profile", kProfile, {}, true),
      A("profile.download_enable", "POST", "/devices/profile/actions/download_enable", false,
        "profile", "Download and enable an eUICC profile", kProfile, {}, true),
      A("profile.enable", "POST", "/devices/profile/actions/enable", false, "profile",
        "Enable an eUICC profile", kProfile, {}, true),
      A("profile.disable", "POST", "/devices/profile/actions/disable", false, "profile",
        "Disable an eUICC profile", kProfile, {}, true),
      A("profile.delete", "POST", "/devices/profile/actions/delete", false, "profile",
        "Delete an eUICC profile", kProfile, {}, true),
      A("profile.set_fallback", "POST", "/devices/profile/actions/setfallbackattribute", true,
        "profile", "Set the fallback attribute of a device", kProfile, {}, true),
      // Queries (answered now, or by callback when the answer is a requestId).
      A("devices.availability", "POST", "/devices/availability/actions/list", true, "other",
        "Check whether devices can be activated", kAccountDevices, {}, true),
      A("devices.list", "POST", "/devices/actions/list", true, "", "Details of devices",
        Fields{{"accountName", T::kString},
               {"deviceId", T::kDeviceId},
               {"filter", T::kObject},
               {"currentState", T::kString},
               {"customFields", T::kKeyValues},
               {"groupName", T::kString},
               {"servicePlan", T::kString},
               {"maxNumberOfDevices", T::kInteger},
               {"largestDeviceIdSeen", T::kInteger}} +
            kPeriod),
      A("devices.diagnostics", "POST", "/devices/diagnostics/actions/list", true, "",
        "Basic diagnostics of a device", kAccount, {}, true),
      A("devices.extended_diagnostics", "POST", "/devices/extendeddiagnostics/actions/list", true,
        "", "Extended diagnostics of a device", kAccount, {}, true),
      A("devices.suspension_status", "POST", "/devices/suspension/status", true, "other",
        "Service suspension information of devices", kSelect, {}, true),
      A("devices.prl", "POST", "/devices/prl/actions/list", true, "other",
        "Current PRL version of devices", kSelect, {}, true),
      A("devices.imei_iccid_mismatch", "POST", "/devices/actions/list/imeiiccidmismatch", true, "",
        "4G devices whose ICCID is not paired with the expected IMEI", kAccount, {}, true),
      A("devices.order_status", "GET", "/devices/requests/status", true, "other",
        "Where an activation order is in provisioning", Fields{{"accountName", T::kString}}, {},
        true),
      A("devices.usage", "POST", "/devices/usage/actions/list", true, "", "Device usage history",
        Fields{{"accountName", T::kString}, {"deviceId", T::kDeviceId, true}} + kPeriod),
      A("devices.usage_aggregate", "POST", "/devices/usage/actions/list/aggregate", true, "other",
        "Aggregate usage of devices",
        Fields{{"accountName", T::kString, true},
               {"deviceIds", T::kDeviceIds},
               {"startTime", T::kString},
               {"endTime", T::kString}},
        {}, true),
      A("devices.history", "POST", "/devices/history/actions/list", true, "",
        "Provisioning history of a device",
        Fields{{"accountName", T::kString}, {"deviceId", T::kDeviceId, true}} + kPeriod),
      A("devices.history_v2", "POST", "/v2/devices/history/actions/list", true, "",
        "Provisioning history (v2)", kAccount, {}, true),
      A("devices.connection_history", "POST", "/devices/connections/actions/listHistory", true, "",
        "Connection history of a device",
        Fields{{"accountName", T::kString}, {"deviceId", T::kDeviceId, true}} + kPeriod),
      A("devices.global_list", "POST", "/v2/devices/actions/list", true, "",
        "The global device list (v2)", kAccount + Fields{{"filter", T::kObject}}, {}, true),
      A("devices.billed_usage", "POST", "/devices/usage/actions/billedusage", true, "",
        "Billed usage of a customer segment", kAccount, {}, true),
      A("devices.billed_usage_list", "POST", "/devices/usage/actions/billedusage/list", true, "",
        "Billed usage of devices or an account", kAccount, {}, true),
      A("devices.sms_history", "POST", "/devices/sms/history/actions/list", true, "",
        "MO/MT SMS history of one device",
        Fields{{"accountName", T::kString}, {"deviceId", T::kDeviceId, true}} + kPeriod),
      A("requests.status", "GET", "/accounts/{accountName}/requests/{requestId}/status", true, "",
        "Status of an asynchronous request",
        Fields{{"accountName", T::kString, true}, {"requestId", T::kString, true}}),
      A("requests.status_v2", "GET", "/v2/accounts/{accountName}/requests/{requestId}/status", true,
        "", "Status of an asynchronous request (v2)",
        Fields{{"accountName", T::kString, true}, {"requestId", T::kString, true}}),
      A("accounts.state_and_services", "GET", "/accounts/{accountName}/stateandservices", true, "",
        "Customer-defined services and states", kAccount),
      A("accounts.get", "GET", "/accounts/{accountName}", true, "", "Information about an account",
        kAccount),
      A("accounts.skus", "POST", "/accounts/{accountName}/sku", true, "", "Registered device SKUs",
        kAccount, {}, true),
      A("leads.list", "GET", "/leads/{accountName}", true, "", "Leads of an account", kAccount),
      A("plans.list", "GET", "/plans/{accountName}", true, "", "Service plans of an account",
        kAccount),
      // Groups.
      A("groups.create", "POST", "/groups", false, "", "Create a device group",
        Fields{{"accountName", T::kString, true},
               {"groupName", T::kString, true},
               {"groupDescription", T::kString},
               {"devicesToAdd", T::kDeviceIds}}),
      A("groups.update", "PUT", "/groups/{accountName}/name/{groupName}", true, "",
        "Update a device group",
        Fields{{"accountName", T::kString, true},
               {"groupName", T::kString, true},
               {"newGroupName", T::kString},
               {"newGroupDescription", T::kString},
               {"devicesToAdd", T::kDeviceIds},
               {"devicesToRemove", T::kDeviceIds}}),
      A("groups.list", "GET", "/groups/{accountName}", true, "", "Device groups of an account",
        kAccount),
      A("groups.get", "GET", "/groups/{accountName}/name/{groupName}", true, "",
        "Information about a device group",
        Fields{{"accountName", T::kString, true},
               {"groupName", T::kString, true},
               {"maxNumberOfDevices", T::kInteger},
               {"largestDeviceIdSeen", T::kInteger}}),
      A("groups.delete", "DELETE", "/groups/{accountName}/name/{groupName}", true, "",
        "Delete a device group",
        Fields{{"accountName", T::kString, true}, {"groupName", T::kString, true}}),
      // SMS (spec 6.6).
      A("sms.send", "POST", "/sms", false, "sms", "Send an SMS to devices",
        Fields{{"accountName", T::kString},
               {"deviceIds", T::kDeviceIds},
               {"groupName", T::kString},
               {"servicePlan", T::kString},
               {"customFields", T::kKeyValues},
               {"smsMessage", T::kString, true},
               {"dataEncoding", T::kString},
               {"timeToLive", T::kString}},
        {{"deviceIds", "groupName", "servicePlan", "customFields"}}),
      A("sms.history", "GET", "/sms/{accountName}/history", true, "",
        "SMS messages sent by devices (queued)", kAccount),
      A("sms.start_callbacks", "PUT", "/sms/{accountName}/startCallbacks", true, "",
        "Start delivery of queued device SMS as callbacks", kAccount),
      // Callbacks and triggers.
      A("callbacks.register", "POST", "/callbacks/{accountName}", false, "",
        "Register a callback listener URL",
        Fields{{"accountName", T::kString, true},
               {"name", T::kString, true},
               {"url", T::kString, true},
               {"username", T::kString},
               {"password", T::kString}}),
      A("callbacks.list", "GET", "/callbacks/{accountName}", true, "",
        "Registered callback listener URLs", kAccount),
      A("callbacks.delete", "DELETE", "/callbacks/{accountName}/name/{serviceName}", true, "",
        "Delete a callback listener URL",
        Fields{{"accountName", T::kString, true}, {"serviceName", T::kString, true}}),
      A("triggers.create", "POST", "/triggers", false, "",
        "Create a usage trigger that sends AlertService callbacks",
        Fields{{"name", T::kString, true},
               {"triggerCategory", T::kString, true},
               {"accountName", T::kString, true},
               {"groupName", T::kString},
               {"triggerCycle", T::kString},
               {"dataTriggerRequest", T::kObject},
               {"smsTriggerRequest", T::kObject},
               {"sessionTriggerRequest", T::kObject},
               {"anomalyTriggerRequest", T::kObject},
               {"notification", T::kObject},
               {"active", T::kBool}}),
      // Reachability (spec 6.10).
      A("reachability.monitor", "POST", "/diagnostics/basic/devicereachability", false,
        "reachability", "Monitor device reachability",
        kAccountDevices +
            Fields{{"requestType", T::kString, true}, {"monitorExpirationTime", T::kString}}),
      A("reachability.stop", "DELETE", "/diagnostics/basic/devicereachability", true, "other",
        "Stop reachability monitors",
        Fields{{"accountName", T::kString, true}, {"monitorIds", T::kStringList, true}}),
      A("reachability.monitors", "POST", "/diagnostics/basic/devicereachability/monitors", true,
        "other", "Active reachability monitors",
        Fields{{"accountName", T::kString, true},
               {"devices", T::kDevices},
               {"requestType", T::kString}}),
      A("reachability.status", "POST", "/diagnostics/basic/devicereachability/status", true,
        "reachability", "Reachability status of one device",
        Fields{{"accountName", T::kString, true},
               {"device", T::kDeviceId, true},
               {"requestType", T::kString, true},
               {"requestExpirationTime", T::kString}}),
      // Segmentation.
      A("segmentation.add_label", "POST", "/devices/actions/usagesegmentationlabels", true, "",
        "Associate a usage segmentation label with devices", kAccount, {}, true),
      A("segmentation.remove_label", "DELETE", "/devices/actions/usagesegmentationlabels", true, "",
        "Remove the usage segmentation label of devices", kAccount, {}, true),
      // NIDD (spec 6.7).
      A("nidd.send", "POST", "/devices/nidd/message", false, "nidd",
        "Send non-IP data to an NB-IoT device",
        Fields{{"accountName", T::kString, true},
               {"deviceIds", T::kDeviceIds, true},
               {"maximumDeliveryTime", T::kInteger},
               {"message", T::kString, true}}),
  };
  return table;
}

const ActionSpec* FindAction(std::string_view name) {
  for (const auto& a : Catalogue())
    if (name == a.name) return &a;
  return nullptr;
}

std::vector<std::string> CheckBody(const ActionSpec& spec, const json::object& body,
                                   bool templates_unknown) {
  std::vector<std::string> errors;
  for (const auto& f : spec.fields) {
    auto* v = body.if_contains(f.name);
    if (!v || v->is_null()) {
      if (f.required) errors.push_back(std::string(f.name) + " is required");
      continue;
    }
    if (auto why = CheckType(*v, f.type, templates_unknown); !why.empty())
      errors.push_back(std::string(f.name) + ": " + why);
  }
  if (!spec.open) {
    for (const auto& [key, value] : body) {
      bool known = false;
      for (const auto& f : spec.fields) known = known || key == f.name;
      if (!known)
        errors.push_back(std::string(key) + " is not a field of " + spec.name +
                         " (thingspace.call sends any body)");
    }
  }
  for (const auto& group : spec.one_of) {
    bool any = false;
    std::string names;
    for (const char* name : group) {
      any = any || body.contains(name);
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    if (!any) errors.push_back("one of " + names + " is required");
  }
  // Limits the spec states (6.4, 6.6, 6.7).
  auto text_of = [&](const char* key) -> const json::string* {
    auto* v = body.if_contains(key);
    return v && v->is_string() && !(templates_unknown && Templated(*v)) ? &v->as_string() : nullptr;
  };
  if (spec.name == std::string_view("sms.send"))
    if (auto* m = text_of("smsMessage"); m && m->size() > 160)
      errors.push_back("smsMessage: at most 160 characters");
  if (spec.name == std::string_view("nidd.send"))
    if (auto* m = text_of("message"); m && m->size() > 1812)
      errors.push_back("message: at most 1,358 bytes (base64: 1,812 characters)");
  if (spec.name == std::string_view("devices.custom_fields"))
    if (auto* list = body.if_contains("customFieldsToUpdate"); list && list->is_array())
      for (const auto& item : list->as_array())
        if (auto* o = item.if_object())
          if (auto* value = o->if_contains("value"); value && value->is_string() &&
                                                     value->as_string().size() > 50 &&
                                                     !(templates_unknown && Templated(*value)))
            errors.push_back("customFieldsToUpdate: values are at most 50 characters");
  return errors;
}

HttpCall BuildCall(const ActionSpec& spec, json::object body) {
  HttpCall call;
  call.method = spec.method;
  std::string path = spec.path;
  for (const auto& name : PathFields(spec.path)) {
    std::string value;
    if (auto* v = body.if_contains(name)) value = Text(*v);
    body.erase(name);
    auto at = path.find("{" + name + "}");
    path.replace(at, name.size() + 2, PercentEncode(value));
  }
  if (spec.has_body()) {
    call.body = std::move(body);
  } else {
    std::string query;
    for (const auto& [key, value] : body)
      query += (query.empty() ? "?" : "&") + PercentEncode(key) + "=" + PercentEncode(Text(value));
    path += query;
  }
  call.path = std::move(path);
  return call;
}

json::object ExampleBody(const ActionSpec& spec) {
  json::object body;
  auto device = [] { return json::object{{"id", "89148000000800139708"}, {"kind", "iccid"}}; };
  auto example = [&](FieldType type) -> json::value {
    switch (type) {
      case T::kString:
        return "x";
      case T::kBool:
        return true;
      case T::kInteger:
      case T::kNumber:
        return 1;
      case T::kObject:
        return json::object{};
      case T::kArray:
        return json::array{};
      case T::kStringList:
        return json::array{"x"};
      case T::kDevices:
        return json::array{json::object{{"deviceIds", json::array{device()}}}};
      case T::kDeviceIds:
        return json::array{device()};
      case T::kDeviceId:
        return device();
      case T::kKeyValues:
        return json::array{json::object{{"key", "CustomField1"}, {"value", "x"}}};
    }
    return nullptr;
  };
  for (const auto& f : spec.fields)
    if (f.required) body[f.name] = example(f.type);
  for (const auto& group : spec.one_of) {
    bool any = false;
    for (const char* name : group) any = any || body.contains(name);
    if (any) continue;
    for (const auto& f : spec.fields)
      if (f.name == std::string_view(group.front())) body[f.name] = example(f.type);
  }
  return body;
}

}  // namespace tscb::handlers
