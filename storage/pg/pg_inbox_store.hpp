#pragma once
// InboxStore on PostgreSQL. Owns one connection (opened lazily, dropped and
// reopened after a connection failure), so one instance per writer thread.
// A batch is one statement and one commit, whatever its size.
#include <memory>
#include <pqxx/connection>
#include <string>

#include "storage/inbox.hpp"

namespace tscb::storage::pg {

class PgInboxStore final : public InboxStore {
 public:
  explicit PgInboxStore(std::string connection_string);
  ~PgInboxStore() override;

  std::vector<InsertOutcome> InsertBatch(std::span<const InboxRecord> records,
                                         Announce announce) override;
  void AnnounceStored() override;

  // Opens the connection now (normally done by the first batch).
  void ConnectNow();
  bool Connected() const;

 private:
  pqxx::connection& Connection();
  // Runs `fn` under Translate; a lost connection is dropped (and reopened by
  // the next call) before the StorageError goes on.
  template <class Fn>
  void OnConnection(const char* what, Fn&& fn);

  std::string connection_string_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace tscb::storage::pg
