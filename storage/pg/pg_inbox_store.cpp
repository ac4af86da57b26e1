#include "storage/pg/pg_inbox_store.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string_view.hpp>
#include <pqxx/pqxx>
#include <string_view>
#include <unordered_map>

#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {
namespace {

constexpr const char* kInsertName = "tscb_inbox_insert";
constexpr const char* kInsertAnnounceName = "tscb_inbox_insert_announce";
// The batch arrives as one JSON array: one parse on the server, one
// statement, however many callbacks. A dedup key is claimed in inbox_keys
// first; only claimed keys get an inbox row. Data-modifying CTEs always run
// to completion, whether or not the final SELECT reads them. The answer is
// the claimed keys with their new ids (keys in a batch are distinct); the
// others were stored before.
constexpr std::string_view kInsertWith = R"sql(
WITH input AS (
    SELECT r->>'k' COLLATE "C" AS dedup_key, r->>'s' AS service,
           (r->>'ip')::inet AS source_ip, (r->>'a')::int AS attempt,
           r->>'rq' AS request_id, r->>'d' AS device_id, r->>'dk' AS device_kind,
           r->'b' AS body, to_timestamp((r->>'t')::float8 / 1e6) AS received_at
    FROM jsonb_array_elements($1::jsonb) AS r
), claimed AS (
    INSERT INTO tscb.inbox_keys (dedup_key, inbox_id, received_at)
    SELECT dedup_key, nextval('tscb.inbox_id_seq'), coalesce(received_at, now()) FROM input
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING dedup_key, inbox_id, received_at
), stored AS (
    INSERT INTO tscb.inbox (id, received_at, service, source_ip, dedup_key, request_id,
                            device_id, device_kind, attempt, body)
    SELECT c.inbox_id, c.received_at, i.service, i.source_ip, i.dedup_key, i.request_id,
           i.device_id, i.device_kind, i.attempt, i.body
    FROM input i JOIN claimed c USING (dedup_key)
    RETURNING id
)
)sql";
constexpr std::string_view kInsertSelect = "SELECT dedup_key, inbox_id FROM claimed";
// The same, waking the processors at commit (Announce::kNow). The sub-select
// is an init plan: it runs once, and only when a key was claimed (a batch of
// resends stores nothing new). A NOTIFY holds a database-wide lock from the
// commit until its WAL flush, which is why not every batch carries one.
constexpr std::string_view kInsertAnnounceSelect =
    "SELECT dedup_key, inbox_id, (SELECT pg_notify('tscb_inbox', '')) FROM claimed";
constexpr const char* kAnnounceSql = "SELECT pg_notify('tscb_inbox', '')";

constexpr const char* kTouchName = "tscb_inbox_touch";
// A resend: keep the highest attempt number and count the delivery.
constexpr const char* kTouchSql = R"sql(
UPDATE tscb.inbox AS b
SET deliveries = b.deliveries + d.times, attempt = greatest(b.attempt, d.attempt)
FROM (SELECT r->>'k' COLLATE "C" AS dedup_key, max((r->>'a')::int) AS attempt,
             count(*)::int AS times
      FROM jsonb_array_elements($1::jsonb) AS r GROUP BY 1) AS d
JOIN tscb.inbox_keys k USING (dedup_key)
WHERE b.id = k.inbox_id AND b.received_at = k.received_at
RETURNING d.dedup_key, b.id
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
      conn_->prepare(kInsertName, std::string(kInsertWith).append(kInsertSelect));
      conn_->prepare(kInsertAnnounceName, std::string(kInsertWith).append(kInsertAnnounceSelect));
      conn_->prepare(kTouchName, kTouchSql);
    });
  }
  return *conn_;
}

void PgInboxStore::ConnectNow() { Connection(); }

bool PgInboxStore::Connected() const { return conn_ && conn_->is_open(); }

template <class Fn>
void PgInboxStore::OnConnection(const char* what, Fn&& fn) {
  try {
    Translate(what, std::forward<Fn>(fn));
  } catch (const StorageError& e) {
    if (e.ConnectionLost()) conn_.reset();  // the next call reconnects
    throw;
  }
}

