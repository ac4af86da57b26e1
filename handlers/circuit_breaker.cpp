#include "handlers/circuit_breaker.hpp"

namespace tscb::handlers {

CircuitBreaker::State CircuitBreaker::GetState(TimePoint now) const {
  if (state_ == State::kOpen && now - opened_at_ >= policy_.open_for) return State::kHalfOpen;
  return state_;
}

bool CircuitBreaker::Allow(TimePoint now) {
  if (state_ == State::kOpen && now - opened_at_ >= policy_.open_for) {
    state_ = State::kHalfOpen;
    probes_left_ = policy_.half_open_probes;
  }
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      return false;
    case State::kHalfOpen:
      if (probes_left_ <= 0) return false;
      --probes_left_;
      return true;
  }
  return false;
}

void CircuitBreaker::OnSuccess() {
  state_ = State::kClosed;
  failures_ = 0;
}

void CircuitBreaker::OnFailure(TimePoint now) {
  ++failures_;
  if (state_ == State::kHalfOpen || failures_ >= policy_.failure_threshold) {
    state_ = State::kOpen;
    opened_at_ = now;
  }
}

const char* Describe(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

}  // namespace tscb::handlers
