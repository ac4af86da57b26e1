#include "daemon/spool.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "daemon/thread_name.hpp"
#include "handlers/spool_format.hpp"

namespace tscb::daemon {
namespace {

// Every valid record starts within a chunk and fits in it whole.
constexpr std::size_t kChunk = handlers::kSpoolMaxPayload + handlers::kSpoolHeaderBytes;
// What Check() and Next() read at a time: a record that starts in the first
// kChunk bytes of a window is in it whole.
constexpr std::size_t kWindow = 2 * kChunk;
constexpr std::size_t kReadAhead = 4 * 1024 * 1024;  // what Next() reads first

std::int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// pread until `n` bytes or the end of the file.
std::string ReadAt(int fd, std::uint64_t offset, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, out.data() + got, n - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw std::runtime_error(Errno("spool: read"));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  out.resize(got);
  return out;
}

}  // namespace

Spool::Spool(std::string path, std::uint64_t max_bytes, Metrics* metrics)
    : path_(std::move(path)), max_bytes_(max_bytes), metrics_(metrics) {
  std::filesystem::path dir = std::filesystem::path(path_).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("spool: cannot create " + dir.string() + ": " + ec.message());
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
  }
  fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error(Errno("spool: cannot open " + path_));
  // The file's name must survive a crash too: sync the folder once.
  int dir_fd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  Check();
}

Spool::~Spool() {
  if (fd_ >= 0) close(fd_);
}

void Spool::Check() {
  struct stat st {};
  if (fstat(fd_, &st) != 0) throw std::runtime_error(Errno("spool: stat " + path_));
  const auto file_size = static_cast<std::uint64_t>(st.st_size);
  std::uint64_t offset = 0;
  std::string stopped;
  auto window = [&] {
    return ReadAt(fd_, offset,
                  static_cast<std::size_t>(std::min<std::uint64_t>(kWindow, file_size - offset)));
  };
  while (offset < file_size) {
    std::string chunk = window();
    auto scan = handlers::ScanSpool(chunk);
    for (const auto& r : scan.records)
      if (pending_++ == 0) oldest_us_ = r.record.received_us;
    offset += scan.valid_bytes;
    if (scan.stopped.empty()) continue;
    // A record cut short by the window, not by the file: read on from it.
    const std::uint64_t rest = chunk.size() - scan.valid_bytes;
    if (offset + rest < file_size && rest < kChunk) continue;
    // Damage, or a torn tail: whole records after it mean damage.
    std::uint64_t skip = 0;
    {
      std::string from_here = window();
      const bool to_end = offset + from_here.size() == file_size;
      std::size_t next =
          handlers::FindSpoolRecord(from_here, 1, to_end ? from_here.size() : kChunk);
      if (next == std::string::npos && to_end) {
        stopped = scan.stopped;
        break;
      }
      skip = next == std::string::npos ? kChunk : next;
      std::lock_guard lock(mu_);
      SkipDamageLocked(offset, std::string_view(from_here).substr(0, skip), scan.stopped, true);
    }
    offset += skip;
  }
  if (!stopped.empty()) {
    spdlog::warn(
        "spool: {}: {} byte(s) at offset {} are not a whole record ({}); they were being written "
        "when the daemon stopped, were never acknowledged, and are discarded",
        path_, file_size - offset, offset, stopped);
    if (ftruncate(fd_, static_cast<off_t>(offset)) != 0 || fdatasync(fd_) != 0)
      throw std::runtime_error(Errno("spool: cannot cut the torn tail of " + path_));
  }
  size_ = offset;
  if (pending_ > 0)
    spdlog::warn(
        "spool: {} holds {} callback(s) ({} bytes) from a previous run; moving them into "
        "the inbox",
        path_, pending_, size_);
  std::lock_guard lock(mu_);
  PublishLocked();
}

