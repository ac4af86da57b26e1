// tscb-process-bench: processing throughput with a backlog (issue:
// processing). Fills the inbox of a migrated database with N realistic
// callbacks (CarrierService activations with varying devices, a share of them
// answering registered pending requests, plus device SMS and NIDD reports),
// then drains it with the daemon's Processor on W worker threads, each with
// its own connection, and prints JSON: rows, events, seconds, rows_per_s.
// With a rules file, the rules run too and plan their outbox rows in the
// same transactions (nothing is sent): classify + correlate + rules + outbox.
//   tscb-process-bench "host=... dbname=..." [rows] [workers] [batch] [rules.yaml]
#include <spdlog/spdlog.h>
#include <chrono>
#include <iostream>
#include <pqxx/pqxx>
#include <thread>

#include "daemon/processor.hpp"
#include "daemon/rule_book.hpp"
#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"
#include "storage/pg/pg_processing_store.hpp"

int main(int argc, char** argv) {
  using namespace tscb;
  // As the daemon's processors plan them.
  constexpr auto kPlanning = storage::pg::PgProcessingStore::Planning::kPrepared;
  if (argc < 2) {
    std::cerr << "usage: tscb-process-bench CONNINFO [rows=200000] [workers=2] [batch=500] "
                 "[rules.yaml]\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::warn);  // one line per finished request is noise here
  std::string conninfo = argv[1];
  long rows = argc > 2 ? std::stol(argv[2]) : 200'000;
  int workers = argc > 3 ? std::stoi(argv[3]) : 2;
  std::size_t batch = argc > 4 ? std::stoul(argv[4]) : 500;
  daemon::RuleBook rules(argc > 5 ? argv[5] : "");
  if (!rules.Reload()) return 2;

  auto conn = storage::pg::Connect(conninfo);
  storage::pg::Migrate(*conn);
  auto fill_start = std::chrono::steady_clock::now();
  {
    pqxx::work tx(*conn);
    tx.exec(
        "TRUNCATE tscb.inbox, tscb.inbox_keys, tscb.events, tscb.event_devices, "
        "tscb.pending_requests, tscb.actions");
    // One pending request per 100 activations, 100 devices each.
    tx.exec_params(R"sql(
      INSERT INTO tscb.pending_requests (request_id, account, action, devices, origin,
                                         deadline_at, expected_callbacks)
      SELECT 'req-' || r, '0000123456-00001', 'activate',
             (SELECT jsonb_agg(jsonb_build_object('ids', jsonb_build_array(jsonb_build_object(
                        'id', (89148000000000000000::numeric + r * 100 + d)::text, 'kind', 'iccid')),
                      'state', 'pending', 'result', false, 'nidd', false, 'error', ''))
              FROM generate_series(0, 99) d),
             'bench', now() + interval '1 hour', 100
      FROM generate_series(0, ($1 * 8 / 10) / 100 - 1) r)sql",
                   rows);
    // Rows share their arrival time 16 at a time, as the daemon's group
    // commits store them (its time for every row of the batch).
    tx.exec_params(R"sql(
      INSERT INTO tscb.inbox (id, received_at, service, source_ip, dedup_key, request_id, body)
      SELECT nextval('tscb.inbox_id_seq'), now() - (($1 - i) / 16) * interval '1 millisecond',
             CASE WHEN i % 10 < 8 THEN 'CarrierService'
                  WHEN i % 10 = 8 THEN 'EnhancedConnectivityService' ELSE 'NiddService' END,
             '3.87.163.45', md5(i::text), 'req-' || (i / 100),
             CASE WHEN i % 10 < 8 THEN jsonb_build_object(
                    'requestId', 'req-' || (((i / 10) * 8 + i % 10) / 100),
                    'deviceIds', jsonb_build_array(
                        jsonb_build_object('id', (89148000000000000000::numeric + ((i / 10) * 8 + i % 10))::text, 'kind', 'iccid'),
                        jsonb_build_object('id', (990013907800000 + i)::text, 'kind', 'IMEI')),
                    'deviceResponse', jsonb_build_object('activateResponse', jsonb_build_object(
                        'deviceIds', jsonb_build_array(jsonb_build_object('id', (5555000000 + i)::text, 'kind', 'mdn')),
                        'ipAddress', '10.0.0.17', 'servicePlan', 'M2M5GB', 'state', 'active')),
                    'status', 'Success', 'callbackCount', 1, 'maxCallbackThreshold', 4)
                  WHEN i % 10 = 8 THEN jsonb_build_object(
                    'requestId', md5('sms' || i),
                    'deviceIds', jsonb_build_array(jsonb_build_object('id', (5555000000 + i)::text, 'kind', 'mdn')),
                    'smsMessage', jsonb_build_object('message', 'T=21.5;BATT=87', 'timestamp', '2026-11-20T12:29:49-08:00'),
                    'callbackCount', 1, 'maxCallbackThreshold', 4)
                  ELSE jsonb_build_object(
                    'requestId', md5('nidd' || i),
                    'deviceIds', jsonb_build_array(jsonb_build_object('id', (490154200000000 + i)::text, 'kind', 'IMEI')),
                    'niddResponse', jsonb_build_object('niddMTDeliveryResponse', jsonb_build_object(
                        'accountName', '0000123456-00001', 'acknowledgeTime', '2026-11-20T16:39:57-08:00')),
                    'status', 'Delivered', 'callbackCount', 1, 'maxCallbackThreshold', 4)
             END
      FROM generate_series(0, $1 - 1) i)sql",
                   rows);
    tx.commit();
  }
  {
    pqxx::nontransaction tx(*conn);
    tx.exec("VACUUM ANALYZE tscb.inbox");
  }
  double fill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
  std::cerr << "backlog of " << rows << " inbox rows ready in " << fill_s << " s; draining with "
            << workers << " worker(s), batches of " << batch << std::endl;

  daemon::Processor processor(
      [&] { return std::make_unique<storage::pg::PgProcessingStore>(conninfo, kPlanning); },
      daemon::ProcessorOptions{workers, batch, std::chrono::milliseconds(1000), 5,
                               "0000123456-00001"},
      nullptr, &rules);
  std::atomic<long> done{0}, events{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      storage::pg::PgProcessingStore store(conninfo, kPlanning);
      while (true) {
        auto r = processor.ProcessPending(store);
        if (r.rows == 0) return;
        done += static_cast<long>(r.rows);
        events += static_cast<long>(r.events);
      }
    });
  }
  std::thread progress([&] {
    while (done < rows) {
      std::this_thread::sleep_for(std::chrono::seconds(5));
      if (done < rows) std::cerr << "  " << done << "/" << rows << " rows" << std::endl;
    }
  });
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (done < rows) done = rows;  // lets the progress thread end
  progress.join();
  pqxx::nontransaction tx(*conn);
  long succeeded =
      tx.exec1("SELECT count(*) FROM tscb.pending_requests WHERE state = 'succeeded'")[0]
          .as<long>();
  long left = tx.exec1("SELECT count(*) FROM tscb.inbox WHERE state <> 'processed'")[0].as<long>();
  long actions = tx.exec1("SELECT count(*) FROM tscb.actions")[0].as<long>();
  std::cout << "{\"rows\": " << rows << ", \"events\": " << events << ", \"workers\": " << workers
            << ", \"batch\": " << batch << ", \"seconds\": " << secs
            << ", \"rows_per_s\": " << static_cast<long>(rows / secs)
            << ", \"rules\": " << rules.Current()->Size() << ", \"actions\": " << actions
            << ", \"requests_succeeded\": " << succeeded << ", \"left_unprocessed\": " << left
            << "}" << std::endl;
  return left == 0 ? 0 : 1;
}
