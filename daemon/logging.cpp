#include "daemon/logging.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace tscb::daemon {
namespace {

// Lines to stderr or a file, fully buffered. spdlog's own sinks flush after
// every line, which is one write(2) per callback on the hot path. Here lines
// collect in a 64 KiB buffer and are written when it fills, on the periodic
// flush (every second), or at once for warnings and worse.
class BufferedLineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  BufferedLineSink() { std::setvbuf(stderr, stderr_buffer_, _IOFBF, sizeof stderr_buffer_); }
  ~BufferedLineSink() override {
    std::lock_guard lock(mutex_);
    CloseFile();
    std::fflush(stderr);
  }

  // "" = stderr. On failure the current destination stays.
  std::string Open(const std::string& path) {
    std::lock_guard lock(mutex_);
    if (path.empty()) {
      CloseFile();
      return "";
    }
    std::FILE* f = std::fopen(path.c_str(), "ae");
    if (!f) return "log.file " + path + ": " + std::strerror(errno);
    std::setvbuf(f, nullptr, _IOFBF, 64 * 1024);
    CloseFile();
    file_ = f;
    return "";
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), Out());
  }
  void flush_() override { std::fflush(Out()); }

 private:
  std::FILE* Out() const { return file_ ? file_ : stderr; }
  void CloseFile() {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

  char stderr_buffer_[64 * 1024];
  std::FILE* file_ = nullptr;
};

int SyslogPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LOG_DEBUG;
    case spdlog::level::info:
      return LOG_INFO;
    case spdlog::level::warn:
      return LOG_WARNING;
    case spdlog::level::err:
      return LOG_ERR;
    default:
      return LOG_CRIT;
  }
}

// One journal entry per line, through sd_journal_sendv: MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER and the fields JournalFields() finds in the message.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string_view text(msg.payload.data(), msg.payload.size());
    std::vector<std::string> items;
    items.reserve(4);
    items.push_back("MESSAGE=" + std::string(text));
    items.push_back("PRIORITY=" + std::to_string(SyslogPriority(msg.level)));
    items.emplace_back("SYSLOG_IDENTIFIER=ts-callbackd");
    for (auto& [key, value] : JournalFields(text)) items.push_back(key + "=" + value);
    std::vector<iovec> iov(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) iov[i] = {items[i].data(), items[i].size()};
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  }
  void flush_() override {}
};

// systemd sets JOURNAL_STREAM=<dev>:<inode> when stderr is the journal.
bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (!stream) return false;
  struct stat st {};
  if (fstat(2, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == static_cast<unsigned long long>(st.st_dev) &&
         ino == static_cast<unsigned long long>(st.st_ino);
}

std::shared_ptr<BufferedLineSink> g_line_sink;  // null under the journal

}  // namespace

std::vector<std::pair<std::string, std::string>> JournalFields(std::string_view message) {
  static constexpr std::array<std::string_view, 8> kKeys = {
      "service", "request_id", "inbox_id", "event_id", "rule", "action", "action_id", "device"};
  std::vector<std::pair<std::string, std::string>> fields;
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t end = message.find(' ', pos);
    if (end == std::string_view::npos) end = message.size();
    std::string_view token = message.substr(pos, end - pos);
    pos = end + 1;
    std::size_t eq = token.find('=');
    if (eq == std::string_view::npos || eq + 1 == token.size()) continue;
    std::string_view key = token.substr(0, eq);
    for (auto known : kKeys) {
      if (key != known) continue;
      std::string name(key);
      for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      std::string value(token.substr(eq + 1));
      while (!value.empty() && (value.back() == ',' || value.back() == ';' || value.back() == ')'))
        value.pop_back();
      if (!value.empty()) fields.emplace_back(std::move(name), std::move(value));
      break;
    }
  }
  return fields;
}

bool SetUpLogging(const std::string& level, const std::string& file) {
  std::shared_ptr<spdlog::logger> logger;
  if (file.empty() && StderrIsJournal()) {
    logger = std::make_shared<spdlog::logger>("ts-callbackd", std::make_shared<JournalSink>());
    logger->set_pattern("%v");
  } else {
    g_line_sink = std::make_shared<BufferedLineSink>();
    std::string error = g_line_sink->Open(file);
    logger = std::make_shared<spdlog::logger>("ts-callbackd", g_line_sink);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    if (!error.empty())
      std::fprintf(stderr, "ts-callbackd: %s; logging to stderr\n", error.c_str());
  }
  spdlog::set_default_logger(logger);
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  spdlog::set_level(parsed);
  spdlog::flush_on(spdlog::level::warn);
  spdlog::flush_every(std::chrono::seconds(1));
  return true;
}

std::string ReconfigureLogging(const config::LogConfig& log) {
  auto parsed = spdlog::level::from_str(log.level);
  if (parsed == spdlog::level::off && log.level != "off") return "unknown log level " + log.level;
  if (g_line_sink) {
    spdlog::default_logger()->flush();
    if (auto error = g_line_sink->Open(log.file); !error.empty()) return error;
  }
  spdlog::set_level(parsed);
  return "";
}

void ShutDownLogging() {
  spdlog::shutdown();
  g_line_sink.reset();
}

}  // namespace tscb::daemon