void Spool::SkipDamageLocked(std::uint64_t offset, std::string_view bytes, const std::string& why,
                             bool followed) {
  holes_.emplace_back(offset, offset + bytes.size());
  // The damaged bytes were acknowledged records once: keep them for the
  // operator instead of dropping them.
  const std::string keep = path_ + ".damaged";
  bool kept = false;
  int fd = open(keep.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    kept = write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
           fdatasync(fd) == 0;
    close(fd);
  }
  spdlog::error(
      "spool: {}: {} damaged byte(s) at offset {} ({}){}; the records in them cannot be read "
      "and are skipped; {}",
      path_, bytes.size(), offset, why, followed ? ", followed by whole records" : "",
      kept ? "the bytes were appended to " + keep : "they could not be saved to " + keep);
  if (metrics_) metrics_->CountSpoolDamaged(bytes.size());
}

bool Spool::Append(std::span<const storage::InboxRecord> records, std::string& error) {
  std::string data;
  const std::int64_t now = NowMicros();
  std::int64_t first_us = 0;
  for (const auto& r : records) {
    handlers::EncodeSpoolRecord(r, data, now);  // no copy of the body to stamp it
    if (first_us == 0) first_us = r.received_us ? r.received_us : now;
  }
  std::lock_guard lock(mu_);
  auto count = [&](const char* result) {
    if (metrics_) metrics_->CountSpoolAppend(result, records.size());
  };
  if (size_ + data.size() > max_bytes_) {
    error = "the spool is full (" + std::to_string(size_) + " of " + std::to_string(max_bytes_) +
            " bytes)";
    count("full");
    return false;
  }
  std::size_t written = 0;
  while (written < data.size()) {
    ssize_t n = pwrite(fd_, data.data() + written, data.size() - written,
                       static_cast<off_t>(size_ + written));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    written += static_cast<std::size_t>(n);
  }
  bool ok = written == data.size();
  if (ok && fdatasync(fd_) != 0) ok = false;
  if (!ok) {
    error = Errno("cannot write the spool " + path_);
    // Nothing of a failed append may stay: it was not acknowledged.
    if (ftruncate(fd_, static_cast<off_t>(size_)) != 0)
      spdlog::error("spool: cannot remove a failed append from {}: {}", path_,
                    std::strerror(errno));
    count("error");
    return false;
  }
  size_ += data.size();
  if (pending_ == 0) oldest_us_ = first_us;
  pending_ += records.size();
  count("ok");
  PublishLocked();
  return true;
}

bool Spool::HasPending() const {
  std::lock_guard lock(mu_);
  return pending_ > 0;
}

std::vector<storage::InboxRecord> Spool::Next(std::size_t max, std::uint64_t& end) {
  std::vector<storage::InboxRecord> out;
  for (;;) {
    std::uint64_t from, stop;
    {
      std::lock_guard lock(mu_);
      from = drained_;
      stop = size_;
      for (const auto& [begin, past] : holes_) {
        if (begin <= from)
          from = std::max(from, past);
        else {
          stop = std::min(stop, begin);
          break;
        }
      }
    }
    end = from;
    if (from >= stop) return out;
    // Appends only add after `size_`, and only Moved() (this thread) moves
    // `drained_`, so the bytes read here do not change underneath.
    auto read = [&](std::size_t n) {
      return ReadAt(fd_, from, static_cast<std::size_t>(std::min<std::uint64_t>(n, stop - from)));
    };
    std::string data = read(kReadAhead);
    auto scan = handlers::ScanSpool(data, max);
    if (scan.records.empty() && !scan.stopped.empty() && from + data.size() < stop) {
      data = read(kWindow);  // a large record, or damage: look at a whole window
      scan = handlers::ScanSpool(data, max);
    }
    for (auto& r : scan.records) out.push_back(std::move(r.record));
    end = from + scan.valid_bytes;
    if (!out.empty()) {
      std::lock_guard lock(mu_);
      oldest_us_ = out.front().received_us;
      return out;
    }
    if (scan.stopped.empty()) return out;
    // The first record is damaged (it was whole when it was appended).
    const bool to_end = from + data.size() == stop;
    std::size_t next = handlers::FindSpoolRecord(data, 1, to_end ? data.size() : kChunk);
    std::size_t skip = next != std::string::npos ? next : to_end ? data.size() : kChunk;
    std::lock_guard lock(mu_);
    SkipDamageLocked(from, std::string_view(data).substr(0, skip), scan.stopped,
                     next != std::string::npos);
    std::sort(holes_.begin(), holes_.end());
  }
}

