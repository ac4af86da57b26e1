#pragma once
// The inbox: every accepted callback, stored raw (credentials removed) before
// it is acknowledged (DESIGN.md section 2). This header holds the record and
// the store interface; storage/pg/ implements it.
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace tscb::storage {

struct InboxRecord {
  std::string service;      // callback service, from the URL path
  std::string source_ip;    // client address the allow-list accepted
  std::string dedup_key;    // unique across all partitions
  std::string body_json;    // JSON object without username/password
  int attempt = 1;          // callbackCount
  std::string request_id;   // "" when absent
  std::string device_id;    // first device, "" when absent
  std::string device_kind;  // lower-case
  // Arrival time in microseconds since 1970 for a callback that waited in the
  // spool; 0 = now (the database's clock at insert).
  std::int64_t received_us = 0;
};

enum class InsertStatus { kStored, kDuplicate };

// Whether a batch's commit wakes the processors waiting for new inbox rows
// (LISTEN tscb_inbox, in this daemon and in others sharing the database).
// kLater: the caller announces the rows itself, with AnnounceStored() or a
// later batch's kNow, so that one notification covers many commits.
enum class Announce { kNow, kLater };

struct InsertOutcome {
  InsertStatus status = InsertStatus::kStored;
  std::int64_t inbox_id = 0;  // the new row, or the row a duplicate matched
};

// Raised by stores; nothing of the failed call was committed, except where
// `outcome_unknown` says the commit itself was cut off (a resend is then
// harmless thanks to the dedup key). `rolled_back`: the server undid the
// transaction to break a deadlock or a serialization conflict; the
// connection is fine and the same work can be run again at once.
class StorageError : public std::runtime_error {
 public:
  StorageError(const std::string& what, bool connection_lost, bool outcome_unknown = false,
               bool rolled_back = false)
      : std::runtime_error(what),
        connection_lost_(connection_lost),
        outcome_unknown_(outcome_unknown),
        rolled_back_(rolled_back) {}
  bool ConnectionLost() const { return connection_lost_; }
  bool OutcomeUnknown() const { return outcome_unknown_; }
  bool RolledBack() const { return rolled_back_; }

 private:
  bool connection_lost_;
  bool outcome_unknown_;
  bool rolled_back_;
};

// Owned by one thread at a time (it holds one database connection).
class InboxStore {
 public:
  virtual ~InboxStore() = default;
  // One transaction for the whole batch; one outcome per record, in order.
  // A record whose dedup key is already stored (or repeats earlier in the
  // batch) is a duplicate: no new row, its delivery count goes up. With
  // kNow, a batch that stores a new row wakes the processors at its commit.
  virtual std::vector<InsertOutcome> InsertBatch(std::span<const InboxRecord> records,
                                                 Announce announce) = 0;
  // Wakes the processors now: rows committed with kLater are waiting.
  virtual void AnnounceStored() = 0;
};

}  // namespace tscb::storage
