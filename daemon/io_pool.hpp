#pragma once
// The network threads: one io_context per thread, each run by that thread
// alone. A connection lives on one of them from accept to close, so its
// handlers (reads, writes, deadline timers, the inbox writer's answer) never
// run concurrently and need no strand; a strand on a shared multi-threaded
// io_context cost about an eighth of the daemon's CPU per callback (locks
// and the type-erased executor copies on every operation).
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "daemon/net.hpp"

namespace tscb::daemon {

class IoPool {
 public:
  explicit IoPool(int threads);
  ~IoPool();
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // The context for the next connection, round robin.
  asio::any_io_executor Next();
  int Size() const { return static_cast<int>(contexts_.size()); }
  // Runs each context on its thread; they stay up (idle) until Release().
  void Start();
  // From now on a thread ends once its context has no work left (its
  // connections closed); Join() waits for that.
  void Release();
  // Ends every thread at once, connections open or not (the grace period
  // is over).
  void Stop();
  void Join();
  // Stop(), Join(), and destroys the contexts with whatever they still hold
  // (the coroutine frames of connections the grace period cut off). Call it
  // while what those frames touch on their way out still exists.
  void Close();

 private:
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::vector<std::optional<Guard>> guards_;
  std::vector<std::thread> threads_;
  std::atomic<unsigned> next_{0};
};

}  // namespace tscb::daemon
