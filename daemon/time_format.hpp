#pragma once
// UTC timestamps as ISO 8601 text ("2026-11-27T18:30:00Z") for JSON bodies.
#include <chrono>
#include <ctime>
#include <string>

namespace tscb::daemon {

inline std::string IsoUtc(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace tscb::daemon
