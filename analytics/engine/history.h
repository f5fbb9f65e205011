// Trend history (two rings of rates) and the short sliding window behind "recent" rates,
// health and alerts. Engine thread only (the Engine serialises access).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "analytics/engine/snapshot.h"
#include "analytics/recorder/histogram.h"

namespace respscope::engine {

struct HistoryPoint {
  int64_t wall_ms = 0;  // end of the interval
  double seconds = 0;   // its length
  uint64_t commands = 0, errors = 0, hits = 0, misses = 0;
  double p50_ms = 0, p99_ms = 0;
  double commands_per_s() const { return seconds > 0 ? commands / seconds : 0; }
  double errors_per_s() const { return seconds > 0 ? errors / seconds : 0; }
  double hit_rate() const { return hits + misses ? double(hits) / double(hits + misses) : -1; }
};

struct HistoryOptions {
  int fine_step_s = 10;
  int fine_points = 360;    // 1 h
  int coarse_step_s = 60;
  int coarse_points = 1440;  // 24 h
};

class History {
 public:
  explicit History(HistoryOptions options = {});
  // Feed cumulative totals; closes an interval when a step boundary has passed.
  void Observe(const Snapshot& s);
  // Points ending in [from_ms, to_ms], from the fine ring when step_s < coarse step and the
  // range is covered by it, else the coarse ring; consecutive points are summed into steps of
  // `step_s` (p50 weighted by commands, p99 the maximum: an upper bound).
  std::vector<HistoryPoint> Query(int64_t from_ms, int64_t to_ms, int step_s) const;
  const HistoryOptions& options() const { return options_; }

 private:
  struct Level {
    int step_s;
    size_t capacity;
    std::deque<HistoryPoint> points;
    bool has_base = false;
    int64_t base_ms = 0;
    uint64_t commands = 0, errors = 0, hits = 0, misses = 0;
    recorder::Histogram latency;
  };
  void ObserveLevel(Level& level, const Snapshot& s);
  HistoryOptions options_;
  Level fine_, coarse_;
};

// Sliding window of one-second cumulative readings; gives deltas over the last `span_s`.
class RecentWindow {
 public:
  explicit RecentWindow(int span_s = 60) : span_s_(span_s) {}
  void Observe(const Snapshot& s);
  Rates Compute(const Snapshot& now) const;
  // Hit rate of patterns matching `glob` over the window; -1 without lookups.
  double PatternHitRate(const Snapshot& now, const std::string& glob) const;
  // failed / (completed + failed) over the window for queues matching `glob`; -1 if none.
  double JobFailureRate(const Snapshot& now, const std::string& glob) const;
  // Stalled jobs over the window of the queues matching `glob`; -1 when no queue matches.
  double StalledJobs(const Snapshot& now, const std::string& glob) const;
  // Mean processing seconds of the jobs finished over the window; -1 without any.
  double MeanProcessSeconds(const Snapshot& now, const std::string& glob) const;

 private:
  struct Sample {
    int64_t wall_ms = 0;
    uint64_t commands = 0, errors = 0;
    recorder::Histogram latency;
    std::map<std::string, std::pair<uint64_t, uint64_t>> lookups;  // pattern -> hits, misses
    struct Jobs {
      uint64_t completed = 0, failed = 0, stalled = 0, processed = 0;
      double process_seconds = 0;
    };
    std::map<std::string, Jobs> jobs;  // per queue, cumulative
  };
  // Per-queue deltas over the window, summed over the queues matching `glob`; false when no
  // queue matches.
  bool JobsSince(const Snapshot& now, const std::string& glob, Sample::Jobs* out) const;
  const Sample* Oldest() const { return samples_.empty() ? nullptr : &samples_.front(); }
  // Hits and misses over the window of the patterns matching `glob` (every pattern if null).
  std::pair<uint64_t, uint64_t> LookupsSince(const Snapshot& now, const std::string* glob) const;
  int span_s_;
  std::deque<Sample> samples_;
};

}  // namespace respscope::engine
