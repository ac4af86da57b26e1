#include "storage/pg/pg_inbox_store.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <pqxx/pqxx>
#include <unordered_map>

#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {
namespace {

constexpr const char* kInsertName = "tscb_inbox_insert";
// One statement, run in autocommit: one round trip and one transaction per
// batch. The batch arrives as one JSON array (one parse on the server);
// repeats of a key inside the batch were merged by the caller ("n" counts
// them, "a" is their highest attempt). A key is claimed in inbox_keys first
// and only claimed keys get an inbox row. A key that was already stored
// before this statement is a resend: its row's delivery count and attempt go
// up (`touched`). Data-modifying CTEs always run to completion, and none sees
// the others' rows, which is exactly what keeps new rows out of `touched`.
// A key committed by another writer while this statement waited on it is
// neither claimed nor touched: still a duplicate, its counters left as they are.
constexpr const char* kInsertSql = R"sql(
WITH input AS (
    SELECT (r->>'i')::int AS ord, r->>'k' AS dedup_key, r->>'s' AS service,
           (r->>'ip')::inet AS source_ip, (r->>'a')::int AS attempt, (r->>'n')::int AS times,
           r->>'rq' AS request_id, r->>'d' AS device_id, r->>'dk' AS device_kind,
           r->'b' AS body
    FROM jsonb_array_elements($1::jsonb) AS r
), claimed AS (
    INSERT INTO tscb.inbox_keys (dedup_key, inbox_id, received_at)
    SELECT dedup_key, nextval('tscb.inbox_id_seq'), now() FROM input
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING dedup_key, inbox_id, received_at
), stored AS (
    INSERT INTO tscb.inbox (id, received_at, service, source_ip, dedup_key, request_id,
                            device_id, device_kind, attempt, deliveries, body)
    SELECT c.inbox_id, c.received_at, i.service, i.source_ip, i.dedup_key, i.request_id,
           i.device_id, i.device_kind, i.attempt, i.times, i.body
    FROM input i JOIN claimed c USING (dedup_key)
    RETURNING id
), touched AS (
    UPDATE tscb.inbox AS b
    SET deliveries = b.deliveries + i.times, attempt = greatest(b.attempt, i.attempt)
    FROM input i JOIN tscb.inbox_keys k USING (dedup_key)
    WHERE b.id = k.inbox_id AND b.received_at = k.received_at
    RETURNING i.ord, b.id
)
SELECT i.ord, c.inbox_id, t.id
FROM input i LEFT JOIN claimed c USING (dedup_key) LEFT JOIN touched t USING (ord)
)sql";

void AppendString(std::string& out, const std::string& value) {
  if (value.empty()) {
    out += "null";
  } else {
    out += boost::json::serialize(boost::json::string_view(value));
  }
}

}  // namespace

PgInboxStore::PgInboxStore(std::string connection_string)
    : connection_string_(std::move(connection_string)) {}

PgInboxStore::~PgInboxStore() = default;

pqxx::connection& PgInboxStore::Connection() {
  if (!conn_) {
    conn_ = Connect(connection_string_);
    Translate("prepare inbox statements", [&] {
      conn_->prepare(kInsertName, kInsertSql);
    });
  }
  return *conn_;
}

void PgInboxStore::ConnectNow() { Connection(); }

bool PgInboxStore::Connected() const { return conn_ && conn_->is_open(); }

std::vector<InsertOutcome> PgInboxStore::InsertBatch(std::span<const InboxRecord> records) {
  std::vector<InsertOutcome> outcomes(records.size());
  if (records.empty()) return outcomes;

  // Merge repeats of a key: the first occurrence is sent, with how many
  // times it came and its highest attempt; the repeats are duplicates of it.
  std::unordered_map<std::string_view, std::size_t> first_of_key;
  std::vector<std::size_t> first(records.size());
  std::vector<int> times(records.size(), 0), attempt(records.size(), 0);
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto [it, fresh] = first_of_key.emplace(records[i].dedup_key, i);
    first[i] = it->second;
    ++times[it->second];
    attempt[it->second] = std::max(attempt[it->second], records[i].attempt);
  }
  std::string batch = "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (first[i] != i) continue;
    const InboxRecord& r = records[i];
    if (batch.size() > 1) batch += ',';
    batch += "{\"i\":" + std::to_string(i) + ",\"a\":" + std::to_string(attempt[i]) +
             ",\"n\":" + std::to_string(times[i]) + ",\"k\":";
    AppendString(batch, r.dedup_key);
    batch += ",\"s\":";
    AppendString(batch, r.service);
    batch += ",\"ip\":";
    AppendString(batch, r.source_ip);
    batch += ",\"rq\":";
    AppendString(batch, r.request_id);
    batch += ",\"d\":";
    AppendString(batch, r.device_id);
    batch += ",\"dk\":";
    AppendString(batch, r.device_kind);
    batch += ",\"b\":";
    batch += r.body_json;
    batch += '}';
  }
  batch += ']';

  try {
    Translate("store callbacks", [&] {
      pqxx::nontransaction tx(Connection());  // autocommit: the statement is the transaction
      for (const auto& row : tx.exec_prepared(kInsertName, batch)) {
        auto index = row[0].as<std::size_t>();
        if (!row[1].is_null()) {
          outcomes[index] = {InsertStatus::kStored, row[1].as<std::int64_t>()};
        } else {
          outcomes[index] = {InsertStatus::kDuplicate,
                             row[2].is_null() ? 0 : row[2].as<std::int64_t>()};
        }
      }
    });
  } catch (const StorageError& e) {
    if (e.ConnectionLost()) conn_.reset();
    throw;
  }
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (first[i] == i) continue;
    outcomes[i] = {InsertStatus::kDuplicate, outcomes[first[i]].inbox_id};
  }
  return outcomes;
}

}  // namespace tscb::storage::pg
