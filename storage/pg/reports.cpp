#include "storage/pg/reports.hpp"

#include <pqxx/pqxx>

#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {

const std::vector<ReportView>& ReportViews() {
  static const std::vector<ReportView> views = {
      {"callbacks_daily", "day", "day, service"},
      {"provisioning_latency", "submitted_at", "submitted_at, request_id"},
      {"device_timeline", "at", "device_kind, device_id, at, event_id"},
      {"failed_actions", "at", "at, action_id"},
      {"action_chains", "created_at", "chain_id, depth, action_id"},
      {"sms", "at", "at"},
      {"usage_alerts", "at", "at"},
      {"pending_overdue", "deadline_at", "deadline_at, request_id"},
  };
  return views;
}

ReportTable ReadReport(const std::string& connection_string, const ReportView& view,
                       const std::string& since, const std::string& until, long limit) {
  auto conn = Connect(connection_string);
  return Translate("read report", [&] {
    pqxx::read_transaction tx(*conn);
    // The view and column names come from the fixed list above, never from input.
    std::string sql = std::string("SELECT * FROM report.") + view.name + " WHERE ($1 = '' OR " +
                      view.time_column + " >= $1::timestamptz) AND ($2 = '' OR " +
                      view.time_column + " < $2::timestamptz) ORDER BY " + view.order_by +
                      " LIMIT $3";
    pqxx::result result = tx.exec_params(sql, since, until, limit);
    ReportTable table;
    for (pqxx::row::size_type c = 0; c < result.columns(); ++c)
      table.columns.emplace_back(result.column_name(c));
    for (const auto& row : result) {
      std::vector<std::optional<std::string>> cells;
      for (const auto& field : row)
        cells.push_back(field.is_null() ? std::nullopt
                                        : std::optional<std::string>(field.as<std::string>()));
      table.rows.push_back(std::move(cells));
    }
    return table;
  });
}

}  // namespace tscb::storage::pg
