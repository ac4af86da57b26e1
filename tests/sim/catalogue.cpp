#include "tests/sim/catalogue.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

#include "handlers/json_fields.hpp"

namespace tscb::sim {
namespace json = boost::json;

const std::vector<Endpoint>& Endpoints() {
  static const std::vector<Endpoint> table = {
      // Session management
      {"POST", "/session/login", Kind::kSpecial, "", ""},
      {"POST", "/session/logout", Kind::kSpecial, "", ""},
      {"PUT", "/session/password/actions/reset", Kind::kSync, "", "passwordReset"},
      // eUICC device endpoints
      {"POST", "/devices/profile/actions/activate_enable", Kind::kAsync, "DeviceProfileService",
       "activateEnable"},
      {"POST", "/devices/profile/actions/activate", Kind::kAsync, "DeviceProfileService",
       "activate"},
      {"POST", "/devices/profile/actions/deactivate", Kind::kAsync, "DeviceProfileService",
       "deactivate"},
      {"POST", "/devices/profile/actions/setfallbackattribute", Kind::kAsync,
       "DeviceProfileService", "setFallbackAttribute"},
      {"POST", "/v2/devices/actions/list", Kind::kSync, "", "globalDeviceList"},
      {"POST", "/v2/devices/history/actions/list", Kind::kSync, "", "provisioningHistory"},
      {"GET", "/v2/accounts/{account}/requests/{requestId}/status", Kind::kSpecial, "", ""},
      // Device service provisioning and management
      {"POST", "/devices/actions/activate", Kind::kAsync, "CarrierService", "activate"},
      {"POST", "/devices/actions/suspend", Kind::kAsync, "CarrierService", "suspend"},
      {"POST", "/devices/actions/restore", Kind::kAsync, "CarrierService", "restore"},
      {"POST", "/devices/actions/deactivate", Kind::kAsync, "CarrierService", "deactivate"},
      {"PUT", "/devices/actions/gotostate", Kind::kAsync, "StateService", "goToState"},
      {"GET", "/devices/requests/status", Kind::kAsync, "DeviceService", "orderStatus"},
      {"POST", "/devices/requests/status", Kind::kAsync, "DeviceService", "orderStatus"},
      {"PUT", "/devices/actions/move", Kind::kAsync, "CarrierService", "move"},
      {"POST", "/devices/profile/actions/download_enable", Kind::kAsync, "DeviceProfileService",
       "downloadEnable"},
      {"POST", "/devices/profile/actions/enable", Kind::kAsync, "DeviceProfileService", "enable"},
      {"POST", "/devices/profile/actions/disable", Kind::kAsync, "DeviceProfileService", "disable"},
      {"POST", "/devices/profile/actions/delete", Kind::kAsync, "DeviceProfileService", "delete"},
      {"POST", "/devices/actions/eidDeviceSwap", Kind::kAsync, "CarrierService", "eidDeviceSwap"},
      {"POST", "/devices/availability/actions/list", Kind::kAsync, "DeviceService", "availability"},
      {"POST", "/devices/actions/add", Kind::kAsync, "CarrierService", "add"},
      {"POST", "/devices/actions/delete", Kind::kAsync, "CarrierService", "delete"},
      {"POST", "/devices/actions/upload", Kind::kAsync, "DeviceService", "upload"},
      {"POST", "/devices/actions/uploadactivate", Kind::kAsync, "CarrierService", "uploadActivate"},
      {"POST", "/devices/actions/list", Kind::kSync, "", "deviceList"},
      {"POST", "/devices/diagnostics/actions/list", Kind::kSync, "", "diagnostics"},
      {"POST", "/devices/extendeddiagnostics/actions/list", Kind::kSync, "", "extendedDiagnostics"},
      {"POST", "/devices/suspension/status", Kind::kAsync, "DeviceSuspensionStatus",
       "suspensionStatus"},
      {"PUT", "/devices/{serviceType}/actions/deviceId", Kind::kAsync, "CarrierService",
       "changeIdentifier"},
      {"PUT", "/devices/actions/customFields", Kind::kAsync, "CarrierService", "customFields"},
      {"PUT", "/devices/costCenter", Kind::kAsync, "CarrierService", "costCenter"},
      {"PUT", "/devices/actions/contactinfo", Kind::kAsync, "CarrierService", "contactInfo"},
      {"PUT", "/devices/actions/contactInfo", Kind::kAsync, "CarrierService", "contactInfo"},
      {"PUT", "/devices/actions/plan", Kind::kAsync, "CarrierService", "changeServicePlan"},
      {"POST", "/devices/prl/actions/list", Kind::kAsync, "DevicePRLInformation", "prl"},
      {"POST", "/devices/actions/list/imeiiccidmismatch", Kind::kSync, "", "mismatch"},
      {"GET", "/accounts/{account}/requests/{requestId}/status", Kind::kSpecial, "", ""},
      {"GET", "/accounts/{account}/stateandservices", Kind::kSync, "", "stateAndServices"},
      // Connectivity and service history
      {"POST", "/devices/usage/actions/list", Kind::kSync, "", "usage"},
      {"POST", "/devices/usage/actions/list/aggregate", Kind::kAsync, "DeviceUsage",
       "aggregateUsage"},
      {"POST", "/devices/history/actions/list", Kind::kSync, "", "history"},
      {"POST", "/devices/connections/actions/listHistory", Kind::kSync, "", "connectionHistory"},
      // Device reachability monitoring
      {"POST", "/diagnostics/basic/devicereachability", Kind::kAsync, "DiagnosticsService",
       "reachability"},
      {"DELETE", "/diagnostics/basic/devicereachability", Kind::kAsync, "DiagnosticsService",
       "stopMonitor"},
      {"POST", "/diagnostics/basic/devicereachability/monitors", Kind::kAsync, "DiagnosticsService",
       "monitors"},
      {"POST", "/diagnostics/basic/devicereachability/status", Kind::kAsync, "DiagnosticsService",
       "reachability"},
      // Device groups
      {"POST", "/groups", Kind::kSync, "", "success"},
      {"PUT", "/groups/{account}/name/{group}", Kind::kSync, "", "success"},
      {"GET", "/groups/{account}", Kind::kSync, "", "groups"},
      {"GET", "/groups/{account}/name/{group}", Kind::kSync, "", "group"},
      {"DELETE", "/groups/{account}/name/{group}", Kind::kSync, "", "success"},
      // Service plans
      {"GET", "/plans/{account}", Kind::kSync, "", "plans"},
      // Segmentation
      {"POST", "/devices/actions/usagesegmentationlabels", Kind::kSync, "", "success"},
      {"DELETE", "/devices/actions/usagesegmentationlabels", Kind::kSync, "", "success"},
      {"POST", "/devices/usage/actions/billedusage", Kind::kSync, "", "billedUsage"},
      {"POST", "/devices/usage/actions/billedusage/list", Kind::kSync, "", "billedUsage"},
      {"POST", "/devices/sms/history/actions/list", Kind::kSync, "", "smsHistory"},
      // SMS
      {"POST", "/sms", Kind::kAsync, "EnhancedConnectivityService", "sms"},
      {"GET", "/sms/{account}/history", Kind::kSync, "", "smsQueue"},
      {"PUT", "/sms/{account}/startCallbacks", Kind::kSync, "", "success"},
      // Callbacks
      {"POST", "/callbacks/{account}", Kind::kSpecial, "", ""},
      {"GET", "/callbacks/{account}", Kind::kSpecial, "", ""},
      {"DELETE", "/callbacks/{account}/name/{service}", Kind::kSpecial, "", ""},
      {"POST", "/triggers", Kind::kSync, "", "trigger"},
      // Accounts and leads
      {"GET", "/accounts/{account}", Kind::kSync, "", "account"},
      {"GET", "/leads/{account}", Kind::kSync, "", "leads"},
      {"POST", "/accounts/{account}/sku", Kind::kSync, "", "sku"},
      // NIDD
      {"POST", "/devices/nidd/message", Kind::kAsync, "NiddService", "nidd"},
  };
  return table;
}

const Endpoint* Match(std::string_view method, std::string_view path,
                      std::map<std::string, std::string>& params) {
  auto split = [](std::string_view s) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= s.size()) {
      auto slash = s.find('/', start);
      if (slash == std::string_view::npos) slash = s.size();
      if (slash > start) parts.push_back(s.substr(start, slash - start));
      start = slash + 1;
    }
    return parts;
  };
  auto want = split(path);
  for (const auto& e : Endpoints()) {
    if (method != e.method) continue;
    auto have = split(e.pattern);
    if (have.size() != want.size()) continue;
    std::map<std::string, std::string> found;
    bool ok = true;
    for (std::size_t i = 0; i < have.size() && ok; ++i) {
      if (have[i].front() == '{')
        found[std::string(have[i].substr(1, have[i].size() - 2))] = std::string(want[i]);
      else
        ok = have[i] == want[i];
    }
    if (ok) {
      params = std::move(found);
      return &e;
    }
  }
  return nullptr;
}

