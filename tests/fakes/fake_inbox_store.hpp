#pragma once
// An in-memory InboxStore for unit tests: records batch sizes, dedups on the
// key, and can be told to fail like a lost database connection.
#include <condition_variable>
#include <mutex>
#include <set>
#include <vector>

#include "storage/inbox.hpp"

namespace tscb::testing {

struct FakeInboxState {
  std::mutex mu;
  std::vector<std::size_t> batch_sizes;
  std::set<std::string> keys;
  bool fail = false;
  std::int64_t next_id = 1;
  // While set, InsertBatch waits (a commit in progress); `calls` counts the
  // batches begun. Clear it under `mu` and notify `cv`.
  bool hold = false;
  std::size_t calls = 0;
  // Per committed batch, whether it carried the notification (Announce::kNow);
  // and the AnnounceStored() calls.
  std::vector<bool> batch_announced;
  std::size_t announcements = 0;
  std::condition_variable cv;
};

class FakeInboxStore final : public storage::InboxStore {
 public:
  explicit FakeInboxStore(std::shared_ptr<FakeInboxState> state) : state_(std::move(state)) {}

  std::vector<storage::InsertOutcome> InsertBatch(std::span<const storage::InboxRecord> records,
                                                  storage::Announce announce) override {
    std::unique_lock lock(state_->mu);
    ++state_->calls;
    state_->cv.notify_all();
    state_->cv.wait(lock, [&] { return !state_->hold; });
    if (state_->fail) throw storage::StorageError("connection refused", true);
    state_->batch_sizes.push_back(records.size());
    state_->batch_announced.push_back(announce == storage::Announce::kNow);
    std::vector<storage::InsertOutcome> out;
    for (const auto& r : records) {
      bool fresh = state_->keys.insert(r.dedup_key).second;
      out.push_back({fresh ? storage::InsertStatus::kStored : storage::InsertStatus::kDuplicate,
                     fresh ? state_->next_id++ : 0});
    }
    return out;
  }

  void AnnounceStored() override {
    std::lock_guard lock(state_->mu);
    if (state_->fail) throw storage::StorageError("connection refused", true);
    ++state_->announcements;
    state_->cv.notify_all();
  }

 private:
  std::shared_ptr<FakeInboxState> state_;
};

}  // namespace tscb::testing
