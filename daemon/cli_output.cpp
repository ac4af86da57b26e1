#include "daemon/cli_output.hpp"

#include <iostream>

namespace tscb::daemon {
namespace json = boost::json;
namespace {

std::string CsvCell(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A table cell on one line; in a table of rows, 60 characters at most.
std::string Shown(std::string s, bool shorten) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return shorten && s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

void PrintGrid(std::ostream& out, Format format, const std::vector<std::string>& columns,
               const std::vector<std::vector<std::string>>& rows, bool count_line) {
  if (format == Format::kCsv) {
    for (std::size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << CsvCell(columns[i]);
    out << '\n';
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << CsvCell(row[i]);
      out << '\n';
    }
    return;
  }
  std::vector<std::size_t> width;
  for (const auto& c : columns) width.push_back(c.size());
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], Shown(row[i], count_line).size());
  auto line = [&](auto cell) {
    std::string text;
    for (std::size_t i = 0; i < width.size(); ++i) {
      std::string s = cell(i);
      text += (i ? " | " : "") + s + std::string(width[i] - s.size(), ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out << text << '\n';
  };
  line([&](std::size_t i) { return columns[i]; });
  line([&](std::size_t i) { return std::string(width[i], '-'); });
  for (const auto& row : rows) line([&](std::size_t i) { return Shown(row[i], count_line); });
  if (count_line) out << "(" << rows.size() << " row" << (rows.size() == 1 ? "" : "s") << ")\n";
}

void Flatten(const std::string& prefix, const json::object& o,
             std::vector<std::vector<std::string>>& rows) {
  for (const auto& [key, value] : o) {
    std::string name = prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
    if (value.is_object() && !value.as_object().empty())
      Flatten(name, value.as_object(), rows);
    else
      rows.push_back({name, CellText(value)});
  }
}

}  // namespace

std::optional<Format> ParseFormat(const std::string& text, const std::string& command) {
  if (text.empty() || text == "table") return Format::kTable;
  if (text == "csv") return Format::kCsv;
  if (text == "json") return Format::kJson;
  std::cerr << command << ": --format is table, csv or json\n";
  return std::nullopt;
}

std::string CellText(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_null()) return "";
  return json::serialize(v);
}

void PrintRows(std::ostream& out, Format format, const json::array& rows,
               const std::vector<std::string>& columns) {
  if (format == Format::kJson) {
    out << json::serialize(rows) << '\n';
    return;
  }
  std::vector<std::string> cols = columns;
  if (cols.empty())
    for (const auto& r : rows)
      if (r.is_object())
        for (const auto& [key, value] : r.as_object())
          if (std::find(cols.begin(), cols.end(), std::string(key)) == cols.end())
            cols.emplace_back(key);
  std::vector<std::vector<std::string>> grid;
  for (const auto& r : rows) {
    std::vector<std::string> row;
    for (const auto& c : cols) {
      const json::value* v = r.is_object() ? r.as_object().if_contains(c) : nullptr;
      row.push_back(v ? CellText(*v) : std::string());
    }
    grid.push_back(std::move(row));
  }
  PrintGrid(out, format, cols, grid, true);
}

void PrintRecord(std::ostream& out, Format format, const json::object& record) {
  if (format == Format::kJson) {
    out << json::serialize(record) << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows;
  Flatten("", record, rows);
  PrintGrid(out, format, {"field", "value"}, rows, false);
}

}  // namespace tscb::daemon
