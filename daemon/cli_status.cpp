#include "daemon/cli_status.hpp"

#include <signal.h>

#include <atomic>
#include <boost/beast/core/flat_buffer.hpp>
#include <iostream>
#include <thread>

#include "daemon/cli_output.hpp"
#include "daemon/net.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/pg_processing_store.hpp"

namespace tscb::daemon {
namespace json = boost::json;
namespace {

std::string Opt(const CommandLine& cl, const std::string& name) {
  auto it = cl.options.find(name);
  return it == cl.options.end() ? std::string() : it->second;
}

// GET http://{admin}/readyz with a short deadline. The admin listener is the
// daemon's own view: readiness, ThingSpace login, registration per service.
json::object DaemonView(const config::AdminConfig& admin) {
  std::string host = admin.address == "0.0.0.0" ? "127.0.0.1"
                     : admin.address == "::"    ? "::1"
                                                : admin.address;
  json::object out{{"admin", host + ":" + std::to_string(admin.port)}, {"reachable", false}};
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(3));
    stream.connect(tcp::endpoint(asio::ip::make_address(host), admin.port));
    http::request<http::empty_body> req{http::verb::get, "/readyz", 11};
    req.set(http::field::host, host);
    http::write(stream, req);
    beast::flat_buffer buffer;
    Response res;
    http::read(stream, buffer, res);
    out["reachable"] = true;
    boost::system::error_code ec;
    auto body = json::parse(res.body(), ec);
    if (!ec && body.is_object())
      for (const auto& [k, v] : body.as_object()) out[k] = v;
  } catch (const std::exception& e) {
    out["error"] = std::string("admin listener not answering: ") + e.what();
    out["ready"] = false;
  }
  return out;
}

json::object Counts(const std::map<std::string, std::int64_t>& counts,
                    std::initializer_list<const char*> states) {
  json::object o;
  for (const char* s : states) {
    auto it = counts.find(s);
    o[s] = it == counts.end() ? 0 : it->second;
  }
  return o;
}

int Status(const CommandLine& cl, const config::Config& config) {
  auto format = ParseFormat(Opt(cl, "format"), "status");
  if (!format) return 2;
  if (!cl.operands.empty()) {
    std::cerr << "usage: ts-callbackd status [--format table|csv|json]\n";
    return 2;
  }
  json::object status;
  json::object daemon = DaemonView(config.admin);
  json::value registration = nullptr;
  if (auto* reg = daemon.if_contains("registration")) {
    registration = *reg;
    daemon.erase("registration");
  }
  bool ready = daemon["ready"].is_bool() && daemon["ready"].as_bool();
  status["daemon"] = std::move(daemon);
  // A table shows one line per service: "state  url  (checked at)".
  if (*format == Format::kTable && registration.is_object()) {
    json::object lines;
    for (const auto& [service, r] : registration.as_object()) {
      if (!r.is_object()) continue;
      const auto& o = r.as_object();
      auto field = [&](const char* k) { return o.contains(k) ? CellText(o.at(k)) : std::string(); };
      std::string line = field("state") + "  " + field("url");
      if (field("detail") != field("state") && !field("detail").empty())
        line += "  (" + field("detail") + ")";
      lines[service] = line;
    }
    registration = std::move(lines);
  }
  if (!registration.is_null()) status["registration"] = std::move(registration);
  json::array errors;
  try {
    storage::pg::PgProcessingStore store(config.database.ConnectionString());
    auto batch = store.Begin();
    auto s = batch->Stats(true);
    status["inbox"] = json::object{
        {"backlog", s.inbox_pending},
        {"oldest_pending_seconds", static_cast<std::int64_t>(s.oldest_pending_seconds)},
        {"failed", s.inbox_failed},
        {"last_callback_at", s.last_callback_at}};
    status["requests"] =
        Counts(s.requests, {"pending", "succeeded", "failed", "partial", "timed_out"});
    status["actions"] = Counts(s.actions, {"queued", "in_flight", "succeeded", "failed", "dead",
                                           "needs_review", "cancelled"});
    json::array paused;
    for (const auto& [kind, name] : batch->Paused())
      paused.push_back(json::string(kind + " " + name));
    status["paused"] = std::move(paused);
    for (const auto& e : batch->RecentErrors(5))
      errors.push_back(
          json::object{{"at", e.at}, {"what", e.what}, {"state", e.state}, {"message", e.message}});
  } catch (const storage::StorageError& e) {
    status["database"] = std::string("unreachable: ") + e.what();
    ready = false;
  }
  if (*format == Format::kTable) {
    PrintRecord(std::cout, *format, status);
    std::cout << "\nlast errors\n";
    PrintRows(std::cout, *format, errors, {"at", "what", "state", "message"});
  } else {
    status["last_errors"] = std::move(errors);
    PrintRecord(std::cout, *format, status);
  }
  return ready ? 0 : 1;
}

