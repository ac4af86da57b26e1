#pragma once
// Retention (migration 0004): drops monthly partitions older than
// `keep_months`, with their dedup keys and finished pending requests, and
// makes sure partitions exist ahead. Used by the daemon's periodic
// maintenance and by `ts-callbackd retention [--dry-run]`.
#include <string>
#include <vector>

namespace tscb::storage::pg {

struct MaintenanceReport {
  std::vector<std::string> lines;  // what was (or would be) done
  int partitions_created = 0;
};

// Throws StorageError.
MaintenanceReport RunMaintenance(const std::string& connection_string, int keep_months,
                                 bool dry_run);

}  // namespace tscb::storage::pg
