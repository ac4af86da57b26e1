#pragma once
// Retry delays: exponential with full jitter, capped, and never shorter than
// what the server asked for in Retry-After. The random source is injected so
// tests are deterministic. Pure; one instance per caller (not thread-safe).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>

namespace tscb::handlers {

struct BackoffPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{60'000};
  double multiplier = 2.0;
};

class Backoff {
 public:
  // `uniform` returns a value in [0, 1).
  Backoff(BackoffPolicy policy, std::function<double()> uniform);

  // Delay before retry number `attempt` (1 for the first retry).
  std::chrono::milliseconds Delay(int attempt,
                                  std::optional<std::chrono::seconds> retry_after = {}) const;
  // The cap of the exponential curve at `attempt`, before jitter.
  std::chrono::milliseconds Ceiling(int attempt) const;

 private:
  BackoffPolicy policy_;
  std::function<double()> uniform_;
};

}  // namespace tscb::handlers
