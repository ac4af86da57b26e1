#pragma once
// Reading one series out of a Prometheus text scrape (the daemon's /metrics,
// or Metrics::Serialize() in process).
#include <sstream>
#include <string>

namespace tscb::testing {

// The value of one series (name with its labels) in a /metrics scrape; -1
// when it is not there.
inline double MetricSample(const std::string& scrape, const std::string& series) {
  std::istringstream in(scrape);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

}  // namespace tscb::testing