void PgInboxStore::AnnounceStored() {
  OnConnection("announce stored callbacks", [&] {
    pqxx::nontransaction tx(Connection());
    tx.exec(kAnnounceSql);
  });
}

std::vector<InsertOutcome> PgInboxStore::InsertBatch(std::span<const InboxRecord> records,
                                                     Announce announce) {
  std::vector<InsertOutcome> outcomes(records.size());
  if (records.empty()) return outcomes;

  // A key repeated inside the batch is sent once; the repeats are duplicates.
  std::unordered_map<std::string_view, std::size_t> first_of_key;
  std::vector<std::size_t> repeat_of(records.size(), SIZE_MAX);
  std::string batch = "[";
  for (std::size_t i = 0; i < records.size(); ++i) {
    const InboxRecord& r = records[i];
    auto [it, fresh] = first_of_key.emplace(r.dedup_key, i);
    if (!fresh) {
      repeat_of[i] = it->second;
      continue;
    }
    if (batch.size() > 1) batch += ',';
    batch += "{\"a\":" + std::to_string(r.attempt);
    if (r.received_us != 0) batch += ",\"t\":" + std::to_string(r.received_us);
    for (auto [name, value] : {std::pair{",\"k\":", &r.dedup_key},
                               {",\"s\":", &r.service},
                               {",\"ip\":", &r.source_ip},
                               {",\"rq\":", &r.request_id},
                               {",\"d\":", &r.device_id},
                               {",\"dk\":", &r.device_kind}}) {
      batch += name;
      AppendString(batch, *value);
    }
    batch += ",\"b\":";
    batch += r.body_json;
    batch += '}';
  }
  batch += ']';

  OnConnection("store callbacks", [&] {
    // Autocommit: the insert is one statement, hence one transaction, and
    // costs one round trip instead of three (BEGIN, statement, COMMIT).
    pqxx::nontransaction tx(Connection());
    pqxx::result rows =
        tx.exec_prepared(announce == Announce::kNow ? kInsertAnnounceName : kInsertName, batch);
    std::string touch = "[";
    auto add_touch = [&](const InboxRecord& r) {
      if (touch.size() > 1) touch += ',';
      touch += "{\"a\":" + std::to_string(r.attempt) + ",\"k\":";
      AppendString(touch, r.dedup_key);
      touch += '}';
    };
    std::vector<bool> claimed(records.size(), false);
    for (const auto& row : rows) {
      auto it = first_of_key.find(std::string_view(row[0].c_str(), row[0].size()));
      if (it == first_of_key.end())
        throw StorageError("the database answered a key not sent", false);
      claimed[it->second] = true;
      outcomes[it->second] = {InsertStatus::kStored, row[1].as<std::int64_t>()};
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (claimed[i]) continue;
      if (repeat_of[i] == SIZE_MAX) outcomes[i].status = InsertStatus::kDuplicate;
      add_touch(records[i]);
    }
    touch += ']';
    // Resends only: count the delivery on the stored row. The callbacks are
    // already durable, so this bookkeeping runs after the insert committed;
    // if it fails the batch is answered 503 and the resend is a duplicate.
    if (touch.size() > 2) {
      std::unordered_map<std::string, std::int64_t> existing;
      for (const auto& row : tx.exec_prepared(kTouchName, touch))
        existing.emplace(row[0].as<std::string>(), row[1].as<std::int64_t>());
      for (std::size_t i = 0; i < records.size(); ++i) {
        if (outcomes[i].status != InsertStatus::kDuplicate) continue;
        auto it = existing.find(records[i].dedup_key);
        if (it != existing.end()) outcomes[i].inbox_id = it->second;
      }
    }
  });
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (repeat_of[i] == SIZE_MAX) continue;
    const InsertOutcome& first = outcomes[repeat_of[i]];
    outcomes[i] = {InsertStatus::kDuplicate, first.inbox_id};
  }
  return outcomes;
}

}  // namespace tscb::storage::pg
