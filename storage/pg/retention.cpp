#include "storage/pg/retention.hpp"

#include <pqxx/pqxx>

#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"

namespace tscb::storage::pg {

MaintenanceReport RunMaintenance(const std::string& connection_string, int keep_months,
                                 bool dry_run) {
  auto conn = Connect(connection_string);
  MaintenanceReport report;
  if (!dry_run) report.partitions_created = EnsurePartitions(*conn);
  Translate("apply retention", [&] {
    pqxx::work tx(*conn);
    for (const char* sql :
         {"SELECT tscb.apply_retention($1, $2)", "SELECT tscb.apply_action_retention($1, $2)"})
      for (const auto& row : tx.exec_params(sql, keep_months, dry_run))
        report.lines.push_back(row[0].as<std::string>());
    tx.commit();
  });
  return report;
}

}  // namespace tscb::storage::pg
