#include "handlers/backoff.hpp"

#include <gtest/gtest.h>

namespace tscb::handlers {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(BackoffTest, CeilingDoublesFromInitialUpToMax) {
  Backoff b({milliseconds(500), milliseconds(10'000), 2.0}, [] { return 0.0; });
  EXPECT_EQ(b.Ceiling(1), milliseconds(500));
  EXPECT_EQ(b.Ceiling(2), milliseconds(1000));
  EXPECT_EQ(b.Ceiling(5), milliseconds(8000));
  EXPECT_EQ(b.Ceiling(6), milliseconds(10'000));
  EXPECT_EQ(b.Ceiling(60), milliseconds(10'000));
}

TEST(BackoffTest, FullJitterSpansZeroToTheCeiling) {
  double u = 0.0;
  Backoff b({milliseconds(1000), milliseconds(60'000), 2.0}, [&] { return u; });
  EXPECT_EQ(b.Delay(3), milliseconds(0));
  u = 0.5;
  EXPECT_EQ(b.Delay(3), milliseconds(2000));
  u = 0.999;
  EXPECT_EQ(b.Delay(3), milliseconds(3996));
}

TEST(BackoffTest, RetryAfterIsAFloor) {
  Backoff b({milliseconds(500), milliseconds(60'000), 2.0}, [] { return 0.1; });
  EXPECT_EQ(b.Delay(1, seconds(30)), milliseconds(30'000));
  EXPECT_EQ(b.Delay(1, seconds(0)), milliseconds(50));
}

}  // namespace
}  // namespace tscb::handlers
