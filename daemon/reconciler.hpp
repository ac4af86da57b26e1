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
#include "daemon/metrics.hpp"
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
  Reconciler(const config::Config& config, StoreFactory factory, Metrics* metrics);
  ~Reconciler();

  // Every interval until Stop(). `client` may be null (no thingspace section).
  asio::awaitable<void> Run(ThingSpaceClient* client);
  asio::awaitable<ReconcileResult> Once(ThingSpaceClient* client);
  void Stop();  // from any thread

 private:
  template <class Fn>
  asio::awaitable<std::invoke_result_t<Fn, storage::ProcessingStore&>> OnDb(Fn fn);

  const config::Config& config_;
  StoreFactory factory_;
  Metrics* metrics_;
  asio::thread_pool db_{1};
  std::unique_ptr<storage::ProcessingStore> store_;  // used on db_ only
  std::atomic<bool> stopping_{false};
  // The wait between passes lives in Run()'s frame (so it dies with its
  // io_context); Stop() reaches it through this.
  std::mutex timer_mu_;
  std::weak_ptr<asio::steady_timer> timer_;
};

}  // namespace tscb::daemon
