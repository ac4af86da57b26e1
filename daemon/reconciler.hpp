#pragma once
// Recovery of missed callbacks (DESIGN.md section 2, spec 5.2): every
// requests.reconcile_interval, pending requests past their deadline are
// claimed (SKIP LOCKED: one daemon each). Where ThingSpace's request-status
// endpoint applies (single-device activate, deactivate, suspend, restore)
// and a ThingSpace client exists, it is asked: Success or Failure concludes
// the request (event request.status); Pending keeps it open for another
// deadline's length. Otherwise the request is marked timed_out with a
// request.timeout event that rules can act on. Database work runs on the
// reconciler's own thread; the coroutine runs on the ThingSpace client's
// executor.
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>

#include "config/config.hpp"
#include "daemon/db_worker.hpp"
#include "daemon/metrics.hpp"
#include "daemon/rule_book.hpp"
#include "daemon/thingspace_client.hpp"
#include "storage/processing.hpp"

namespace tscb::daemon {

struct ReconcileResult {
  int checked = 0;    // overdue requests looked at
  int asked = 0;      // request-status calls made
  int concluded = 0;  // succeeded or failed from the answer
  int timed_out = 0;
  int still_pending = 0;
};

class Reconciler {
 public:
  using StoreFactory = std::function<std::unique_ptr<storage::ProcessingStore>()>;
  // `rules` (may be null) plan actions for the request.timeout and
  // request.status events it writes.
  Reconciler(const config::Config& config, StoreFactory factory, Metrics* metrics,
             const RuleBook* rules = nullptr);
  ~Reconciler();

  // Every interval until Stop(). `client` may be null (no thingspace section).
  asio::awaitable<void> Run(ThingSpaceClient* client);
  asio::awaitable<ReconcileResult> Once(ThingSpaceClient* client);
  void Stop();  // from any thread

 private:
  const config::Config& config_;
  DbWorker db_;
  Metrics* metrics_;
  const RuleBook* rules_;
  std::atomic<bool> stopping_{false};
  Alarm alarm_;  // wakes Run() from its wait (Stop)
};

}  // namespace tscb::daemon
