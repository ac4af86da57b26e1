#include "handlers/spool_format.hpp"

#include <algorithm>
#include <boost/crc.hpp>
#include <cstring>

namespace tscb::handlers {
namespace {

constexpr char kMagic[4] = {'T', 'S', 'P', '1'};

void PutU32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutString(std::string& out, const std::string& s) {
  PutU32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

std::uint32_t Crc(std::string_view data) {
  boost::crc_32_type crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

// Reads fields from a payload; any read past its end marks it bad.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  std::uint64_t Int(int bytes) {
    if (bad_ || data_.size() - pos_ < static_cast<std::size_t>(bytes)) {
      bad_ = true;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    pos_ += static_cast<std::size_t>(bytes);
    return v;
  }
  std::string String() {
    auto n = static_cast<std::size_t>(Int(4));
    if (bad_ || data_.size() - pos_ < n) {
      bad_ = true;
      return {};
    }
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool Done() const { return !bad_ && pos_ == data_.size(); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
  bool bad_ = false;
};

}  // namespace

void EncodeSpoolRecord(const storage::InboxRecord& r, std::string& out, std::int64_t received_us) {
  std::string payload;
  for (const std::string* s : {&r.service, &r.source_ip, &r.dedup_key, &r.body_json, &r.request_id,
                               &r.device_id, &r.device_kind})
    PutString(payload, *s);
  PutU32(payload, static_cast<std::uint32_t>(r.attempt));
  PutU64(payload, static_cast<std::uint64_t>(r.received_us ? r.received_us : received_us));
  out.append(kMagic, sizeof kMagic);
  PutU32(out, static_cast<std::uint32_t>(payload.size()));
  PutU32(out, Crc(payload));
  out += payload;
}

SpoolScan ScanSpool(std::string_view data, std::size_t max_records) {
  SpoolScan scan;
  std::size_t pos = 0;
  while (pos < data.size() && scan.records.size() < max_records) {
    std::string_view rest = data.substr(pos);
    if (rest.size() < kSpoolHeaderBytes) {
      scan.stopped = "a record header cut short";
      break;
    }
    if (std::memcmp(rest.data(), kMagic, sizeof kMagic) != 0) {
      scan.stopped = "no record marker";
      break;
    }
    Reader header(rest.substr(4, 8));
    auto length = static_cast<std::uint32_t>(header.Int(4));
    auto crc = static_cast<std::uint32_t>(header.Int(4));
    if (length > kSpoolMaxPayload) {
      scan.stopped = "a record length out of range";
      break;
    }
    if (rest.size() - kSpoolHeaderBytes < length) {
      scan.stopped = "a record cut short";
      break;
    }
    std::string_view payload = rest.substr(kSpoolHeaderBytes, length);
    if (Crc(payload) != crc) {
      scan.stopped = "a checksum mismatch";
      break;
    }
    Reader in(payload);
    SpoolRecord out;
    storage::InboxRecord& r = out.record;
    for (std::string* s : {&r.service, &r.source_ip, &r.dedup_key, &r.body_json, &r.request_id,
                           &r.device_id, &r.device_kind})
      *s = in.String();
    r.attempt = static_cast<int>(in.Int(4));
    r.received_us = static_cast<std::int64_t>(in.Int(8));
    if (!in.Done()) {
      scan.stopped = "a record whose fields do not add up";
      break;
    }
    out.offset = pos;
    pos += kSpoolHeaderBytes + length;
    out.end = pos;
    scan.records.push_back(std::move(out));
  }
  scan.valid_bytes = pos;
  return scan;
}

std::size_t FindSpoolRecord(std::string_view data, std::size_t from, std::size_t limit) {
  const std::string_view magic(kMagic, sizeof kMagic);
  limit = std::min(limit, data.size());
  for (std::size_t at = data.find(magic, from); at != std::string_view::npos && at < limit;
       at = data.find(magic, at + 1)) {
    if (!ScanSpool(data.substr(at), 1).records.empty()) return at;
  }
  return std::string_view::npos;
}

}  // namespace tscb::handlers
