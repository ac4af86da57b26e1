#pragma once
// The outbox dispatcher (DESIGN.md sections 2, 3 and 6). Claims due queued
// actions (FOR UPDATE SKIP LOCKED: several dispatchers in several daemons
// never take the same row), each with a lease, committed before anything is
// sent. Sends them through the ThingSpace client (http.post through a plain
// HTTPS client), then records the answer: succeeded with the response and
// returned requestId, failed on a final error, queued again with backoff on
// a retryable one until actions.max_attempts (then dead). An action that is
// not safe to repeat and may have been carried out (timeout, 5xx) goes to
// needs_review instead of being sent twice; so does an unsafe action found
// in flight past its lease (its daemon died mid-call), while a safe one is
// simply queued again. A returned requestId becomes a pending request whose
// origin is the action, in the same transaction, so its callbacks are
// correlated and can fire the next rule of the chain.
//
// Runs on the ThingSpace worker's io_context; database work on a thread of
// its own.
#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "daemon/db_worker.hpp"
#include "daemon/https_client.hpp"
#include "daemon/metrics.hpp"
#include "daemon/thingspace_client.hpp"
#include "handlers/backoff.hpp"
#include "storage/processing.hpp"

namespace tscb::daemon {

class Dispatcher {
 public:
  using StoreFactory = DbWorker::StoreFactory;
  Dispatcher(const config::Config& config, StoreFactory factory, Metrics* metrics);
  ~Dispatcher();

  // Until Stop(). `client` may be null (no thingspace section): ThingSpace
  // actions then fail with that reason; http.post still works.
  asio::awaitable<void> Run(ThingSpaceClient* client);
  // Actions were planned: look now rather than at the next poll. Any thread.
  void Wake();
  // No new claims; Drain() waits for the calls in flight.
  void Stop();
  asio::awaitable<void> Drain(std::chrono::milliseconds timeout);

 private:
  asio::awaitable<void> Execute(storage::OutboxAction action, ThingSpaceClient* client);
  asio::awaitable<void> Recover();
  struct Finished;
  // One transaction: records `done` (and the pending requests their
  // requestIds start), then claims up to `room` due actions.
  asio::awaitable<std::vector<storage::OutboxAction>> Round(const std::vector<Finished>& done,
                                                            int room);
  // `done` could not be recorded: logged and counted; their leases decide.
  void Report(const std::vector<Finished>& done, std::exception_ptr error);

  const config::Config& config_;
  DbWorker db_;
  Metrics* metrics_;
  std::string owner_;  // host:pid, the lease holder's name
  handlers::Backoff backoff_;
  // How long an action the client refused unsent (circuit open) waits.
  std::chrono::milliseconds not_sent_wait_;
  std::mt19937_64 rng_;
  std::unique_ptr<HttpsClient> http_;  // http.post; made in Run() on its executor
  int in_flight_ = 0;                  // claimed and not yet recorded (io thread only)
  int calling_ = 0;                    // calls under way (io thread only)
  struct Finished {
    storage::OutboxAction action;
    storage::ActionResult result;
    std::string body;
  };
  std::vector<Finished> finished_;  // answers waiting for the next round (io thread)
  std::atomic<bool> stopping_{false};
  std::atomic<bool> woken_{false};
  Alarm alarm_;
};

}  // namespace tscb::daemon
