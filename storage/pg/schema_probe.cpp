#include "storage/pg/schema_probe.hpp"

#include <pqxx/connection>

#include "storage/pg/connection.hpp"
#include "storage/pg/migrator.hpp"

namespace tscb::storage::pg {

SchemaProbe::SchemaProbe(std::string connection_string)
    : connection_string_(std::move(connection_string)) {}

SchemaProbe::~SchemaProbe() = default;

ProbeResult SchemaProbe::Check() {
  try {
    if (!conn_) conn_ = Connect(connection_string_);
    return {ReadSchemaState(*conn_).current, ""};
  } catch (const StorageError& e) {
    if (e.ConnectionLost()) conn_.reset();
    return {0, e.what()};
  }
}

}  // namespace tscb::storage::pg