json::object EventJson(const storage::EventRow& e) {
  json::object o{{"id", e.id},
                 {"received_at", e.received_at},
                 {"service", e.service},
                 {"kind", e.kind},
                 {"status", e.status}};
  boost::system::error_code ec;
  auto devices = json::parse(e.device_ids_json, ec);
  std::string device;
  if (!ec && devices.is_array() && !devices.as_array().empty()) {
    const auto& first = devices.as_array()[0];
    if (first.is_array() && !first.as_array().empty() && first.as_array()[0].is_object()) {
      const auto& id = first.as_array()[0].as_object();
      if (id.contains("kind") && id.contains("id"))
        device = CellText(id.at("kind")) + ":" + CellText(id.at("id"));
    }
    if (devices.as_array().size() > 1)
      device += " (+" + std::to_string(devices.as_array().size() - 1) + ")";
  }
  o["device"] = device;
  o["request_id"] = e.request_id;
  o["error"] = e.error_code.empty() ? e.error_message : e.error_code + " " + e.error_message;
  return o;
}

std::atomic<bool> g_stop_tail{false};

// events tail: the newest --lines events, then every new one as it is
// stored, until Ctrl-C (or --count events were printed).
int EventsTail(const CommandLine& cl, const config::Config& config) {
  auto format = ParseFormat(Opt(cl, "format"), "events tail");
  if (!format) return 2;
  if (cl.operands.size() != 1 || cl.operands[0] != "tail") {
    std::cerr << "usage: ts-callbackd events tail [--kind K|prefix.*] [--device ID] "
                 "[--lines N] [--count N] [--format table|csv|json]\n";
    return 2;
  }
  long lines = 10, count = -1;
  try {
    if (!Opt(cl, "lines").empty()) lines = std::stol(Opt(cl, "lines"));
    if (!Opt(cl, "count").empty()) count = std::stol(Opt(cl, "count"));
  } catch (...) {
    lines = -1;
  }
  if (lines < 0 || (!Opt(cl, "count").empty() && count <= 0)) {
    std::cerr << "events tail: --lines takes a number >= 0 and --count a number > 0\n";
    return 2;
  }
  const std::vector<std::string> columns = {"id",     "received_at", "service",    "kind",
                                            "status", "device",      "request_id", "error"};
  // Streamed: no column widths known ahead, so the table is fixed-width.
  auto print = [&](const json::object& o) {
    if (*format == Format::kJson) {
      std::cout << json::serialize(o) << '\n';
    } else if (*format == Format::kCsv) {
      json::array one{o};
      std::ostringstream text;
      PrintRows(text, Format::kCsv, one, columns);
      std::string s = text.str();
      std::cout << s.substr(s.find('\n') + 1);  // the header once, above
    } else {
      char line[640];
      std::snprintf(line, sizeof line, "%-8s %-29s %-28s %-28s %-10s %-30s %s%s%s",
                    CellText(o.at("id")).c_str(), CellText(o.at("received_at")).c_str(),
                    CellText(o.at("service")).c_str(), CellText(o.at("kind")).c_str(),
                    CellText(o.at("status")).c_str(), CellText(o.at("device")).c_str(),
                    CellText(o.at("request_id")).c_str(),
                    o.at("error").as_string().empty() ? "" : "  ", CellText(o.at("error")).c_str());
      std::cout << line << '\n';
    }
    std::cout << std::flush;
  };
  if (*format == Format::kCsv) {
    for (std::size_t i = 0; i < columns.size(); ++i) std::cout << (i ? "," : "") << columns[i];
    std::cout << '\n';
  } else if (*format == Format::kTable) {
    std::printf("%-8s %-29s %-28s %-28s %-10s %-30s %s\n", "id", "received_at", "service", "kind",
                "status", "device", "request_id");
    std::fflush(stdout);
  }
  signal(SIGINT, [](int) { g_stop_tail = true; });
  signal(SIGTERM, [](int) { g_stop_tail = true; });
  storage::pg::PgProcessingStore store(config.database.ConnectionString());
  std::int64_t last = -1;
  long printed = 0;
  std::size_t first_limit = static_cast<std::size_t>(lines);
  if (first_limit == 0) {  // only new events: start after the newest
    auto newest = store.Begin()->TailEvents(-1, "", "", 1);
    last = newest.empty() ? 0 : newest.back().id;
  }
  while (!g_stop_tail) {
    auto rows = store.Begin()->TailEvents(last, Opt(cl, "kind"), Opt(cl, "device"),
                                          last < 0 ? first_limit : 500);
    if (last < 0 && rows.empty()) last = 0;
    for (const auto& e : rows) {
      print(EventJson(e));
      last = e.id;
      if (count > 0 && ++printed >= count) return 0;
    }
    if (last < 0) last = 0;
    if (rows.size() < 500) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return 0;
}

}  // namespace

bool IsStatusCommand(const std::string& command) {
  return command == "status" || command == "events";
}

int RunStatusCommand(const CommandLine& cl, const config::Config& config) {
  try {
    if (cl.command == "status") return Status(cl, config);
    return EventsTail(cl, config);
  } catch (const storage::StorageError& e) {
    std::cerr << cl.command << ": database " << config.database.Describe() << ": " << e.what()
              << '\n';
    return 1;
  }
}

}  // namespace tscb::daemon
