#pragma once
// The local spool's record format (DESIGN.md section 2: callbacks that could
// not be committed to PostgreSQL are appended to a file, fsync'd, and only
// then acknowledged). Pure encoding and decoding; the file itself is
// daemon/spool.
//
// A record:  "TSP1" | u32 payload length | u32 CRC-32 of the payload | payload
// (integers little-endian). The payload holds the inbox record's fields, each
// a u32 length and its bytes, then the attempt (u32) and the arrival time
// (u64, microseconds since 1970). A record that is cut short or whose CRC does
// not match ends the valid part of a file. At the end of a file it can only
// be the tail of a write that a crash interrupted, which was never
// acknowledged; followed by valid records it is damage (FindSpoolRecord
// finds where they resume).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/inbox.hpp"

namespace tscb::handlers {

inline constexpr std::size_t kSpoolHeaderBytes = 12;
inline constexpr std::uint32_t kSpoolMaxPayload = 16 * 1024 * 1024;

// Appends one encoded record to `out`; `received_us` (when not 0) stands
// in for a record that has no arrival time yet.
void EncodeSpoolRecord(const storage::InboxRecord& record, std::string& out,
                       std::int64_t received_us = 0);

struct SpoolRecord {
  storage::InboxRecord record;
  std::uint64_t offset = 0;  // where it starts in the data
  std::uint64_t end = 0;     // where the next one starts
};

struct SpoolScan {
  std::vector<SpoolRecord> records;  // the valid ones, in order
  std::uint64_t valid_bytes = 0;     // everything before this is whole records
  std::string stopped;               // why the scan stopped early; "" at a clean end
};

// Decodes records from `data` (which starts at a record boundary), at most
// `max_records` of them. Never throws and never reads past `data`.
SpoolScan ScanSpool(std::string_view data, std::size_t max_records = SIZE_MAX);

// Where the next whole, valid record starts at or after `from` in `data`,
// looking only at starts before `limit` (a record must fit in `data` whole);
// npos when there is none. This is how a scan resumes after damage in the
// middle of a file: the bytes in between are not records.
std::size_t FindSpoolRecord(std::string_view data, std::size_t from, std::size_t limit = SIZE_MAX);

}  // namespace tscb::handlers
