#include "daemon/cli_data.hpp"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "daemon/operator_api.hpp"
#include "daemon/processor.hpp"
#include "storage/inbox.hpp"
#include "storage/pg/pg_processing_store.hpp"

namespace tscb::daemon {
namespace {

std::string Option(const CommandLine& cl, const std::string& name) {
  auto it = cl.options.find(name);
  return it == cl.options.end() ? std::string() : it->second;
}

std::unique_ptr<storage::pg::PgProcessingStore> Store(const config::Config& config) {
  return std::make_unique<storage::pg::PgProcessingStore>(config.database.ConnectionString());
}

Processor MakeProcessor(const config::Config& config) {
  return Processor(
      [&config] { return Store(config); },
      ProcessorOptions{0, config.processing.batch_max, config.processing.poll_interval}, nullptr);
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

}  // namespace

bool IsDataCommand(const std::string& command) {
  return command == "pending" || command == "replay";
}

int RunDataCommand(const CommandLine& cl, const config::Config& config) {
  try {
    if (cl.command == "pending") return Pending(cl, config);
    if (cl.command == "replay") return Replay(cl, config);
  } catch (const storage::StorageError& e) {
    std::cerr << cl.command << ": database " << config.database.Describe() << ": " << e.what()
              << '\n';
    return 1;
  }
  return 2;
}

}  // namespace tscb::daemon
