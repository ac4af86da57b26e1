// libFuzzer: spool file contents through the record scanner (a torn or
// corrupt file must stop the scan cleanly), and what it accepts must
// encode back to the same bytes.
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
  return 0;
}
