#pragma once
// Turns one stored callback (its service, from the URL path, and its body)
// into a normalised event (DESIGN.md section 5, spec section 4): a kind such
// as `provisioning.activate` or `sms.mo`, a normalised status, the request
// id, the account, every identifier of the device it is about (kinds
// lower-cased, ids kept as strings) and the service-specific payload.
// Tolerates what the spec marks [RECON]: missing fields, other nesting, any
// letter case in `kind`. What it cannot place is kind `unknown`, never an
// error. Pure; any thread.
#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tscb::handlers {

struct DeviceId {
  std::string id;
  std::string kind;  // lower-case: iccid, imei, mdn, msisdn, meid, esn, eid, imsi, min, ...
  bool operator==(const DeviceId&) const = default;
};

// Every identifier of one device.
using Device = std::vector<DeviceId>;

struct Event {
  std::string kind;        // provisioning.activate, nidd.delivery, unknown, ...
  std::string status;      // success, failed, queued, delivered, config_created, received, ...
  std::string raw_status;  // as ThingSpace wrote it ("" if absent)
  std::string request_id;
  std::string account;          // accountName wherever the body has one
  std::vector<Device> devices;  // usually one
  std::string error_code;       // faultResponse.faultcode
  std::string error_message;    // faultResponse.faultstring
  boost::json::object payload;  // the service-specific part of the body
  bool Failed() const { return status == "failed"; }
};

Event Classify(std::string_view service, const boost::json::object& body);

// Every event kind Classify() can produce, for documentation and tests.
const std::vector<std::string>& KnownEventKinds();

}  // namespace tscb::handlers
