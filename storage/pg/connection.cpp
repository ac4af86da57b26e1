#include "storage/pg/connection.hpp"

namespace tscb::storage::pg {

std::unique_ptr<pqxx::connection> Connect(const std::string& connection_string) {
  return Translate("connect", [&] {
    auto conn = std::make_unique<pqxx::connection>(connection_string);
    // Our statements are short and repeated; PostgreSQL's JIT compiles the
    // batch statements (their row estimates pass jit_above_cost) on every
    // execution and spent a third of the server's CPU doing so.
    conn->set_variable("jit", "off");
    return conn;
  });
}

}  // namespace tscb::storage::pg
