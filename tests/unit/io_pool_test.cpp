#include "daemon/io_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace tscb::daemon {
namespace {

TEST(IoPool, EachContextRunsOnOneThreadAndConnectionsAreSpreadRoundRobin) {
  IoPool pool(3);
  ASSERT_EQ(pool.Size(), 3);
  std::mutex mu;
  std::map<int, std::set<std::thread::id>> threads_of;  // context (by order) -> threads seen
  std::atomic<int> done{0};
  pool.Start();
  for (int i = 0; i < 300; ++i) {
    // Each executor stands for a connection; it posts several handlers, as
    // a connection's reads and writes do.
    auto ex = pool.Next();
    for (int j = 0; j < 5; ++j)
      asio::post(ex, [&, context = i % 3] {
        std::lock_guard lock(mu);
        threads_of[context].insert(std::this_thread::get_id());
        ++done;
      });
  }
  pool.Release();
  pool.Join();  // returns once every context ran out of work
  EXPECT_EQ(done.load(), 1500);
  ASSERT_EQ(threads_of.size(), 3u);
  std::set<std::thread::id> all;
  for (auto& [context, threads] : threads_of) {
    EXPECT_EQ(threads.size(), 1u) << "context " << context << " ran on several threads";
    all.insert(threads.begin(), threads.end());
  }
  EXPECT_EQ(all.size(), 3u) << "two contexts shared a thread";
}

TEST(IoPool, IdleThreadsWaitUntilReleasedAndStopEndsPendingWork) {
  IoPool pool(2);
  pool.Start();
  // No work yet: the threads stay up for connections still to come.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::atomic<bool> ran{false};
  asio::post(pool.Next(), [&] { ran = true; });
  for (int i = 0; i < 100 && !ran; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(ran.load()) << "a context had stopped while idle";
  // A connection waiting an hour is not waited for by Stop().
  asio::steady_timer hour(pool.Next(), std::chrono::hours(1));
  std::atomic<bool> fired{false};
  hour.async_wait([&](const boost::system::error_code&) { fired = true; });
  auto start = std::chrono::steady_clock::now();
  pool.Stop();
  pool.Join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_FALSE(fired.load());
}

}  // namespace
}  // namespace tscb::daemon
