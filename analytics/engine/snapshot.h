// Snapshot: the engine's immutable view of everything, rebuilt every second (and on
// scrape). Shared as shared_ptr<const Snapshot>; readers (admin HTTP, metrics, exports) never
// touch a recorder shard.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analytics/engine/external.h"
#include "analytics/engine/finding.h"
#include "analytics/recorder/stats.h"

namespace respscope::engine {

struct HotKey {
  std::string key;  // sanitised
  std::string pattern;
  uint64_t count = 0;  // estimate (>= sampled truth); see recorder/space_saving.h
  uint64_t error = 0;  // count - error <= sampled truth
};

// Rates over a recent window (`window_s` seconds, up to one minute).
struct Rates {
  double window_s = 0;
  uint64_t commands = 0, errors = 0, hits = 0, misses = 0;
  double commands_per_s = 0, errors_per_s = 0;
  double hit_rate = -1;   // -1 when there were no lookups
  double error_rate = 0;  // errors / commands
  double p50_ms = 0, p99_ms = 0;
};

struct FiringAlert {
  std::string name, severity, metric, selector;
  double value = 0, threshold = 0;
  int64_t since_ms = 0;  // unix ms when it started firing
};

struct Snapshot {
  int64_t wall_ms = 0;     // unix epoch ms when taken
  int64_t uptime_s = 0;
  uint64_t sequence = 0;   // increments with every refresh

  recorder::StatsView stats;       // cumulative, merged across shards; patterns folded to the
                                   // bounded set
  recorder::Histogram all_latency;  // every non-blocking command, cumulative
  uint64_t commands = 0, errors = 0, hits = 0, misses = 0;  // cumulative totals
  std::vector<HotKey> hot_keys;                 // top K, highest count first
  std::vector<recorder::SlowEntry> slow_log;    // newest first
  Rates recent;

  int health_score = 100;
  std::vector<std::string> health_reasons;
  std::string health_status = "healthy";  // healthy | degraded | unhealthy (engine/health.h)
  std::vector<Finding> insights;    // most severe first (engine/insights.h)
  std::vector<Baseline> baselines;  // latency baselines per command / pattern
  std::vector<FiringAlert> alerts;
  bool upstream_up = true;
  uint64_t slow_threshold_ns = 0;
  double sample_rate = 1.0;

  RedisInfo redis;
  PoolMetrics pool;
  std::vector<QueueMetrics> queues;
};

}  // namespace respscope::engine
