#pragma once
// Readiness: the database answers, its schema is the one this binary
// expects, the callback listener is bound, and the daemon is not stopping.
// A thread probes the database every `interval` on its own connection so
// that /readyz never waits on PostgreSQL. Thread-safe.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace tscb::daemon {

struct HealthReport {
  bool ready = false;
  bool listener_bound = false;
  bool database_ok = false;
  bool schema_current = false;
  bool stopping = false;
  int schema_version = 0;
  int schema_expected = 0;
  std::string database_error;  // last probe error, "" when fine
};

class Health {
 public:
  Health(std::string connection_string, std::chrono::milliseconds interval);
  ~Health();

  void Start();
  void Stop();
  void SetListenerBound() { listener_bound_ = true; }
  void SetStopping() { stopping_ = true; }
  HealthReport Report() const;
  // Probes once, now, on the calling thread (start-up and tests).
  void ProbeNow();

 private:
  void Run();

  std::string connection_string_;
  std::chrono::milliseconds interval_;
  std::atomic<bool> listener_bound_{false};
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool database_ok_ = false;
  int schema_version_ = 0;
  std::string database_error_;
  std::thread thread_;
};

}  // namespace tscb::daemon