std::string NewUuid() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::uniform_int_distribution<unsigned> hex(0, 15);
  std::string out;
  for (int i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      out += '-';
    } else if (i == 14) {
      out += '4';
    } else if (i == 19) {
      out += "89ab"[hex(rng) % 4];
    } else {
      out += "0123456789abcdef"[hex(rng)];
    }
  }
  return out;
}

namespace {

std::string Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

using handlers::AsciiLower;
using handlers::StringField;

bool DeviceFails(const Device& device) {
  for (const auto& id : device) {
    if (!id.is_object()) continue;
    std::string value = StringField(id.as_object(), "id");
    if (value.size() >= 4 && value.compare(value.size() - 4, 4, "9999") == 0) return true;
  }
  return false;
}

json::object Base(const std::string& request_id, const Device& device) {
  return json::object{{"requestId", request_id}, {"deviceIds", device}};
}

json::object Fault(const std::string& service, const std::string& request_id,
                   const Device& device) {
  auto body = Base(request_id, device);
  body["faultResponse"] = json::object{
      {"faultcode", service + ".REQUEST_FAILED.DeviceNotFound"},
      {"faultstring", "Device not found in the account (simulated: id ends in 9999)."}};
  body["status"] = "Failed";
  return body;
}

json::object CarrierResult(const std::string& action, const json::object& request) {
  json::object r;
  if (action == "activate" || action == "uploadActivate") {
    r["deviceIds"] = json::array{json::object{{"id", "15555550100"}, {"kind", "msisdn"}},
                                 json::object{{"id", "5555550100"}, {"kind", "mdn"}}};
    r["ipAddress"] = "10.0.0.17";
    r["servicePlan"] = StringField(request, "servicePlan");
    r["state"] = "active";
  } else if (action == "suspend") {
    r["autoResumeDate"] = "2026-12-31T00:00:00Z";
  } else if (action == "changeServicePlan") {
    r["servicePlan"] = StringField(request, "servicePlan");
  } else if (action == "customFields") {
    if (auto* f = request.if_contains("customFieldsToUpdate")) r["customFields"] = *f;
  } else if (action == "changeIdentifier") {
    r["deviceIds"] = json::array{json::object{{"id", "990013907835574"}, {"kind", "imei"}}};
  }
  return r;
}

}  // namespace

