// libFuzzer: a config file through the loader (YAML, every key, durations,
// CIDRs, URLs). Secrets come from a fixed environment, never from files.
#include <cstdint>
#include <string>

#include "config/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto env = [](const std::string&) -> std::optional<std::string> { return "secret"; };
  // No base folder: relative secret files cannot be read (no I/O besides
  // absolute paths a fuzzer is unlikely to name).
  auto result = tscb::config::LoadConfigText(text, "fuzz.yaml", "/nonexistent", env);
  if (result.config && !result.errors.empty()) __builtin_trap();
  return 0;
}
