#pragma once
// One database transaction that the server rolled back to break a deadlock
// or a serialization conflict is run again at once, on the same connection,
// up to kTransactionAttempts times in all: nothing of it was committed, and
// the transaction it collided with has usually ended. Each run again is
// logged and counted (tscb_db_rolled_back_total{part}); any other failure,
// and the last rollback, go to the caller. `fn` begins and commits its own
// transaction and only assigns to what it returns or declares itself, so
// that running it again starts from scratch.
#include <spdlog/spdlog.h>

#include <string>

#include "daemon/metrics.hpp"
#include "storage/inbox.hpp"  // StorageError

namespace tscb::daemon {

inline constexpr int kTransactionAttempts = 3;

template <class Fn>
auto RunAgainIfRolledBack(const std::string& part, Metrics* metrics, Fn&& fn) -> decltype(fn()) {
  for (int attempt = 1;; ++attempt) {
    try {
      return fn();
    } catch (const storage::StorageError& e) {
      if (!e.RolledBack() || attempt >= kTransactionAttempts) throw;
      spdlog::warn("{}: a transaction was rolled back by the server ({}); running it again", part,
                   e.what());
      if (metrics) metrics->CountRolledBack(part);
    }
  }
}

}  // namespace tscb::daemon