void Spool::Moved(std::uint64_t end, std::size_t n) {
  std::lock_guard lock(mu_);
  drained_ = std::max(drained_, end);
  while (!holes_.empty() && holes_.front().second <= drained_) holes_.erase(holes_.begin());
  pending_ = pending_ >= n ? pending_ - n : 0;
  if (drained_ >= size_) {
    // Everything is in the inbox. If this cut is lost in a crash, the
    // records are moved again and found to be duplicates.
    if (ftruncate(fd_, 0) != 0)
      spdlog::error("spool: cannot empty {}: {}", path_, std::strerror(errno));
    size_ = 0;
    drained_ = 0;
    pending_ = 0;
    oldest_us_ = 0;
    holes_.clear();
  }
  if (metrics_ && n > 0) metrics_->CountSpoolDrained(n);
  PublishLocked();
}

Spool::Stats Spool::GetStats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.bytes = size_;
  s.records = pending_;
  if (pending_ > 0 && oldest_us_ > 0)
    s.oldest_seconds = std::max(0.0, static_cast<double>(NowMicros() - oldest_us_) / 1e6);
  return s;
}

void Spool::PublishLocked() {
  if (!metrics_) return;
  metrics_->SetSpool(static_cast<double>(size_), static_cast<double>(pending_), oldest_us_);
}

SpoolDrainer::SpoolDrainer(Spool& spool, StoreFactory factory, Metrics* metrics)
    : spool_(spool), factory_(std::move(factory)), metrics_(metrics) {}

SpoolDrainer::~SpoolDrainer() { Stop(); }

void SpoolDrainer::Start() {
  thread_ = std::thread([this] {
    NameThisThread("tscb-spool");
    Run();
  });
}

void SpoolDrainer::Stop() {
  {
    std::lock_guard lock(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SpoolDrainer::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void SpoolDrainer::Run() {
  std::unique_ptr<storage::InboxStore> store;
  bool failing = false;
  std::uint64_t moved = 0;
  auto last_progress = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (quit_) return;
      if (!spool_.HasPending()) {
        cv_.wait_for(lock, std::chrono::seconds(1), [&] { return quit_ || woken_; });
        woken_ = false;
        continue;
      }
    }
    std::uint64_t end = 0;
    std::vector<storage::InboxRecord> records;
    try {
      records = spool_.Next(500, end);
      if (records.empty()) {
        // Nothing readable before `end` (damage was skipped): past it.
        spool_.Moved(end, 0);
        std::unique_lock lock(mu_);
        if (spool_.HasPending())
          cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return quit_; });
        continue;
      }
      if (!store) store = factory_();
      store->InsertBatch(records, storage::Announce::kNow);
    } catch (const std::exception& e) {
      if (!failing)
        spdlog::warn("spool: cannot move callbacks into the inbox yet ({}); retrying every second",
                     e.what());
      failing = true;
      store.reset();
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return quit_; });
      continue;
    }
    failing = false;
    spool_.Moved(end, records.size());
    moved += records.size();
    auto stats = spool_.GetStats();
    auto now = std::chrono::steady_clock::now();
    if (stats.records == 0 || now - last_progress > std::chrono::seconds(5)) {
      spdlog::info("spool: moved {} callback(s) into the inbox; {} left", moved, stats.records);
      last_progress = now;
      if (stats.records == 0) moved = 0;
    }
  }
}

}  // namespace tscb::daemon
