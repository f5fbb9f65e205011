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
  std::map<std::string, double> evidence;      // numbers
  std::map<std::string, std::string> details;  // words (command, pattern, trend, ...)
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
  std::string trend;  // improving | stable | degrading
};

// /api/v1/correlations: what changed most between a latency spike's window and the windows
// before it.
struct CorrelationRow {
  std::string name;
  double rate = 0, baseline_rate = 0;                    // calls (or commands, jobs) per second
  double time_ms_per_s = 0, baseline_time_ms_per_s = 0;  // commands and patterns only
  double extra = 0;  // extra time in ms per second (commands, patterns), else extra rate
};
struct Correlation {
  bool found = false;
  int64_t from_ms = 0, to_ms = 0;
  // The spike's window (the peak of a spike spanning several windows) and the median p99 of
  // the windows before the spike began.
  double p99_ms = 0, baseline_p99_ms = 0;
  int baseline_windows = 0;
  std::vector<CorrelationRow> commands, patterns, clients, queues;  // most extra first
};

// Severity order: info < warning < error < critical (0..3; unknown: -1).
int SeverityRank(std::string_view severity);

}  // namespace respscope::engine
