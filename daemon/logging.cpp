#include "daemon/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace tscb::daemon {

bool SetUpLogging(const std::string& level) {
  // Lines are written by a background thread, so no network thread waits on
  // a write(2) per callback. A full queue blocks rather than dropping lines.
  spdlog::init_thread_pool(16384, 1);
  auto logger = spdlog::create_async<spdlog::sinks::stderr_sink_mt>("ts-callbackd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::set_default_logger(logger);
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::warn);
  return true;
}

void ShutDownLogging() { spdlog::shutdown(); }

}  // namespace tscb::daemon
