#include "daemon/stats_sampler.hpp"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "daemon/thread_name.hpp"

namespace tscb::daemon {

std::chrono::milliseconds CountSpacing(std::chrono::milliseconds interval,
                                       std::chrono::steady_clock::duration took) {
  return std::max(interval, std::chrono::ceil<std::chrono::milliseconds>(took * 20));
}

StatsSampler::StatsSampler(StoreFactory factory, std::chrono::milliseconds interval,
                           Metrics& metrics)
    : factory_(std::move(factory)), interval_(interval), metrics_(metrics) {}

StatsSampler::~StatsSampler() { Stop(); }

void StatsSampler::Start() {
  thread_ = std::thread([this] {
    NameThisThread("tscb-stats");
    Run();
  });
}

void StatsSampler::Stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StatsSampler::Run() {
  std::unique_ptr<storage::ProcessingStore> store;
  bool failing = false;
  auto count_at = std::chrono::steady_clock::now();  // the next count by state
  bool spaced = false;                               // said that counts are spaced
  std::unique_lock lock(mu_);
  while (!quit_) {
    lock.unlock();
    try {
      if (!store) store = factory_();
      const auto start = std::chrono::steady_clock::now();
      const bool by_state = start >= count_at;
      metrics_.SetStats(store->Begin()->Stats(by_state));
      if (by_state) {
        const auto took = std::chrono::steady_clock::now() - start;
        const auto spacing = CountSpacing(interval_, took);
        count_at = start + spacing;
        if (spacing > interval_ && !spaced) {
          spaced = true;  // said once: the tables only grow until retention trims them
          spdlog::info(
              "stats: counting requests and actions by state took {} ms, so they are counted "
              "less often than every {} s, at most a twentieth of the time "
              "(tscb_stats_by_state_sampled_timestamp_seconds says when)",
              std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
              interval_.count() / 1000.0);
        }
      }
      if (failing) spdlog::info("stats: sampling the database works again");
      failing = false;
    } catch (const std::exception& e) {
      // The database being away is reported by readiness and the inbox
      // writers; here once, and the gauges keep their last values (their
      // sample time says how old they are).
      if (!failing) spdlog::warn("stats: cannot sample the database: {}", e.what());
      failing = true;
      store.reset();
    }
    ReturnFreeMemory();
    lock.lock();
    cv_.wait_for(lock, interval_, [&] { return quit_; });
  }
}

void StatsSampler::ReturnFreeMemory() {
  // A burst of handshakes or large bodies leaves free chunks in the middle
  // of malloc's heaps, which glibc keeps; resident memory would then show
  // the peak for ever (10,000 idle TLS connections opened in one burst:
  // 470 MiB before, see bench/README.md). malloc_trim gives whole free pages
  // back; it takes each arena's lock briefly.
  const auto start = std::chrono::steady_clock::now();
  malloc_trim(0);
  const auto took = std::chrono::steady_clock::now() - start;
  const struct mallinfo2 heap = mallinfo2();
  metrics_.SetHeap(static_cast<double>(heap.uordblks), static_cast<double>(heap.fordblks),
                   static_cast<double>(heap.hblkhd));
  if (took > std::chrono::milliseconds(20))
    spdlog::debug("memory: malloc_trim took {} ms",
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
}

}  // namespace tscb::daemon
