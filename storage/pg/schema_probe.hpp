#pragma once
// Asks the database, on a connection of its own, which schema version it is
// at. Never throws: an error comes back as text. One thread at a time.
#include <memory>
#include <pqxx/connection>
#include <string>

namespace tscb::storage::pg {

struct ProbeResult {
  int current = 0;
  std::string error;  // "" when the database answered
};

class SchemaProbe {
 public:
  explicit SchemaProbe(std::string connection_string);
  ~SchemaProbe();
  ProbeResult Check();

 private:
  std::string connection_string_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace tscb::storage::pg