std::vector<Device> DevicesOf(const json::object& request) {
  std::vector<Device> out;
  if (auto* devices = request.if_contains("devices"); devices && devices->is_array()) {
    for (const auto& d : devices->as_array()) {
      if (!d.is_object()) continue;
      if (auto* ids = d.as_object().if_contains("deviceIds"); ids && ids->is_array())
        out.push_back(ids->as_array());
    }
  }
  if (auto* ids = request.if_contains("deviceIds"); out.empty() && ids && ids->is_array()) {
    for (const auto& id : ids->as_array()) out.push_back(json::array{id});
  }
  if (auto* device = request.if_contains("device"); out.empty() && device && device->is_object())
    out.push_back(json::array{*device});
  if (out.empty())  // a filter (groupName, servicePlan, ...) selected the devices
    out.push_back(json::array{json::object{{"id", "89148000000800139708"}, {"kind", "iccid"}}});
  return out;
}

std::vector<PlannedCallback> CallbacksFor(const Endpoint& endpoint, const std::string& request_id,
                                          const std::string& account, const json::object& request) {
  std::vector<PlannedCallback> out;
  const std::string service = endpoint.service;
  const std::string action = endpoint.action;
  bool nbiot = AsciiLower(StringField(request, "servicePlan")).find("nbiot") != std::string::npos;
  for (const auto& device : DevicesOf(request)) {
    if (DeviceFails(device)) {
      out.push_back({service, Fault(service, request_id, device), true});
      continue;
    }
    json::object body = Base(request_id, device);
    if (service == "CarrierService") {
      body["deviceResponse"] = json::object{{action + "Response", CarrierResult(action, request)}};
      body["status"] = "Success";
      out.push_back({service, std::move(body)});
      if (nbiot && (action == "activate" || action == "restore" || action == "changeServicePlan")) {
        json::object nidd{
            {"requestId", request_id},
            {"niddResponse",
             json::object{{"niddConfigResponse",
                           json::object{{"accountName", account}, {"deviceIds", device}}}}},
            {"status", "ConfigCreated"}};
        out.push_back({"NiddService", std::move(nidd)});
      }
    } else if (service == "EnhancedConnectivityService") {  // POST /sms
      body["smsDeliveryResponse"] = json::object{{"status", "Sent"}, {"timestamp", Now()}};
      body["status"] = "Success";
      out.push_back({service, body});
      json::object confirm = Base(request_id, device);
      confirm["smsDeliveryResponse"] = json::object{{"status", "Delivered"}, {"timestamp", Now()}};
      confirm["status"] = "Success";
      out.push_back({"SMSDeliveryConfirmation", std::move(confirm)});
    } else if (service == "NiddService") {  // POST devices/nidd/message: Queued, then Delivered
      for (const char* status : {"Queued", "Delivered"}) {
        json::object mt{{"accountName", account}, {"deviceIds", device}};
        if (std::string(status) == "Queued") {
          mt["reason"] = "Buffered, device not reachable";
          mt["firstAttemptDeliveryTime"] = Now();
        } else {
          mt["acknowledgeTime"] = Now();
        }
        json::object nidd = Base(request_id, device);
        nidd["niddResponse"] = json::object{{"niddMTDeliveryResponse", std::move(mt)}};
        nidd["status"] = status;
        out.push_back({service, std::move(nidd)});
      }
    } else if (service == "DiagnosticsService") {
      body["reachabilityResponse"] =
          json::object{{"monitorId", NewUuid()},
                       {"requestType", StringField(request, "requestType").empty()
                                           ? std::string("REACHABLE_FOR_DATA")
                                           : StringField(request, "requestType")},
                       {"reachabilityStatus", "REACHABLE"},
                       {"timestamp", Now()}};
      body["status"] = "Success";
      out.push_back({service, std::move(body)});
    } else {
      // DeviceService, StateService, DeviceProfileService, DeviceUsage,
      // DevicePRLInformation, DeviceSuspensionStatus: a result object named
      // after the action [RECON shapes].
      json::object result{{"accountName", account}};
      if (service == "DeviceUsage") {
        result["bytesUsed"] = 123456789;
        result["smsUsed"] = 12;
      } else if (service == "DevicePRLInformation") {
        result["prlVersion"] = "51234";
      } else if (service == "DeviceSuspensionStatus") {
        result["suspendedDaysUsed"] = 3;
        result["suspendedDaysRemaining"] = 87;
      }
      body[action + "Response"] = std::move(result);
      body["status"] = "Success";
      out.push_back({service, std::move(body)});
    }
  }
  return out;
}

