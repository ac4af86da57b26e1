#include "daemon/inbox_writer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/thread_name.hpp"

namespace tscb::daemon {

InboxWriter::InboxWriter(StoreFactory factory, config::InboxConfig config, Metrics* metrics)
    : factory_(std::move(factory)), config_(config), metrics_(metrics) {}

InboxWriter::~InboxWriter() { Stop(); }

void InboxWriter::Start() {
  busy_since_.assign(static_cast<std::size_t>(config_.writers), {});
  for (int i = 0; i < config_.writers; ++i)
    threads_.emplace_back([this, i] {
      NameThisThread("tscb-inbox" + std::to_string(i));
      Run(i);
    });
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

void InboxWriter::Enqueue(storage::InboxRecord record, asio::any_io_executor executor,
                          Completion done) {
  std::size_t size;
  int busy;
  bool late = false;
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(record), std::move(executor), std::move(done)});
    size = queue_.size();
    busy = busy_;
    // Only the first record of a queue looks at the clock: once per batch.
    if (size == 1 && busy > 0)
      late = std::chrono::steady_clock::now() >= OldestCommitStart() + config_.join_after;
  }
  if (metrics_) metrics_->InboxQueue().Increment();
  // A writer that is committing takes the queue itself when it is done; an
  // idle one is called in only for a full batch, when no writer commits, or
  // when the commit in progress has already run join_after (TakeBatch).
  if (size >= config_.batch_max)
    cv_.notify_all();
  else if (busy == 0 || late)
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

std::chrono::steady_clock::time_point InboxWriter::OldestCommitStart() const {
  auto oldest = std::chrono::steady_clock::time_point::max();
  for (auto since : busy_since_)
    if (since != std::chrono::steady_clock::time_point{}) oldest = std::min(oldest, since);
  return oldest;
}

std::chrono::steady_clock::duration InboxWriter::LongestCommit() const {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  auto oldest = OldestCommitStart();
  return oldest < now ? now - oldest : std::chrono::steady_clock::duration{};
}

bool InboxWriter::TakeAnnouncement(std::chrono::steady_clock::time_point now) {
  if (config_.notify_interval.count() > 0 && now < announced_at_ + config_.notify_interval)
    return false;
  announced_at_ = now;
  unannounced_ = false;  // the commit about to start covers the ones before it
  return true;
}

std::vector<InboxWriter::Pending> InboxWriter::TakeBatch(std::unique_lock<std::mutex>& lock,
                                                         bool& announce) {
  // While another writer's commit is young, this one waits: callbacks that
  // arrive meanwhile go into that writer's next commit, one commit for all
  // of them, instead of being split into small parallel ones (each costs
  // the database a WAL flush and the daemon a wake-up). Measured with
  // bench/ab.sh: 25 callbacks per batch instead of 15 when any waiting
  // callback started a second commit at once.
  // Once the commit in progress has run `join_after` (1 ms by default: at
  // 15,000 callbacks/s about 15 wait by then), an idle writer takes what
  // waits, so a second commit overlaps the first one's WAL flush and the
  // callbacks wait less (bench/README.md). A full batch is taken at once.
  // The same rule keeps a commit that hangs (a lock, a slow disk, a
  // connection that stops answering) from holding the others up.
  // The idle writer sleeps until that deadline, not until each new record;
  // Enqueue calls it in for the first record that arrives after it.
  for (;;) {
    if (stopping_) break;
    const bool waiting = !queue_.empty();
    if (waiting && (busy_ == 0 || queue_.size() >= config_.batch_max)) break;
    if (busy_ > 0) {
      auto join_at = OldestCommitStart() + config_.join_after;
      if (std::chrono::steady_clock::now() < join_at) {
        cv_.wait_until(lock, join_at);
        continue;
      }
      if (waiting) break;  // the commit has run join_after: take what waits
    }
    // Nothing waits, and no commit is young: until a record comes, or a
    // commit starts (Run), whose deadline this writer must then watch, or
    // rows committed without a notification are due to be announced.
    if (unannounced_) {
      auto due = announced_at_ + config_.notify_interval;
      auto now = std::chrono::steady_clock::now();
      if (now >= due) {
        TakeAnnouncement(now);
        announce = true;
        return {};
      }
      ++unwatched_;
      cv_.wait_until(lock, due);
      --unwatched_;
      continue;
    }
    ++unwatched_;
    cv_.wait(lock);
    --unwatched_;
  }
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
  bool trusted = false;  // the store's connection worked on the last batch
  for (;;) {
    std::vector<Pending> batch;
    bool wake_idle = false;
    bool announce_only = false;
    auto announce = storage::Announce::kLater;
    {
      std::unique_lock lock(mu_);
      batch = TakeBatch(lock, announce_only);
      if (!batch.empty()) {
        auto now = std::chrono::steady_clock::now();
        busy_since_[index] = now;
        ++busy_;
        wake_idle = unwatched_ > 0;
        if (TakeAnnouncement(now)) announce = storage::Announce::kNow;
      } else if (!announce_only && unannounced_) {
        // Stopping and drained: the last rows still get their notification.
        unannounced_ = false;
        announce_only = true;
      }
    }
    // An idle writer asleep without a deadline learns of this commit, so
    // that it joins if the commit runs past join_after (a hang included).
    if (wake_idle) cv_.notify_all();
    if (announce_only) {
      AnnounceStored(*store, index);
      continue;
    }
    if (batch.empty()) return;  // stopping and drained
    if (metrics_) metrics_->InboxQueue().Decrement(static_cast<double>(batch.size()));
    WriteBatch(*store, batch, index, announce, trusted);
    std::lock_guard lock(mu_);
    busy_since_[index] = {};
    --busy_;
  }
}

