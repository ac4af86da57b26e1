#pragma once
// Reads the reporting views (schema `report`, migration 0003) for
// `ts-callbackd report`. Each view has one time column that --since and
// --until filter on.
#include <optional>
#include <string>
#include <vector>

namespace tscb::storage::pg {

struct ReportView {
  const char* name;
  const char* time_column;
  const char* order_by;
};
const std::vector<ReportView>& ReportViews();

struct ReportTable {
  std::vector<std::string> columns;
  std::vector<std::vector<std::optional<std::string>>> rows;  // nullopt = NULL
};

// Throws StorageError; `since`/`until` are timestamptz text or "".
ReportTable ReadReport(const std::string& connection_string, const ReportView& view,
                       const std::string& since, const std::string& until, long limit);

}  // namespace tscb::storage::pg