json::value SyncAnswer(const Endpoint& endpoint, const std::map<std::string, std::string>& params,
                       const json::object& request) {
  const std::string action = endpoint.action;
  auto param = [&](const char* name) {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  };
  json::array devices;
  for (const auto& d : DevicesOf(request))
    devices.push_back(json::object{
        {"deviceIds", d},
        {"accountName", StringField(request, "accountName")},
        {"connected", true},
        {"carrierInformations", json::array{json::object{{"carrierName", "Verizon Wireless"},
                                                         {"servicePlan", "M2M5GB"},
                                                         {"state", "active"}}}}});
  if (action == "deviceList" || action == "globalDeviceList" || action == "mismatch")
    return json::object{{"devices", devices}, {"hasMoreData", false}};
  if (action == "diagnostics" || action == "extendedDiagnostics")
    return json::object{{"devices", devices}, {"status", "Active"}};
  if (action == "usage")
    return json::object{
        {"usageHistory",
         json::array{json::object{{"bytesUsed", 2048}, {"smsUsed", 1}, {"timestamp", Now()}}}},
        {"hasMoreData", false}};
  if (action == "history" || action == "provisioningHistory")
    return json::object{
        {"deviceProvisioningHistory",
         json::array{json::object{
             {"eventType", "Activate"}, {"status", "Success"}, {"occurredAt", Now()}}}},
        {"hasMoreData", false}};
  if (action == "connectionHistory")
    return json::object{{"connectionHistory",
                         json::array{json::object{{"occurredAt", Now()},
                                                  {"connectionEventAttributes", json::array{}}}}},
                        {"hasMoreData", false}};
  if (action == "plans")
    return json::array{
        json::object{{"name", "M2M5GB"}, {"code", "M2M5GB"}, {"sizeKb", 5242880}},
        json::object{{"name", "M2M NB-IoT"}, {"code", "M2MNBIOT"}, {"sizeKb", 1024}}};
  if (action == "groups")
    return json::array{json::object{{"name", "4G West"}, {"description", "west coast fleet"}}};
  if (action == "group")
    return json::object{{"name", param("group")}, {"devices", devices}, {"hasMoreData", false}};
  if (action == "account")
    return json::object{{"accountName", param("account")},
                        {"accountNumber", param("account")},
                        {"isProvisioningAllowed", true},
                        {"carriers", json::array{"Verizon Wireless"}}};
  if (action == "leads") return json::object{{"leads", json::array{}}, {"hasMoreData", false}};
  if (action == "sku") return json::object{{"deviceSkuInfo", json::array{}}};
  if (action == "stateAndServices")
    return json::object{{"accountName", param("account")},
                        {"stateAndServices", json::array{json::object{{"stateName", "Active"},
                                                                      {"serviceName", "Data"}}}}};
  if (action == "smsQueue")
    return json::object{{"messages", json::array{}}, {"hasMoreData", false}};
  if (action == "smsHistory")
    return json::object{{"smsHistory", json::array{}}, {"hasMoreData", false}};
  if (action == "billedUsage") return json::object{{"usage", json::array{}}, {"txid", NewUuid()}};
  if (action == "trigger") return json::object{{"triggerId", NewUuid()}};
  if (action == "passwordReset") return json::object{{"newPassword", "simulated-" + NewUuid()}};
  return json::object{{"success", true}};
}

