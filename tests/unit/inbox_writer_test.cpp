#include "daemon/inbox_writer.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <numeric>
#include <thread>

#include "tests/fakes/fake_inbox_store.hpp"

namespace tscb::daemon {
namespace {

using testing::FakeInboxState;
using testing::FakeInboxStore;

// Collects completions and lets the test wait for all of them.
struct Results {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<WriteResult> got;

  InboxWriter::Completion Callback() {
    return InboxWriter::Completion([this](WriteResult r) {
      std::lock_guard lock(mu);
      got.push_back(r);
      cv.notify_all();
    });
  }
  bool WaitFor(std::size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return got.size() >= n; });
  }
};

// Lets held commits go on scope exit, also when an assertion returns early
// (the writer's destructor waits for its threads). Declare after the writer.
struct ReleaseHold {
  FakeInboxState& state;
  void Now() {
    {
      std::lock_guard lock(state.mu);
      state.hold = false;
    }
    state.cv.notify_all();
  }
  ~ReleaseHold() { Now(); }
};

storage::InboxRecord Record(int i) {
  storage::InboxRecord r;
  r.service = "CarrierService";
  r.dedup_key = "key-" + std::to_string(i);
  r.body_json = "{}";
  return r;
}

InboxWriter MakeWriter(std::shared_ptr<FakeInboxState> state, std::size_t batch_max,
                       std::chrono::milliseconds linger, int writers = 1,
                       std::chrono::milliseconds join_after = std::chrono::milliseconds(1)) {
  config::InboxConfig cfg;
  cfg.batch_max = batch_max;
  cfg.linger = linger;
  cfg.writers = writers;
  cfg.join_after = join_after;
  return InboxWriter([state] { return std::make_unique<FakeInboxStore>(state); }, cfg, nullptr);
}

TEST(InboxWriterTest, CallbacksArrivingTogetherShareOneCommit) {
  auto state = std::make_shared<FakeInboxState>();
  auto writer = MakeWriter(state, 100, std::chrono::milliseconds(300));
  Results results;
  writer.Start();
  for (int i = 0; i < 50; ++i) writer.Enqueue(Record(i), results.Callback());
  ASSERT_TRUE(results.WaitFor(50));
  writer.Stop();
  EXPECT_EQ(state->batch_sizes, std::vector<std::size_t>{50});
  EXPECT_EQ(writer.GetStats().batches, 1u);
  for (const auto& r : results.got) EXPECT_EQ(r.status, WriteStatus::kStored);
}

TEST(InboxWriterTest, BatchNeverExceedsBatchMax) {
  auto state = std::make_shared<FakeInboxState>();
  auto writer = MakeWriter(state, 10, std::chrono::milliseconds(50));
  Results results;
  for (int i = 0; i < 35; ++i) writer.Enqueue(Record(i), results.Callback());
  writer.Start();
  ASSERT_TRUE(results.WaitFor(35));
  writer.Stop();
  for (auto size : state->batch_sizes) EXPECT_LE(size, 10u);
  EXPECT_EQ(std::accumulate(state->batch_sizes.begin(), state->batch_sizes.end(), 0u), 35u);
  EXPECT_EQ(state->batch_sizes.size(), 4u);
}

InboxWriter MakeNotifyingWriter(std::shared_ptr<FakeInboxState> state,
                                std::chrono::milliseconds notify_interval) {
  config::InboxConfig cfg;
  cfg.batch_max = 10;
  cfg.notify_interval = notify_interval;
  return InboxWriter([state] { return std::make_unique<FakeInboxStore>(state); }, cfg, nullptr);
}

// One callback at a time, each answered before the next: one batch each.
void WriteOneByOne(InboxWriter& writer, Results& results, int from, int to) {
  for (int i = from; i < to; ++i) {
    writer.Enqueue(Record(i), results.Callback());
    ASSERT_TRUE(results.WaitFor(static_cast<std::size_t>(i + 1)));
  }
}

