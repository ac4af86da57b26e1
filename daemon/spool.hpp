#pragma once
// The local spool (DESIGN.md section 2): when the inbox writers cannot
// commit, callbacks are appended to one file in the state directory
// (handlers/spool_format records, a length and a checksum each), fdatasync'd,
// and only then acknowledged. While the spool holds records, new callbacks
// are appended behind them, so they reach the inbox in arrival order; the
// SpoolDrainer moves them into the inbox (the dedup keys make a record that
// is moved twice, or spooled twice, harmless) and empties the file when it
// has moved everything. At start the file is checked record by record and a
// torn tail (a write a crash cut short, never acknowledged) is cut off.
// Damage in the middle of the file (whole records follow it) is skipped, its
// bytes saved next to the file, and the records after it are still moved.
// Thread-safe.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "daemon/metrics.hpp"
#include "storage/inbox.hpp"

namespace tscb::daemon {

class Spool {
 public:
  struct Stats {
    std::uint64_t bytes = 0;    // in the file, moved records included until it is emptied
    std::uint64_t records = 0;  // not yet in the inbox
    double oldest_seconds = 0;  // age of the oldest record not yet in the inbox
  };

  // Opens or creates `path` (and its folder, mode 0700) and checks it.
  // Throws std::runtime_error when it cannot. `metrics` may be null.
  Spool(std::string path, std::uint64_t max_bytes, Metrics* metrics);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  // Appends the records and syncs them to disk. False, with nothing of them
  // left in the file, when the spool is full or writing or syncing failed;
  // `error` says which. Records without an arrival time get the current one.
  bool Append(std::span<const storage::InboxRecord> records, std::string& error);
  bool HasPending() const;

  // The drainer's side. Next() reads up to `max` records from the drain
  // position and sets `end` to where they end; Moved(end, n) records that
  // they are in the inbox, and empties the file once everything is.
  std::vector<storage::InboxRecord> Next(std::size_t max, std::uint64_t& end);
  void Moved(std::uint64_t end, std::size_t n);

  Stats GetStats() const;
  const std::string& Path() const { return path_; }

 private:
  void Check();  // at open: count the records, cut a torn tail
  void PublishLocked();
  // Records [offset, offset + bytes.size()) as a hole that Next() skips,
  // saves the bytes to PATH.damaged, logs and counts it.
  void SkipDamageLocked(std::uint64_t offset, std::string_view bytes, const std::string& why,
                        bool followed);

  std::string path_;
  std::uint64_t max_bytes_;
  Metrics* metrics_;
  int fd_ = -1;
  mutable std::mutex mu_;
  std::uint64_t size_ = 0;     // whole records in the file
  std::uint64_t drained_ = 0;  // records before this offset are in the inbox
  std::uint64_t pending_ = 0;  // records after it
  std::int64_t oldest_us_ = 0;
  // Damaged spans [begin, end) in the file, in order, until it is emptied.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> holes_;
};

// Moves spooled records into the inbox on a thread and connection of its
// own: at once when there are any, again every second while PostgreSQL
// refuses them. Logs progress while it drains.
class SpoolDrainer {
 public:
  using StoreFactory = std::function<std::unique_ptr<storage::InboxStore>()>;
  SpoolDrainer(Spool& spool, StoreFactory factory, Metrics* metrics);
  ~SpoolDrainer();
  void Start();
  // Stops after the batch in progress; what is left stays in the spool.
  void Stop();
  void Wake();

 private:
  void Run();

  Spool& spool_;
  StoreFactory factory_;
  Metrics* metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace tscb::daemon
