#pragma once
// Samples the daemon's state as the database holds it (inbox backlog and the
// age of its oldest row, pending requests and actions by state) every
// `interval` on a thread and connection of its own, into the metrics, so a
// scrape never waits on PostgreSQL. Thread-safe; Stop() joins. At the same
// pace it gives memory malloc holds free back to the system.
//
// Counting requests and actions by state scans both tables, which retention
// keeps for months: once a count takes long, the counts are taken less often
// (CountSpacing), so that they cost the database at most a twentieth of one
// connection's time; the inbox gauges keep the interval.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "daemon/metrics.hpp"
#include "storage/processing.hpp"

namespace tscb::daemon {

// The wait before the next count by state after one that took `took`: the
// sampling interval, or twenty times what the count took if that is longer.
std::chrono::milliseconds CountSpacing(std::chrono::milliseconds interval,
                                       std::chrono::steady_clock::duration took);

// When to give malloc's free memory back to the system (malloc_trim). A
// burst (10,000 TLS handshakes) leaves hundreds of MiB free and resident:
// given back. What a steady load frees and takes again within seconds (a
// few MiB of answers in flight) is kept: giving it back only to fault it in
// again costs CPU, and resident memory would swing with every sample.
// malloc's own free figure cannot tell the two apart (free chunks whose
// pages were given back still count), so the free memory still resident is
// estimated: what resident memory grew by since the last trim, less what
// the bytes in use grew by.
class FreeMemoryPolicy {
 public:
  static constexpr std::size_t kKeepFreeBytes = 8 * 1024 * 1024;
  // True if a trim is due: the first time, and whenever the estimate
  // reaches kKeepFreeBytes.
  bool ShouldTrim(std::size_t resident_bytes, std::size_t in_use_bytes) const;
  // The figures right after a trim: the new baseline.
  void Trimmed(std::size_t resident_bytes, std::size_t in_use_bytes);

 private:
  bool trimmed_ = false;
  std::size_t resident_ = 0;
  std::size_t in_use_ = 0;
};

class StatsSampler {
 public:
  using StoreFactory = std::function<std::unique_ptr<storage::ProcessingStore>()>;
  StatsSampler(StoreFactory factory, std::chrono::milliseconds interval, Metrics& metrics);
  ~StatsSampler();
  void Start();
  void Stop();

 private:
  void Run();
  void ReturnFreeMemory();
  FreeMemoryPolicy free_memory_;

  StoreFactory factory_;
  std::chrono::milliseconds interval_;
  Metrics& metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace tscb::daemon
