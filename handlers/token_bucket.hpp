#pragma once
// A rate limit per ThingSpace endpoint: `rate` calls per second on average,
// bursts up to `burst`. TryTake() either takes a token or says how long to
// wait for one. Time is passed in. Not thread-safe: one owner.
#include <chrono>
#include <optional>

namespace tscb::handlers {

class TokenBucket {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Starts full at `start`. `rate` > 0 tokens per second, `burst` >= 1.
  TokenBucket(double rate, double burst, TimePoint start);

  // nullopt: a token was taken. Otherwise: wait this long, then ask again.
  std::optional<std::chrono::milliseconds> TryTake(TimePoint now);

 private:
  void Refill(TimePoint now);

  double rate_;
  double burst_;
  double tokens_;
  TimePoint last_;
};

}  // namespace tscb::handlers
