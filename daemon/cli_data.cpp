#include "daemon/cli_data.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "daemon/cli_output.hpp"
#include "daemon/operator_api.hpp"
#include "daemon/processor.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/pg_processing_store.hpp"
#include "storage/pg/reports.hpp"
#include "storage/pg/retention.hpp"

namespace tscb::daemon {
namespace {

std::string Option(const CommandLine& cl, const std::string& name) {
  auto it = cl.options.find(name);
  return it == cl.options.end() ? std::string() : it->second;
}

std::unique_ptr<storage::pg::PgProcessingStore> Store(const config::Config& config) {
  return std::make_unique<storage::pg::PgProcessingStore>(config.database.ConnectionString());
}

// Rows processed here (replay) plan their rules' actions like the daemon's
// processor would; the daemon's dispatcher sends them.
Processor MakeProcessor(const config::Config& config) {
  static RuleBook rules(config.rules.file);
  static bool loaded = rules.Reload();
  (void)loaded;
  return Processor([&config] { return Store(config); },
                   ProcessorOptions{0, config.processing.batch_max, config.processing.poll_interval,
                                    config.actions.max_attempts, config.account},
                   nullptr, &rules);
}

int Pending(const CommandLine& cl, const config::Config& config) {
  if (cl.operands.size() != 2 || (cl.operands[0] != "add" && cl.operands[0] != "show")) {
    std::cerr << "usage: ts-callbackd pending add JSON|-   (the body of POST /v1/requests)\n"
                 "       ts-callbackd pending show REQUEST_ID\n";
    return 2;
  }
  auto format = ParseFormat(Option(cl, "format"), "pending");
  if (!format) return 2;
  auto print = [&](const std::string& request_json) {
    boost::system::error_code ec;
    auto v = boost::json::parse(request_json, ec);
    if (!ec && v.is_object())
      PrintRecord(std::cout, *format, v.as_object());
    else
      std::cout << request_json << '\n';
  };
  auto store = Store(config);
  if (cl.operands[0] == "show") {
    auto batch = store->Begin();
    auto found = batch->RequestJson(cl.operands[1]);
    if (!found) {
      std::cerr << "pending show: no request " << cl.operands[1] << '\n';
      return 1;
    }
    print(*found);
    return 0;
  }
  std::string body = cl.operands[1];
  if (body == "-") body.assign(std::istreambuf_iterator<char>(std::cin), {});
  storage::PendingRequestRecord record;
  record.origin = "cli";
  std::string error = ParsePendingRequest(body, config, record);
  if (!error.empty()) {
    std::cerr << "pending add: " << error << '\n';
    return 2;
  }
  Processor processor = MakeProcessor(config);
  if (!processor.RegisterRequest(*store, record)) {
    std::cerr << "pending add: request " << record.request_id << " is already registered\n";
    return 1;
  }
  auto batch = store->Begin();
  print(batch->RequestJson(record.request_id).value_or("{}"));
  return 0;
}

int Replay(const CommandLine& cl, const config::Config& config) {
  auto format = ParseFormat(Option(cl, "format"), "replay");
  if (!format) return 2;
  std::vector<std::int64_t> ids;
  auto store = Store(config);
  std::string id_list = Option(cl, "ids");
  std::string state = Option(cl, "state");
  std::string since = Option(cl, "since"), until = Option(cl, "until");
  if (id_list.empty() && state.empty() && since.empty() && until.empty()) {
    std::cerr << "usage: ts-callbackd replay (--ids 1,2,3 | [--state pending|processed|failed] "
                 "[--since TIME] [--until TIME]) [--dry-run]\n";
    return 2;
  }
  if (!id_list.empty()) {
    std::stringstream in(id_list);
    std::string part;
    while (std::getline(in, part, ',')) {
      try {
        ids.push_back(std::stoll(part));
      } catch (...) {
        std::cerr << "replay: --ids takes numbers separated by commas\n";
        return 2;
      }
    }
  } else {
    auto batch = store->Begin();
    ids = batch->SelectInboxIds(state, since, until, 10'000'000);
  }
  // Progress on stderr; the result on stdout in the chosen format.
  std::cerr << "replay: " << ids.size() << " inbox row(s) selected\n";
  boost::json::object summary{{"selected", ids.size()}, {"dry_run", cl.dry_run}};
  if (cl.dry_run) {
    std::cerr << "dry run: nothing was processed\n";
    PrintRecord(std::cout, *format, summary);
    return 0;
  }
  Processor processor = MakeProcessor(config);
  ProcessResult total;
  const std::size_t chunk = std::max<std::size_t>(1, config.processing.batch_max);
  for (std::size_t i = 0; i < ids.size(); i += chunk) {
    std::vector<std::int64_t> part(ids.begin() + i, ids.begin() + std::min(ids.size(), i + chunk));
    auto r = processor.ProcessIds(*store, part);
    total.rows += r.rows;
    total.events += r.events;
    total.replayed += r.replayed;
    total.failed += r.failed;
    std::cerr << "replay: " << std::min(ids.size(), i + chunk) << "/" << ids.size() << " rows\n"
              << std::flush;
  }
  std::cerr << "replay: " << total.rows << " row(s): " << total.events << " new event(s), "
            << total.replayed << " already had theirs (nothing repeated), " << total.failed
            << " failed\n";
  summary["rows"] = total.rows;
  summary["new_events"] = total.events;
  summary["already_processed"] = total.replayed;
  summary["failed"] = total.failed;
  PrintRecord(std::cout, *format, summary);
  return total.failed ? 1 : 0;
}

int Report(const CommandLine& cl, const config::Config& config) {
  const auto& views = storage::pg::ReportViews();
  std::string names;
  for (const auto& v : views) names += std::string(names.empty() ? "" : ", ") + v.name;
  if (cl.operands.size() != 1) {
    std::cerr << "usage: ts-callbackd report NAME [--since TIME] [--until TIME] "
                 "[--format table|csv|json]\nreports: "
              << names << '\n';
    return 2;
  }
  const storage::pg::ReportView* view = nullptr;
  for (const auto& v : views)
    if (cl.operands[0] == v.name) view = &v;
  if (!view) {
    std::cerr << "report: unknown report '" << cl.operands[0] << "'; reports: " << names << '\n';
    return 2;
  }
  auto format = ParseFormat(Option(cl, "format"), "report");
  if (!format) return 2;
  auto t = storage::pg::ReadReport(config.database.ConnectionString(), *view, Option(cl, "since"),
                                   Option(cl, "until"), 1'000'000);
  boost::json::array rows;
  for (const auto& row : t.rows) {
    boost::json::object o;
    for (std::size_t i = 0; i < row.size(); ++i)
      o[t.columns[i]] = row[i] ? boost::json::value(*row[i]) : boost::json::value(nullptr);
    rows.push_back(std::move(o));
  }
  PrintRows(std::cout, *format, rows, t.columns);
  return 0;
}

int Retention(const CommandLine& cl, const config::Config& config) {
  if (!cl.operands.empty()) {
    std::cerr << "usage: ts-callbackd retention [--dry-run]\n";
    return 2;
  }
  auto format = ParseFormat(Option(cl, "format"), "retention");
  if (!format) return 2;
  std::cerr << "retention: keeping " << config.retention.months << " month(s)"
            << (cl.dry_run ? " (dry run: nothing is changed)" : "") << '\n';
  auto report = storage::pg::RunMaintenance(config.database.ConnectionString(),
                                            config.retention.months, cl.dry_run);
  boost::json::array rows;
  if (!cl.dry_run)
    rows.push_back(boost::json::object{
        {"retention", std::to_string(report.partitions_created) + " partition(s) created ahead"}});
  for (const auto& line : report.lines) rows.push_back(boost::json::object{{"retention", line}});
  PrintRows(std::cout, *format, rows, {"retention"});
  return 0;
}

}  // namespace

bool IsDataCommand(const std::string& command) {
  return command == "pending" || command == "replay" || command == "report" ||
         command == "retention";
}

int RunDataCommand(const CommandLine& cl, const config::Config& config) {
  try {
    if (cl.command == "pending") return Pending(cl, config);
    if (cl.command == "replay") return Replay(cl, config);
    if (cl.command == "report") return Report(cl, config);
    if (cl.command == "retention") return Retention(cl, config);
  } catch (const storage::StorageError& e) {
    std::cerr << cl.command << ": database " << config.database.Describe() << ": " << e.what()
              << '\n';
    return 1;
  }
  return 2;
}

}  // namespace tscb::daemon
