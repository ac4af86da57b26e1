#pragma once
// Numbered SQL migrations (storage/migrations/NNNN_name.sql, compiled in),
// applied in order under a PostgreSQL advisory lock so that several daemons
// starting at once apply each migration exactly once. Also creates the
// inbox's monthly partitions ahead of time, under the same lock.
// Throws StorageError; a schema newer than this binary is refused.
#include <functional>
#include <pqxx/connection>
#include <span>
#include <string>
#include <vector>

namespace tscb::storage::pg {

struct Migration {
  int version;
  const char* name;
  const char* sql;
};

std::span<const Migration> Migrations();  // sorted by version
int LatestSchemaVersion();

struct SchemaState {
  int current = 0;  // 0: never migrated
  int latest = 0;   // what this binary knows
};

// Reads the schema version without changing anything.
SchemaState ReadSchemaState(pqxx::connection& conn);

struct MigrateReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<std::string> applied;  // names, in order
  int partitions_created = 0;
};

// `progress` is told about each migration as it starts.
MigrateReport Migrate(pqxx::connection& conn,
                      const std::function<void(const Migration&)>& progress = {});

// Creates missing monthly inbox partitions (takes the migration lock).
int EnsurePartitions(pqxx::connection& conn, int months_ahead = 3);

}  // namespace tscb::storage::pg