void InboxWriter::AnnounceStored(storage::InboxStore& store, int index) {
  try {
    store.AnnounceStored();
  } catch (const storage::StorageError& e) {
    // Rare (the database went away since the last commit) and harmless: the
    // processors poll at processing.poll_interval.
    spdlog::warn(
        "inbox writer {}: cannot wake the processors for stored callbacks ({}); they "
        "find them at their next poll",
        index, e.what());
    if (metrics_) metrics_->InboxAnnounceFailures().Increment();
  }
}

void InboxWriter::WriteBatch(storage::InboxStore& store, std::vector<Pending>& batch, int index,
                             storage::Announce announce, bool& trusted) {
  std::vector<storage::InboxRecord> records;
  records.reserve(batch.size());
  for (auto& p : batch) records.push_back(std::move(p.record));

  std::vector<storage::InsertOutcome> outcomes;
  std::string error;
  auto started = std::chrono::steady_clock::now();
  // While the spool holds callbacks, new ones queue behind them (arrival
  // order); otherwise the database first, the spool when it fails.
  const bool behind_spool = spool_ && spool_->HasPending();
  if (behind_spool) {
    error = "callbacks are waiting in the spool";
  } else {
    try {
      outcomes = store.InsertBatch(records, announce);
    } catch (const storage::StorageError& e) {
      error = e.what();
      // A connection that worked last time and is found dead now (a server
      // restart while it was idle) gets one fresh attempt at once; the dedup
      // keys make the repeat harmless if the first commit did land.
      if (e.ConnectionLost() && trusted) {
        try {
          outcomes = store.InsertBatch(records, announce);
          error.clear();
        } catch (const storage::StorageError& again) {
          error = again.what();
        }
      }
    }
    trusted = error.empty();
  }
  bool spooled = false;
  std::string spool_error;
  if (!error.empty() && spool_) spooled = spool_->Append(records, spool_error);
  if (spooled && on_spooled_) on_spooled_();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  bool ok = error.empty();
  const bool stored_any = ok && std::any_of(outcomes.begin(), outcomes.end(), [](const auto& o) {
                            return o.status == storage::InsertStatus::kStored;
                          });
  bool was_healthy, was_spooling;
  {
    std::lock_guard lock(mu_);
    // New rows without a notification are announced later; so are the quiet
    // commits before this one when its own notification did not go out (no
    // new row, or no commit).
    if (config_.notify_interval.count() > 0 &&
        (announce == storage::Announce::kNow ? !stored_any : stored_any))
      unannounced_ = true;
    was_healthy = healthy_;
    was_spooling = spooling_;
    spooling_ = spooled;
    if (!behind_spool) healthy_ = ok;
    if (ok) {
      ++stats_.batches;
      stats_.records += records.size();
    } else {
      ++stats_.failed_batches;
    }
  }
  if (spooled && !was_spooling)
    spdlog::warn("inbox writer {}: {}; acknowledging callbacks from the spool {}", index,
                 behind_spool ? "the spool is being drained" : "database unavailable",
                 spool_->Path());
  if (!ok && spool_ && !spooled)
    spdlog::error("inbox writer {}: cannot spool {} callback(s) either ({}): answering 503", index,
                  records.size(), spool_error);
  if (metrics_) {
    if (ok) {
      metrics_->ObserveBatch(records.size(), seconds);
      metrics_->InboxBatches().Increment();
      metrics_->InboxRows().Increment(static_cast<double>(records.size()));
    } else if (!behind_spool) {
      metrics_->InboxFailures().Increment();
    }
  }
  // Logged on each change of state, not on every failed batch.
  if (!ok && was_healthy && !behind_spool)
    spdlog::error(
        "inbox writer {}: cannot store callbacks, answering 503 until the database "
        "is back: {}",
        index, error);
  if (ok && !was_healthy) {
    spdlog::info("inbox writer {}: database writes work again", index);
    spdlog::default_logger()->flush();  // a change of state is news now, not at the next flush
  }

  std::vector<WriteResult> results(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    WriteResult& result = results[i];
    if (spooled) {
      result.status = WriteStatus::kSpooled;
    } else if (ok) {
      result.inbox_id = outcomes[i].inbox_id;
      result.status = outcomes[i].status == storage::InsertStatus::kStored
                          ? WriteStatus::kStored
                          : WriteStatus::kDuplicate;
    }
  }
  Complete(batch, results);
}

void InboxWriter::Complete(std::vector<Pending>& batch, const std::vector<WriteResult>& results) {
  // One post per network thread, not one per callback: each post from this
  // thread takes that thread's scheduler lock and may wake it (an eventfd
  // write and an epoll_ctl).
  using Calls = std::vector<std::pair<Completion, WriteResult>>;
  std::vector<std::pair<asio::any_io_executor, Calls>> groups;  // a few network threads
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].executor) {
      std::move(batch[i].done)(results[i]);
      continue;
    }
    auto at = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == batch[i].executor; });
    if (at == groups.end()) at = groups.insert(groups.end(), {batch[i].executor, Calls{}});
    at->second.emplace_back(std::move(batch[i].done), results[i]);
  }
  for (auto& [executor, calls] : groups)
    asio::post(executor, [group = std::move(calls)]() mutable {
      for (auto& [done, result] : group) std::move(done)(result);
    });
}

}  // namespace tscb::daemon
