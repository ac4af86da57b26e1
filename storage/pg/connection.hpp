#pragma once
// Opening a PostgreSQL connection, with libpqxx errors turned into
// StorageError at this boundary. A connection belongs to one thread.
#include <memory>
#include <pqxx/connection>
#include <string>

namespace tscb::storage::pg {

// Throws StorageError(connection_lost = true) when the server cannot be reached.
std::unique_ptr<pqxx::connection> Connect(const std::string& connection_string);

// Runs `fn` and rethrows any libpqxx error as StorageError.
template <class Fn>
auto Translate(const char* what, Fn&& fn) -> decltype(fn());

}  // namespace tscb::storage::pg

#include "storage/pg/connection_impl.hpp"
