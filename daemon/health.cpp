#include "daemon/health.hpp"

#include "daemon/thread_name.hpp"
#include "storage/pg/migrator.hpp"
#include "storage/pg/schema_probe.hpp"

namespace tscb::daemon {

Health::Health(std::string connection_string, std::chrono::milliseconds interval)
    : connection_string_(std::move(connection_string)), interval_(interval) {}

Health::~Health() { Stop(); }

void Health::Start() {
  thread_ = std::thread([this] {
    NameThisThread("tscb-health");
    Run();
  });
}

void Health::Stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Health::Run() {
  storage::pg::SchemaProbe probe(connection_string_);
  std::unique_lock lock(mu_);
  while (!quit_) {
    lock.unlock();
    auto state = probe.Check();
    lock.lock();
    database_ok_ = state.error.empty();
    schema_version_ = state.current;
    database_error_ = state.error;
    cv_.wait_for(lock, interval_, [&] { return quit_; });
  }
}

void Health::ProbeNow() {
  storage::pg::SchemaProbe probe(connection_string_);
  auto state = probe.Check();
  std::lock_guard lock(mu_);
  database_ok_ = state.error.empty();
  schema_version_ = state.current;
  database_error_ = state.error;
}

HealthReport Health::Report() const {
  HealthReport r;
  r.listener_bound = listener_bound_;
  r.stopping = stopping_;
  r.schema_expected = storage::pg::LatestSchemaVersion();
  {
    std::lock_guard lock(mu_);
    r.database_ok = database_ok_;
    r.schema_version = schema_version_;
    r.database_error = database_error_;
  }
  r.schema_current = r.database_ok && r.schema_version == r.schema_expected;
  r.ready = r.listener_bound && r.database_ok && r.schema_current && !r.stopping;
  return r;
}

}  // namespace tscb::daemon
