#include "storage/pg/migrator.hpp"

#include <pqxx/nontransaction>
#include <pqxx/pqxx>

#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {
namespace {

// "tscb" in ASCII, then 1: the advisory lock every migrator takes.
constexpr long long kMigrationLockKey = 0x7473636200000001LL;

// Two statements: a query naming a missing table fails at parse time.
constexpr const char* kHasMigrationsTable =
    "SELECT to_regclass('tscb.schema_migrations') IS NOT NULL";
constexpr const char* kReadVersion = "SELECT coalesce(max(version), 0) FROM tscb.schema_migrations";

constexpr const char* kBootstrap =
    "CREATE SCHEMA IF NOT EXISTS tscb;"
    "CREATE TABLE IF NOT EXISTS tscb.schema_migrations ("
    "  version integer PRIMARY KEY,"
    "  name text NOT NULL,"
    "  applied_at timestamptz NOT NULL DEFAULT now())";

constexpr const char* kRecord =
    "INSERT INTO tscb.schema_migrations (version, name) VALUES ($1, $2)";

int ReadVersion(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  if (!tx.exec1(kHasMigrationsTable)[0].as<bool>()) return 0;
  return tx.exec1(kReadVersion)[0].as<int>();
}

// Holds the session-level advisory lock for its lifetime.
class MigrationLock {
 public:
  explicit MigrationLock(pqxx::connection& conn) : conn_(conn) {
    pqxx::nontransaction tx(conn_);
    tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
  }
  ~MigrationLock() {
    try {
      pqxx::nontransaction tx(conn_);
      tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
    } catch (...) {
      // The lock dies with the session anyway.
    }
  }
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

 private:
  pqxx::connection& conn_;
};

int EnsurePartitionsLocked(pqxx::connection& conn, int months_ahead) {
  pqxx::work tx(conn);
  int created =
      tx.exec_params1("SELECT tscb.ensure_inbox_partitions($1)", months_ahead)[0].as<int>();
  tx.commit();
  return created;
}

}  // namespace

int LatestSchemaVersion() {
  auto all = Migrations();
  return all.empty() ? 0 : all.back().version;
}

SchemaState ReadSchemaState(pqxx::connection& conn) {
  return Translate("read schema version", [&] {
    return SchemaState{ReadVersion(conn), LatestSchemaVersion()};
  });
}

MigrateReport Migrate(pqxx::connection& conn,
                      const std::function<void(const Migration&)>& progress) {
  return Translate("migrate", [&] {
    MigrationLock lock(conn);
    {
      pqxx::work tx(conn);
      tx.exec(kBootstrap);
      tx.commit();
    }
    MigrateReport report;
    report.from_version = ReadVersion(conn);
    int latest = LatestSchemaVersion();
    if (report.from_version > latest) {
      throw StorageError("the database schema is at version " +
                             std::to_string(report.from_version) +
                             ", newer than this binary knows (" + std::to_string(latest) +
                             "); refusing to run against it",
                         false);
    }
    for (const Migration& m : Migrations()) {
      if (m.version <= report.from_version) continue;
      if (progress) progress(m);
      pqxx::work tx(conn);
      tx.exec(m.sql);
      tx.exec_params(kRecord, m.version, std::string(m.name));
      tx.commit();
      report.applied.emplace_back(m.name);
    }
    report.to_version = ReadVersion(conn);
    report.partitions_created = EnsurePartitionsLocked(conn, 3);
    return report;
  });
}

int EnsurePartitions(pqxx::connection& conn, int months_ahead) {
  return Translate("create inbox partitions", [&] {
    MigrationLock lock(conn);
    return EnsurePartitionsLocked(conn, months_ahead);
  });
}

}  // namespace tscb::storage::pg
