// tscb-body-bench: the CPU cost of reading one callback body (parse, the
// canonical text, the dedup key, the stored copy: handlers/ParseCallbackBody),
// which every callback pays on a network thread. Prints microseconds per
// body, best of 5 rounds:
//   tscb-load --print-body | tscb-body-bench - [ITERATIONS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "handlers/callback_body.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: tscb-body-bench FILE|- [ITERATIONS (1..100000000)]\n"
                 "  tscb-load --print-body | tscb-body-bench -\n";
    return 2;
  }
  std::ostringstream text;
  if (std::string(argv[1]) == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(argv[1], std::ios::binary);
    if (!in) {
      std::cerr << "tscb-body-bench: cannot read " << argv[1] << "\n";
      return 2;
    }
    text << in.rdbuf();
  }
  std::string raw = text.str();
  while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.pop_back();
  const long n = argc > 2 ? std::atol(argv[2]) : 200000;
  if (n <= 0 || n > 100'000'000) {
    std::cerr << "tscb-body-bench: ITERATIONS must be 1..100000000\n";
    return 2;
  }
  if (!tscb::handlers::ParseCallbackBody("CarrierService", raw).body) {
    std::cerr << "tscb-body-bench: the body is not a storable JSON object\n";
    return 2;
  }
  double best = 1e300;
  std::size_t sink = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i)
      sink += tscb::handlers::ParseCallbackBody("CarrierService", raw).body->dedup_key.size();
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / static_cast<double>(n));
  }
  std::printf("{\"body_bytes\":%zu,\"us_per_body\":%.3f}\n", raw.size(), best);
  return sink == 0;  // (uses the keys, so the loop is not optimised away)
}
