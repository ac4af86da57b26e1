#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {

std::unique_ptr<pqxx::connection> Connect(const std::string& connection_string) {
  return Translate("connect",
                   [&] { return std::make_unique<pqxx::connection>(connection_string); });
}

}  // namespace tscb::storage::pg
