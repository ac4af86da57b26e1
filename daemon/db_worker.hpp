#pragma once
// Two pieces the periodic workers (reconciler, dispatcher) share:
// - DbWorker: one thread with one database connection; a coroutine awaits
//   Run(fn) and is resumed on its own executor with fn's result (or its
//   exception), so no network thread ever blocks on libpqxx (DESIGN.md
//   section 4). fn is one transaction, run again at once if the server
//   rolled it back (run_again.hpp); any other failure drops the connection
//   and the next call reconnects.
// - Alarm: rings a worker's wait timer from any thread (stop, new work),
//   the timer itself living in the worker coroutine's frame so that it dies
//   with its io_context.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include "daemon/metrics.hpp"
#include "daemon/net.hpp"
#include "daemon/run_again.hpp"
#include "daemon/thread_name.hpp"
#include "storage/processing.hpp"

namespace tscb::daemon {

class DbWorker {
 public:
  using StoreFactory = std::function<std::unique_ptr<storage::ProcessingStore>()>;
  // `name` names its thread (see thread_name.hpp) and labels its rolled-back
  // transactions in `metrics` (may be null).
  DbWorker(StoreFactory factory, const std::string& name, Metrics* metrics = nullptr)
      : factory_(std::move(factory)), name_(name), metrics_(metrics) {
    asio::post(pool_, [name] { NameThisThread(name); });
  }
  ~DbWorker() { pool_.join(); }

  template <class Fn>
  asio::awaitable<std::invoke_result_t<Fn, storage::ProcessingStore&>> Run(Fn fn) {
    auto back = co_await asio::this_coro::executor;
    co_await asio::post(pool_, asio::use_awaitable);
    std::exception_ptr error;
    std::optional<std::invoke_result_t<Fn, storage::ProcessingStore&>> result;
    try {
      if (!store_) store_ = factory_();
      result.emplace(RunAgainIfRolledBack(name_, metrics_, [&] { return fn(*store_); }));
    } catch (const storage::StorageError& e) {
      if (!e.RolledBack()) store_.reset();  // a rolled-back one left the connection fine
      error = std::current_exception();
    } catch (...) {
      store_.reset();
      error = std::current_exception();
    }
    co_await asio::post(back, asio::use_awaitable);
    if (error) std::rethrow_exception(error);
    co_return std::move(*result);
  }

 private:
  StoreFactory factory_;
  std::string name_;
  Metrics* metrics_;
  asio::thread_pool pool_{1};
  std::unique_ptr<storage::ProcessingStore> store_;  // used on pool_ only
};

class Alarm {
 public:
  void Attach(const std::shared_ptr<asio::steady_timer>& timer) {
    std::lock_guard lock(mu_);
    timer_ = timer;
  }
  // Cancels the timer's current wait, on the timer's own executor.
  void Ring() {
    std::lock_guard lock(mu_);
    if (auto timer = timer_.lock())
      asio::post(timer->get_executor(), [weak = timer_] {
        if (auto t = weak.lock()) t->cancel();
      });
  }

 private:
  std::mutex mu_;
  std::weak_ptr<asio::steady_timer> timer_;
};

}  // namespace tscb::daemon
