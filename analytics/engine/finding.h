// What the insights module finds (analytics/engine/insights.h), as carried by a Snapshot.
// Plain values.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace respscope::engine {

struct Finding {
  std::string kind;
  std::string severity;  // info | warning | critical
  std::string subject;
  int64_t since_ms = 0;
  double window_s = 0;
  std::map<std::string, double> evidence;        // numbers
  std::map<std::string, std::string> details;    // words (command, pattern, trend, ...)
  std::string recommendation;
};

// A latency baseline of one command or pattern (for the dashboard's trend column).
struct Baseline {
  std::string scope;  // command | pattern
  std::string subject;
  double baseline_p95_ms = 0, last_p95_ms = 0;
  int windows = 0;
  bool established = false;  // after InsightOptions::baseline_windows windows
  bool regressed = false;
  std::string trend;         // improving | stable | degrading
};

// Severity order: info < warning < error < critical (0..3; unknown: -1).
int SeverityRank(std::string_view severity);

}  // namespace respscope::engine