TEST(InboxWriterTest, CommitsWithinTheNotifyIntervalAreAnnouncedOnceAtItsEnd) {
  auto state = std::make_shared<FakeInboxState>();
  auto writer = MakeNotifyingWriter(state, std::chrono::seconds(1));
  Results results;
  writer.Start();
  WriteOneByOne(writer, results, 0, 3);
  {
    std::lock_guard lock(state->mu);
    // The first commit wakes the processors; the next two, within 1 s of
    // it, leave that to the announcement at the end of the second.
    EXPECT_EQ(state->batch_announced, (std::vector<bool>{true, false, false}));
    EXPECT_EQ(state->announcements, 0u);
  }
  {
    std::unique_lock lock(state->mu);
    EXPECT_TRUE(state->cv.wait_for(lock, std::chrono::seconds(10),
                                   [&] { return state->announcements >= 1; }));
  }
  writer.Stop();  // nothing committed since: no second announcement
  EXPECT_EQ(state->announcements, 1u);
}

// Writes `n` callbacks one by one, then stops: which batches carried the
// notification, and how many announcements followed.
std::pair<std::vector<bool>, std::size_t> NotificationsOf(std::chrono::milliseconds interval,
                                                          int n) {
  auto state = std::make_shared<FakeInboxState>();
  auto writer = MakeNotifyingWriter(state, interval);
  Results results;
  writer.Start();
  WriteOneByOne(writer, results, 0, n);
  writer.Stop();
  return {state->batch_announced, state->announcements};
}

TEST(InboxWriterTest, WithNotifyIntervalZeroEveryCommitWakesTheProcessors) {
  auto [announced, announcements] = NotificationsOf(std::chrono::milliseconds(0), 3);
  EXPECT_EQ(announced, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(announcements, 0u);
}

TEST(InboxWriterTest, StopAnnouncesWhatCommittedWithoutANotification) {
  auto [announced, announcements] = NotificationsOf(std::chrono::hours(1), 2);
  EXPECT_EQ(announced, (std::vector<bool>{true, false}));
  EXPECT_EQ(announcements, 1u);
}

// Two writers over a fake store whose commits wait until released.
struct HeldCommits {
  std::shared_ptr<FakeInboxState> state = [] {
    auto s = std::make_shared<FakeInboxState>();
    s->hold = true;
    return s;
  }();
  Results results;  // outlives the writer, whose threads answer into it
  InboxWriter writer;
  ReleaseHold release{*state};  // destroyed first: the writer can stop

  HeldCommits(std::size_t batch_max, std::chrono::milliseconds join_after)
      : writer(MakeWriter(state, batch_max, std::chrono::milliseconds(0), 2, join_after)) {
    writer.Start();
    // Both writers asleep with nothing to do, as in a quiet daemon, before
    // the first callback: the one that does not take it must still watch
    // how long that commit runs.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  void Add(int from, int to) {
    for (int i = from; i < to; ++i) writer.Enqueue(Record(i), results.Callback());
  }
  bool CallsReach(std::size_t n) {
    std::unique_lock lock(state->mu);
    return state->cv.wait_for(lock, std::chrono::seconds(10), [&] { return state->calls >= n; });
  }
  // Lets the held commits go and stops the writer; true if all `answers`
  // came, each one stored.
  bool ReleaseAndStop(std::size_t answers) {
    release.Now();
    const bool came = results.WaitFor(answers);
    writer.Stop();
    for (const auto& r : results.got) EXPECT_EQ(r.status, WriteStatus::kStored);
    return came;
  }
};

TEST(InboxWriterTest, ASecondWriterJoinsOnlyForAFullBatch) {
  HeldCommits t(8, std::chrono::hours(1));
  t.Add(0, 1);
  ASSERT_TRUE(t.CallsReach(1));
  // The first writer is in its commit: what arrives now waits for it ...
  t.Add(1, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    std::lock_guard lock(t.state->mu);
    EXPECT_EQ(t.state->calls, 1u) << "the idle writer took a part batch";
  }
  // ... until a full batch waits: then the other writer commits it.
  t.Add(8, 9);
  ASSERT_TRUE(t.CallsReach(2));
  t.Add(9, 12);
  ASSERT_TRUE(t.ReleaseAndStop(12));
  // The last three went into whichever commit came next, all together.
  const auto& sizes = t.state->batch_sizes;
  EXPECT_EQ(sizes.size(), 3u);
  EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), 0u), 12u);
}

