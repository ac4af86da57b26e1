#include "handlers/backoff.hpp"

#include <algorithm>
#include <cmath>

namespace tscb::handlers {

Backoff::Backoff(BackoffPolicy policy, std::function<double()> uniform)
    : policy_(policy), uniform_(std::move(uniform)) {}

std::chrono::milliseconds Backoff::Ceiling(int attempt) const {
  double ms = static_cast<double>(policy_.initial.count()) *
              std::pow(policy_.multiplier, std::max(0, attempt - 1));
  ms = std::min(ms, static_cast<double>(policy_.max.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

std::chrono::milliseconds Backoff::Delay(int attempt,
                                         std::optional<std::chrono::seconds> retry_after) const {
  // Full jitter: anywhere between 0 and the ceiling, so that many callers
  // retrying after one outage do not arrive together.
  auto ceiling = Ceiling(attempt);
  auto jittered = std::chrono::milliseconds(
      static_cast<std::int64_t>(uniform_() * static_cast<double>(ceiling.count())));
  if (retry_after) jittered = std::max<std::chrono::milliseconds>(jittered, *retry_after);
  return jittered;
}

}  // namespace tscb::handlers
