// libFuzzer: spool file contents through the record scanner (a torn or
// corrupt file must stop the scan cleanly), what it accepts must encode
// back to the same bytes, and a resync after damage lands on a whole record.
#include <cstdint>
#include <string>
#include <string_view>

#include "handlers/spool_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto scan = tscb::handlers::ScanSpool(bytes);
  if (scan.valid_bytes > size) __builtin_trap();
  std::string again;
  for (const auto& r : scan.records) tscb::handlers::EncodeSpoolRecord(r.record, again);
  if (again != bytes.substr(0, scan.valid_bytes)) __builtin_trap();
  // Resuming after damage lands on a record the scanner accepts.
  if (!scan.stopped.empty()) {
    std::size_t next = tscb::handlers::FindSpoolRecord(bytes, scan.valid_bytes + 1);
    if (next != std::string_view::npos &&
        (next <= scan.valid_bytes ||
         tscb::handlers::ScanSpool(bytes.substr(next), 1).records.empty()))
      __builtin_trap();
  }
  return 0;
}
