#include "daemon/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <mutex>

namespace tscb::daemon {
namespace {

// stderr, fully buffered. spdlog's own stderr sink flushes after every line,
// which is one write(2) per callback on the hot path. Here lines collect in
// a 64 KiB buffer and reach stderr (the journal under systemd) when it
// fills, on the periodic flush (every second), or at once for warnings and worse.
class BufferedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  BufferedStderrSink() { std::setvbuf(stderr, buffer_, _IOFBF, sizeof buffer_); }
  ~BufferedStderrSink() override { std::fflush(stderr); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }

 private:
  char buffer_[64 * 1024];
};

}  // namespace

bool SetUpLogging(const std::string& level) {
  auto logger =
      std::make_shared<spdlog::logger>("ts-callbackd", std::make_shared<BufferedStderrSink>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  spdlog::set_default_logger(logger);
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds(1));
  return true;
}

void ShutDownLogging() { spdlog::shutdown(); }

}  // namespace tscb::daemon
