#include "handlers/log_throttle.hpp"

namespace tscb::handlers {

std::optional<std::uint64_t> LogThrottle::Admit(std::chrono::steady_clock::time_point now) {
  auto second = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  auto window = window_.load(std::memory_order_relaxed);
  if (second != window && window_.compare_exchange_strong(window, second))
    in_window_.store(0, std::memory_order_relaxed);
  if (in_window_.fetch_add(1, std::memory_order_relaxed) >= per_second_) {
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  return suppressed_.exchange(0, std::memory_order_relaxed);
}

}  // namespace tscb::handlers
