#include "daemon/inbox_writer.hpp"

#include <spdlog/spdlog.h>

namespace tscb::daemon {

InboxWriter::InboxWriter(StoreFactory factory, config::InboxConfig config, Metrics* metrics)
    : factory_(std::move(factory)), config_(config), metrics_(metrics) {}

InboxWriter::~InboxWriter() { Stop(); }

void InboxWriter::Start() {
  busy_since_.assign(static_cast<std::size_t>(config_.writers), {});
  for (int i = 0; i < config_.writers; ++i) threads_.emplace_back([this, i] { Run(i); });
}

void InboxWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void InboxWriter::Enqueue(storage::InboxRecord record, Completion done) {
  std::size_t size;
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(record), std::move(done)});
    size = queue_.size();
  }
  if (metrics_) metrics_->InboxQueue().Increment();
  if (size >= config_.batch_max)
    cv_.notify_all();
  else
    cv_.notify_one();
}

InboxWriter::Stats InboxWriter::GetStats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool InboxWriter::Healthy() const {
  std::lock_guard lock(mu_);
  return healthy_;
}

std::chrono::steady_clock::duration InboxWriter::LongestCommit() const {
  auto now = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration longest{};
  std::lock_guard lock(mu_);
  for (auto since : busy_since_)
    if (since != std::chrono::steady_clock::time_point{}) longest = std::max(longest, now - since);
  return longest;
}

std::vector<InboxWriter::Pending> InboxWriter::TakeBatch(std::unique_lock<std::mutex>& lock) {
  cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
  if (queue_.empty()) return {};
  // Linger for company: one commit for many callbacks is the whole point.
  if (queue_.size() < config_.batch_max && config_.linger.count() > 0 && !stopping_) {
    cv_.wait_for(lock, config_.linger,
                 [&] { return queue_.size() >= config_.batch_max || stopping_; });
  }
  std::size_t n = std::min(queue_.size(), config_.batch_max);
  std::vector<Pending> batch;
  batch.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void InboxWriter::Run(int index) {
  std::unique_ptr<storage::InboxStore> store = factory_();
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mu_);
      batch = TakeBatch(lock);
      if (!batch.empty()) busy_since_[index] = std::chrono::steady_clock::now();
    }
    if (batch.empty()) return;  // stopping and drained
    if (metrics_) metrics_->InboxQueue().Decrement(static_cast<double>(batch.size()));
    WriteBatch(*store, batch, index);
    std::lock_guard lock(mu_);
    busy_since_[index] = {};
  }
}

void InboxWriter::WriteBatch(storage::InboxStore& store, std::vector<Pending>& batch, int index) {
  std::vector<storage::InboxRecord> records;
  records.reserve(batch.size());
  for (auto& p : batch) records.push_back(std::move(p.record));

  std::vector<storage::InsertOutcome> outcomes;
  std::string error;
  auto started = std::chrono::steady_clock::now();
  try {
    outcomes = store.InsertBatch(records);
  } catch (const storage::StorageError& e) {
    error = e.what();
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  bool ok = error.empty();
  bool was_healthy;
  {
    std::lock_guard lock(mu_);
    was_healthy = healthy_;
    healthy_ = ok;
    if (ok) {
      ++stats_.batches;
      stats_.records += records.size();
    } else {
      ++stats_.failed_batches;
    }
  }
  if (metrics_) {
    if (ok) {
      metrics_->ObserveBatch(records.size(), seconds);
      metrics_->InboxBatches().Increment();
      metrics_->InboxRows().Increment(static_cast<double>(records.size()));
    } else {
      metrics_->InboxFailures().Increment();
    }
  }
  // Logged on each change of state, not on every failed batch.
  if (!ok && was_healthy)
    spdlog::error(
        "inbox writer {}: cannot store callbacks, answering 503 until the database "
        "is back: {}",
        index, error);
  if (ok && !was_healthy) {
    spdlog::info("inbox writer {}: database writes work again", index);
    spdlog::default_logger()->flush();  // a change of state is news now, not at the next flush
  }

  for (std::size_t i = 0; i < batch.size(); ++i) {
    WriteResult result;
    if (ok) {
      result.inbox_id = outcomes[i].inbox_id;
      result.status = outcomes[i].status == storage::InsertStatus::kStored
                          ? WriteStatus::kStored
                          : WriteStatus::kDuplicate;
    }
    std::move(batch[i].done)(result);
  }
}

}  // namespace tscb::daemon
