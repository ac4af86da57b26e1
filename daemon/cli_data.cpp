#include "daemon/cli_data.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

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
  auto store = Store(config);
  if (cl.operands[0] == "show") {
    auto batch = store->Begin();
    auto found = batch->RequestJson(cl.operands[1]);
    if (!found) {
      std::cerr << "pending show: no request " << cl.operands[1] << '\n';
      return 1;
    }
    std::cout << *found << '\n';
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
  std::cout << batch->RequestJson(record.request_id).value_or("{}") << '\n';
  return 0;
}

int Replay(const CommandLine& cl, const config::Config& config) {
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
  std::cout << "replay: " << ids.size() << " inbox row(s) selected\n";
  if (cl.dry_run) {
    std::cout << "dry run: nothing was processed\n";
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
    std::cout << "replay: " << std::min(ids.size(), i + chunk) << "/" << ids.size() << " rows\n"
              << std::flush;
  }
  std::cout << "replay: " << total.rows << " row(s): " << total.events << " new event(s), "
            << total.replayed << " already had theirs (nothing repeated), " << total.failed
            << " failed\n";
  return total.failed ? 1 : 0;
}

std::string CsvCell(const std::optional<std::string>& v) {
  if (!v) return "";
  if (v->find_first_of(",\"\n\r") == std::string::npos) return *v;
  std::string out = "\"";
  for (char c : *v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void PrintTable(const storage::pg::ReportTable& t) {
  std::vector<std::size_t> width;
  for (const auto& c : t.columns) width.push_back(c.size());
  auto shown = [](const std::optional<std::string>& v) {
    std::string s = v ? *v : "";
    for (char& c : s)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
  };
  for (const auto& row : t.rows)
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], shown(row[i]).size());
  auto line = [&](auto cell) {
    for (std::size_t i = 0; i < width.size(); ++i) {
      std::string s = cell(i);
      std::cout << (i ? " | " : "") << s << std::string(width[i] - s.size(), ' ');
    }
    std::cout << '\n';
  };
  line([&](std::size_t i) { return t.columns[i]; });
  line([&](std::size_t i) { return std::string(width[i], '-'); });
  for (const auto& row : t.rows) line([&](std::size_t i) { return shown(row[i]); });
  std::cout << "(" << t.rows.size() << " row" << (t.rows.size() == 1 ? "" : "s") << ")\n";
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
  std::string format = Option(cl, "format");
  if (format.empty()) format = "table";
  if (format != "table" && format != "csv" && format != "json") {
    std::cerr << "report: --format is table, csv or json\n";
    return 2;
  }
  auto t = storage::pg::ReadReport(config.database.ConnectionString(), *view, Option(cl, "since"),
                                   Option(cl, "until"), 1'000'000);
  if (format == "table") {
    PrintTable(t);
  } else if (format == "csv") {
    for (std::size_t i = 0; i < t.columns.size(); ++i) std::cout << (i ? "," : "") << t.columns[i];
    std::cout << '\n';
    for (const auto& row : t.rows) {
      for (std::size_t i = 0; i < row.size(); ++i) std::cout << (i ? "," : "") << CsvCell(row[i]);
      std::cout << '\n';
    }
  } else {
    boost::json::array out;
    for (const auto& row : t.rows) {
      boost::json::object o;
      for (std::size_t i = 0; i < row.size(); ++i)
        o[t.columns[i]] = row[i] ? boost::json::value(*row[i]) : boost::json::value(nullptr);
      out.push_back(std::move(o));
    }
    std::cout << boost::json::serialize(out) << '\n';
  }
  return 0;
}

int Retention(const CommandLine& cl, const config::Config& config) {
  if (!cl.operands.empty()) {
    std::cerr << "usage: ts-callbackd retention [--dry-run]\n";
    return 2;
  }
  std::cout << "retention: keeping " << config.retention.months << " month(s)"
            << (cl.dry_run ? " (dry run: nothing is changed)" : "") << '\n';
  auto report = storage::pg::RunMaintenance(config.database.ConnectionString(),
                                            config.retention.months, cl.dry_run);
  if (!cl.dry_run)
    std::cout << "retention: " << report.partitions_created << " partition(s) created ahead\n";
  for (const auto& line : report.lines) std::cout << "retention: " << line << '\n';
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
