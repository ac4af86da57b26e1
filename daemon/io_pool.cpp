#include "daemon/io_pool.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <string>

#include "daemon/thread_name.hpp"

namespace tscb::daemon {

IoPool::IoPool(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    // Concurrency hint 1: each context is run by exactly one thread.
    contexts_.push_back(std::make_unique<asio::io_context>(1));
    guards_.emplace_back(asio::make_work_guard(*contexts_.back()));
  }
}

IoPool::~IoPool() { Close(); }

asio::any_io_executor IoPool::Next() {
  auto i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
  return contexts_[i]->get_executor();
}

void IoPool::Start() {
  for (std::size_t i = 0; i < contexts_.size(); ++i)
    threads_.emplace_back([c = contexts_[i].get(), i] {
      NameThisThread("tscb-net" + std::to_string(i));
      c->run();
    });
}

void IoPool::Release() {
  for (auto& guard : guards_) guard.reset();
}

void IoPool::Stop() {
  Release();
  for (auto& context : contexts_) context->stop();
}

void IoPool::Join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void IoPool::Close() {
  Stop();
  Join();
  guards_.clear();
  contexts_.clear();
}

}  // namespace tscb::daemon
