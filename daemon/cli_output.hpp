#pragma once
// One output layer for the operator commands: each command builds its
// result as JSON (a list of flat records, or one record) and this prints it
// as an aligned table, CSV or JSON (`--format table|csv|json`). Progress and
// notes go to stderr, so a csv or json stdout stays machine-readable.
#include <boost/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace tscb::daemon {

enum class Format { kTable, kCsv, kJson };

// "" = table. A bad value prints "COMMAND: --format is table, csv or json"
// to stderr and returns nullopt (a usage error, exit 2).
std::optional<Format> ParseFormat(const std::string& text, const std::string& command);

// Rows of records. `columns` fixes the columns and their order (a record's
// other fields are left out of table and csv); empty = the fields of the
// records, in first-seen order. Nested values are shown as JSON text.
void PrintRows(std::ostream& out, Format format, const boost::json::array& rows,
               const std::vector<std::string>& columns = {});

// One record: a two-column field/value table, `field,value` CSV lines, or
// the object as JSON. Nested objects are flattened with dotted names.
void PrintRecord(std::ostream& out, Format format, const boost::json::object& record);

// A cell's text: strings as they are, null as "", the rest as JSON.
std::string CellText(const boost::json::value& v);

}  // namespace tscb::daemon
