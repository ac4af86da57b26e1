#pragma once
// Keeps a flood of refused requests from flooding the journal: at most
// `per_second` lines a second for one kind of event, and the next line that
// gets through says how many were held back. Counting in metrics is not
// affected. Thread-safe (atomics only).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace tscb::handlers {

class LogThrottle {
 public:
  explicit LogThrottle(int per_second = 5) : per_second_(per_second) {}

  // nullopt: do not log. Otherwise log, mentioning the returned number of
  // suppressed lines when it is not zero. `now` is steady-clock time.
  std::optional<std::uint64_t> Admit(std::chrono::steady_clock::time_point now);

 private:
  int per_second_;
  std::atomic<std::int64_t> window_{0};  // whole seconds since the clock's epoch
  std::atomic<int> in_window_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace tscb::handlers
