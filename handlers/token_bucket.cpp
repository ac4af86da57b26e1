#include "handlers/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace tscb::handlers {

TokenBucket::TokenBucket(double rate, double burst, TimePoint start)
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(burst_), last_(start) {}

void TokenBucket::Refill(TimePoint now) {
  if (now <= last_) return;
  double seconds = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + seconds * rate_);
  last_ = now;
}

std::optional<std::chrono::milliseconds> TokenBucket::TryTake(TimePoint now) {
  Refill(now);
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return std::nullopt;
  }
  double wait_s = (1.0 - tokens_) / rate_;
  return std::chrono::milliseconds(static_cast<long long>(std::ceil(wait_s * 1000.0)));
}

}  // namespace tscb::handlers
