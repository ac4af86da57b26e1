#pragma once
// Stops calling ThingSpace for a while after repeated failures (DESIGN.md
// section 7): closed -> open after `failure_threshold` failures in a row;
// open for `open_for`; then half-open, letting `half_open_probes` calls
// through; one success closes it, one failure opens it again. Time is passed
// in, so tests need no clock. Not thread-safe: one owner.
#include <chrono>

namespace tscb::handlers {

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Policy {
    int failure_threshold = 5;
    std::chrono::milliseconds open_for{30'000};
    int half_open_probes = 1;
  };
  enum class State { kClosed, kOpen, kHalfOpen };

  explicit CircuitBreaker(Policy policy) : policy_(policy) {}

  // May a call go out now? In half-open, each true uses up one probe.
  bool Allow(TimePoint now);
  void OnSuccess();
  void OnFailure(TimePoint now);
  State GetState(TimePoint now) const;

 private:
  Policy policy_;
  State state_ = State::kClosed;
  int failures_ = 0;
  int probes_left_ = 0;
  TimePoint opened_at_{};
};

const char* Describe(CircuitBreaker::State state);

}  // namespace tscb::handlers
