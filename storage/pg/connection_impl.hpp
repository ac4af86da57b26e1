#pragma once
// Template part of connection.hpp.
#include <pqxx/except>
#include <string>

#include "storage/inbox.hpp"

namespace tscb::storage::pg {

template <class Fn>
auto Translate(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const pqxx::in_doubt_error& e) {
    throw StorageError(std::string(what) + ": commit outcome unknown: " + e.what(), true, true);
  } catch (const pqxx::statement_completion_unknown& e) {
    throw StorageError(std::string(what) + ": outcome unknown: " + e.what(), true, true);
  } catch (const pqxx::transaction_rollback& e) {
    // A deadlock or a serialization failure (libpqxx 6 derives these from
    // failure, not sql_error): the connection is fine.
    throw StorageError(std::string(what) + ": rolled back by the server: " + e.what(), false, false,
                       true);
  } catch (const pqxx::broken_connection& e) {
    throw StorageError(std::string(what) + ": connection lost: " + e.what(), true);
  } catch (const pqxx::sql_error& e) {
    throw StorageError(std::string(what) + ": " + e.what() + " [SQLSTATE " + e.sqlstate() + "]",
                       false);
  } catch (const pqxx::failure& e) {
    throw StorageError(std::string(what) + ": " + e.what(), true);
  }
}

}  // namespace tscb::storage::pg
