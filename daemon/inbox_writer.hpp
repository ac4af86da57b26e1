#pragma once
// Group commit for the inbox (DESIGN.md section 2). Network coroutines hand
// a record to AsyncWrite() and are resumed, on their own executor, once the
// batch holding it has committed (or failed). Writer threads each own one
// InboxStore (one database connection); a batch closes at `batch_max`
// records or `linger` after its first record. One writer commits at a time
// until a full batch waits or the commit in progress has run `join_after`;
// then another joins. No network thread ever blocks on the database.
// A commit wakes the processors (Announce::kNow) at most every
// `notify_interval`; what commits in between is announced at the end of it.
// Thread-safe; Stop() drains what is queued.
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "daemon/metrics.hpp"
#include "daemon/net.hpp"
#include "daemon/spool.hpp"
#include "storage/inbox.hpp"

namespace tscb::daemon {

enum class WriteStatus { kStored, kDuplicate, kSpooled, kFailed };

struct WriteResult {
  WriteStatus status = WriteStatus::kFailed;
  std::int64_t inbox_id = 0;
};

class InboxWriter {
 public:
  using StoreFactory = std::function<std::unique_ptr<storage::InboxStore>()>;
  using Completion = asio::any_completion_handler<void(WriteResult)>;

  // `metrics` may be null (tests).
  InboxWriter(StoreFactory factory, config::InboxConfig config, Metrics* metrics);
  ~InboxWriter();

  void Start();
  // Lets the queue drain, then joins the threads. Idempotent.
  void Stop();

  // Completes with the record's fate, on the caller's associated executor.
  template <class Token>
  auto AsyncWrite(storage::InboxRecord record, Token&& token) {
    return asio::async_initiate<Token, void(WriteResult)>(
        [this](auto handler, storage::InboxRecord rec) {
          asio::any_io_executor ex = asio::prefer(asio::get_associated_executor(handler),
                                                  asio::execution::outstanding_work.tracked);
          Enqueue(std::move(rec), std::move(ex), Completion(std::move(handler)));
        },
        token, std::move(record));
  }

  // `done` runs on a writer thread.
  void Enqueue(storage::InboxRecord record, Completion done) {
    Enqueue(std::move(record), {}, std::move(done));
  }

  struct Stats {
    std::uint64_t batches = 0;  // committed transactions
    std::uint64_t records = 0;  // records in committed batches
    std::uint64_t failed_batches = 0;
  };
  Stats GetStats() const;
  // Callbacks that cannot be committed go to `spool` (may be null: none);
  // `spooled` is called after each append (the drainer's wake-up). Before Start().
  void UseSpool(Spool* spool, std::function<void()> spooled) {
    spool_ = spool;
    on_spooled_ = std::move(spooled);
  }

  // True while the last batch committed (or nothing was tried yet).
  bool Healthy() const;
  // How long the oldest commit still in progress has been running (zero
  // when no writer is in a commit). The watchdog stops on a stuck writer.
  std::chrono::steady_clock::duration LongestCommit() const;

 private:
  struct Pending {
    storage::InboxRecord record;
    asio::any_io_executor executor;  // where `done` runs; none: on the writer thread
    Completion done;
  };

  void Enqueue(storage::InboxRecord record, asio::any_io_executor executor, Completion done);
  // Runs each batch's completions, one post per executor.
  static void Complete(std::vector<Pending>& batch, const std::vector<WriteResult>& results);

  void Run(int index);
  // Empty when stopping and drained, or when `announce` is set: then the
  // rows committed without a notification are due to be announced.
  std::vector<Pending> TakeBatch(std::unique_lock<std::mutex>& lock, bool& announce);
  // Under mu_: whether the next batch carries the notification.
  bool TakeAnnouncement(std::chrono::steady_clock::time_point now);
  void AnnounceStored(storage::InboxStore& store, int index);
  // When the oldest commit in progress began (time_point::max() when none);
  // under mu_.
  std::chrono::steady_clock::time_point OldestCommitStart() const;
  void WriteBatch(storage::InboxStore& store, std::vector<Pending>& batch, int index,
                  storage::Announce announce, bool& trusted);

  StoreFactory factory_;
  config::InboxConfig config_;
  Spool* spool_ = nullptr;
  std::function<void()> on_spooled_;
  bool spooling_ = false;  // under mu_: for the log line on each change
  Metrics* metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  Stats stats_;
  bool healthy_ = true;
  std::vector<std::chrono::steady_clock::time_point> busy_since_;  // per writer; {} = idle
  // Writers in a commit.
  int busy_ = 0;
  // Idle writers asleep until a record comes, watching no commit's deadline.
  int unwatched_ = 0;
  // When the last notification was taken (by a batch or AnnounceStored), and
  // whether rows committed since may not be covered by one.
  std::chrono::steady_clock::time_point announced_at_{};
  bool unannounced_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tscb::daemon