TEST(InboxWriterTest, ASecondWriterTakesAPartBatchOnceTheCommitHasRunJoinAfter) {
  HeldCommits t(64, std::chrono::milliseconds(50));
  t.Add(0, 1);
  ASSERT_TRUE(t.CallsReach(1));
  // The first commit hangs: the other writer takes the next two without a
  // full batch.
  t.Add(1, 3);
  ASSERT_TRUE(t.CallsReach(2));
  ASSERT_TRUE(t.ReleaseAndStop(3));
  EXPECT_EQ(t.state->batch_sizes.size(), 2u);
}

TEST(InboxWriterTest, ARecordArrivingAfterJoinAfterIsTakenAtOnce) {
  HeldCommits t(64, std::chrono::milliseconds(50));
  t.Add(0, 1);
  ASSERT_TRUE(t.CallsReach(1));
  // The commit is slow before anything else arrives (the idle writer found
  // the queue empty at its deadline); the next record is not held up by it.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  t.Add(1, 2);
  ASSERT_TRUE(t.CallsReach(2));
  ASSERT_TRUE(t.ReleaseAndStop(2));
  EXPECT_EQ(t.state->batch_sizes.size(), 2u);
}

TEST(InboxWriterTest, FailedCommitAnswersEveryWaiterWithFailure) {
  auto state = std::make_shared<FakeInboxState>();
  state->fail = true;
  auto writer = MakeWriter(state, 100, std::chrono::milliseconds(20));
  Results results;
  writer.Start();
  for (int i = 0; i < 5; ++i) writer.Enqueue(Record(i), results.Callback());
  ASSERT_TRUE(results.WaitFor(5));
  EXPECT_FALSE(writer.Healthy());
  writer.Stop();
  for (const auto& r : results.got) EXPECT_EQ(r.status, WriteStatus::kFailed);
  EXPECT_GE(writer.GetStats().failed_batches, 1u);
  EXPECT_EQ(writer.GetStats().records, 0u);
}

TEST(InboxWriterTest, RecoversWhenTheStoreWorksAgain) {
  auto state = std::make_shared<FakeInboxState>();
  state->fail = true;
  auto writer = MakeWriter(state, 100, std::chrono::milliseconds(0));
  Results results;
  writer.Start();
  writer.Enqueue(Record(1), results.Callback());
  ASSERT_TRUE(results.WaitFor(1));
  {
    std::lock_guard lock(state->mu);
    state->fail = false;
  }
  writer.Enqueue(Record(2), results.Callback());
  ASSERT_TRUE(results.WaitFor(2));
  writer.Stop();
  EXPECT_EQ(results.got[0].status, WriteStatus::kFailed);
  EXPECT_EQ(results.got[1].status, WriteStatus::kStored);
  EXPECT_TRUE(writer.Healthy());
}

TEST(InboxWriterTest, DuplicateKeyIsReportedAsDuplicate) {
  auto state = std::make_shared<FakeInboxState>();
  auto writer = MakeWriter(state, 100, std::chrono::milliseconds(0));
  Results results;
  writer.Start();
  writer.Enqueue(Record(7), results.Callback());
  ASSERT_TRUE(results.WaitFor(1));
  writer.Enqueue(Record(7), results.Callback());
  ASSERT_TRUE(results.WaitFor(2));
  writer.Stop();
  EXPECT_EQ(results.got[1].status, WriteStatus::kDuplicate);
}

TEST(InboxWriterTest, StopWritesWhatIsAlreadyQueued) {
  auto state = std::make_shared<FakeInboxState>();
  auto writer = MakeWriter(state, 4, std::chrono::milliseconds(1000));
  Results results;
  for (int i = 0; i < 9; ++i) writer.Enqueue(Record(i), results.Callback());
  writer.Start();
  writer.Stop();  // must not wait out the linger, nor drop the queue
  ASSERT_EQ(results.got.size(), 9u);
  for (const auto& r : results.got) EXPECT_EQ(r.status, WriteStatus::kStored);
}

}  // namespace
}  // namespace tscb::daemon
