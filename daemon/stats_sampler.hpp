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

  StoreFactory factory_;
  std::chrono::milliseconds interval_;
  Metrics& metrics_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace tscb::daemon
