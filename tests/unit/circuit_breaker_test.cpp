#include "handlers/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include "handlers/token_bucket.hpp"

namespace tscb::handlers {
namespace {

using std::chrono::milliseconds;
using State = CircuitBreaker::State;
const CircuitBreaker::TimePoint t0{};

CircuitBreaker Make() { return CircuitBreaker({3, milliseconds(1000), 1}); }

TEST(CircuitBreakerTest, OpensAfterThresholdFailuresInARow) {
  auto cb = Make();
  cb.OnFailure(t0);
  cb.OnFailure(t0);
  EXPECT_TRUE(cb.Allow(t0));
  cb.OnFailure(t0);
  EXPECT_EQ(cb.GetState(t0), State::kOpen);
  EXPECT_FALSE(cb.Allow(t0 + milliseconds(999)));
}

TEST(CircuitBreakerTest, SuccessResetsTheFailureCount) {
  auto cb = Make();
  cb.OnFailure(t0);
  cb.OnFailure(t0);
  cb.OnSuccess();
  cb.OnFailure(t0);
  cb.OnFailure(t0);
  EXPECT_EQ(cb.GetState(t0), State::kClosed);
}

TEST(CircuitBreakerTest, HalfOpenLetsOneProbeThroughThenCloses) {
  auto cb = Make();
  for (int i = 0; i < 3; ++i) cb.OnFailure(t0);
  auto later = t0 + milliseconds(1000);
  EXPECT_EQ(cb.GetState(later), State::kHalfOpen);
  EXPECT_TRUE(cb.Allow(later));
  EXPECT_FALSE(cb.Allow(later)) << "only one probe in half-open";
  cb.OnSuccess();
  EXPECT_EQ(cb.GetState(later), State::kClosed);
  EXPECT_TRUE(cb.Allow(later));
}

TEST(CircuitBreakerTest, FailedProbeOpensItAgainForAFullPeriod) {
  auto cb = Make();
  for (int i = 0; i < 3; ++i) cb.OnFailure(t0);
  auto later = t0 + milliseconds(1500);
  ASSERT_TRUE(cb.Allow(later));
  cb.OnFailure(later);
  EXPECT_EQ(cb.GetState(later + milliseconds(999)), State::kOpen);
  EXPECT_EQ(cb.GetState(later + milliseconds(1000)), State::kHalfOpen);
}

TEST(TokenBucketTest, BurstThenTheConfiguredRate) {
  TokenBucket bucket(10.0, 3.0, t0);  // 10 per second, bursts of 3
  EXPECT_FALSE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0));
  auto wait = bucket.TryTake(t0);
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, milliseconds(100));
  EXPECT_FALSE(bucket.TryTake(t0 + milliseconds(100)));
  EXPECT_TRUE(bucket.TryTake(t0 + milliseconds(150)));
}

TEST(TokenBucketTest, IdleTimeRefillsOnlyUpToTheBurst) {
  TokenBucket bucket(1.0, 2.0, t0);
  EXPECT_FALSE(bucket.TryTake(t0));
  EXPECT_FALSE(bucket.TryTake(t0));
  auto later = t0 + std::chrono::seconds(60);
  EXPECT_FALSE(bucket.TryTake(later));
  EXPECT_FALSE(bucket.TryTake(later));
  EXPECT_TRUE(bucket.TryTake(later));
}

}  // namespace
}  // namespace tscb::handlers