bool MakeUnsolicited(const std::string& type, const std::string& account, int n,
                     PlannedCallback& out) {
  char mdn[16];
  std::snprintf(mdn, sizeof mdn, "555555%04d", n % 10000);
  Device device{json::object{{"id", mdn}, {"kind", "mdn"}}};
  json::object body{{"requestId", NewUuid()}, {"deviceIds", device}};
  if (type == "ExternalProvisioningChanges") {
    body["externalProvisioningChange"] = json::object{
        {"source", "MyBusiness"},
        {"change", "Suspend"},
        {"deviceInfo", json::object{{"accountName", account},
                                    {"deviceIds", device},
                                    {"carrierInformations",
                                     json::array{json::object{{"carrierName", "Verizon Wireless"},
                                                              {"servicePlan", "M2M5GB"},
                                                              {"state", "suspend"}}}}}}};
  } else if (type == "PromoChanges") {
    body["promoChange"] =
        json::object{{"change", "PromoCode Dropped: XYZ123"}, {"changeDate", Now().substr(0, 10)}};
  } else if (type == "ResumeTrackingNotification") {
    body["comment"] = "Device will be auto resumed on - 3/15/2027 12:00:00 AM";
  } else if (type == "AlertService") {
    body["triggerId"] = NewUuid();
    body["triggerName"] = "data over 5 MB";
    body["accountName"] = account;
    body["usage"] = json::object{{"dataUsedBytes", 6 * 1024 * 1024}, {"threshold", "5MB"}};
  } else if (type == "EnhancedConnectivityService") {
    body["smsMessage"] =
        json::object{{"message", "T=21.5;BATT=" + std::to_string(n % 100)}, {"timestamp", Now()}};
  } else if (type == "NiddService") {
    body["niddResponse"] = json::object{
        {"niddMONotificationResponse", json::object{{"accountName", account},
                                                    {"deviceIds", device},
                                                    {"message", "SGVsbG8gZnJvbSB0aGUgZGV2aWNl"},
                                                    {"messageTime", Now()}}}};
    body["status"] = "Received";
  } else {
    return false;
  }
  out = {type, std::move(body)};
  return true;
}

}  // namespace tscb::sim
