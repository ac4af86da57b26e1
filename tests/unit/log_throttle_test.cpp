#include "handlers/log_throttle.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

using std::chrono::milliseconds;
const std::chrono::steady_clock::time_point t0{};

TEST(LogThrottleTest, AdmitsUpToTheLimitEachSecondAndReportsWhatItHeldBack) {
  LogThrottle throttle(2);
  EXPECT_EQ(throttle.Admit(t0), 0u);
  EXPECT_EQ(throttle.Admit(t0 + milliseconds(10)), 0u);
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(throttle.Admit(t0 + milliseconds(20 + i)));
  EXPECT_EQ(throttle.Admit(t0 + milliseconds(1000)), 7u);  // next second: says 7 were held back
  EXPECT_EQ(throttle.Admit(t0 + milliseconds(1001)), 0u);
  EXPECT_FALSE(throttle.Admit(t0 + milliseconds(1002)));
}

}  // namespace
}  // namespace tscb::handlers
