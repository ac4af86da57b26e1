#pragma once
// ProcessingStore on PostgreSQL: one connection (per processor thread),
// reopened after a connection failure; it LISTENs on tscb_inbox from its
// first WaitForInbox() on. Each batch is a pqxx::work; statements take JSON
// arrays so a batch costs a few round trips however many rows it holds.
#include <memory>
#include <pqxx/connection>
#include <string>

#include "storage/processing.hpp"

namespace tscb::storage::pg {

class PgProcessingStore final : public ProcessingStore {
 public:
  enum class Planning {
    kPerCall,   // every statement planned at each call: occasional users
    kPrepared,  // the processing and dispatch loops: see Connection()
  };
  explicit PgProcessingStore(std::string connection_string, Planning planning = Planning::kPerCall);
  ~PgProcessingStore() override;

  std::unique_ptr<ProcessingBatch> Begin() override;
  bool WaitForInbox(std::chrono::milliseconds timeout) override;

 private:
  struct Listener;
  pqxx::connection& Connection();

  std::string connection_string_;
  Planning planning_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Listener> listener_;
  bool notified_ = false;
};

}  // namespace tscb::storage::pg
