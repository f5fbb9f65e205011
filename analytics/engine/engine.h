// Engine: merges the recorder shards into an immutable Snapshot every `interval` (and on
// demand, e.g. on scrape), keeps the recent window and the trend history, computes health and
// alerts, and feeds Metrics.
//
// Thread: Start() runs one engine thread. Every public method is thread-safe; Refresh()
// and the periodic tick are serialised by an internal mutex (never taken on the data path).
// Current() is cheap (copies a shared_ptr under a small lock).
// Lifetime: the shards must outlive the Engine (or at least Stop()).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "analytics/engine/external.h"
#include "analytics/engine/health.h"
#include "analytics/engine/history.h"
#include "analytics/engine/insights.h"
#include "analytics/engine/metrics.h"
#include "analytics/engine/snapshot.h"
#include "analytics/recorder/recorder.h"

namespace respscope::engine {

struct EngineOptions {
  std::chrono::milliseconds interval{1000};
  uint64_t slow_threshold_ns = 10'000'000;  // for health (p99 vs threshold)
  size_t top_keys = 20;
  size_t slow_log_size = 128;               // merged slow log length
  size_t max_patterns = 1000;               // merged pattern names; beyond: folded into "other"
  double sample_rate = 1.0;                 // reported with hot keys (counts are sampled)
  HistoryOptions history;
  std::vector<AlertRule> alerts;
  InsightOptions insights;
};

class Engine {
 public:
  Engine(EngineOptions options, std::vector<std::shared_ptr<recorder::Recorder>> shards);
  ~Engine();  // Stop()

  void Start();
  void Stop();

  // Merges now and publishes a new snapshot. `periodic` ticks also advance the recent window,
  // history and alerts; on-demand refreshes (scrapes) only re-read the counters.
  std::shared_ptr<const Snapshot> Refresh(bool periodic = false);
  std::shared_ptr<const Snapshot> Current() const;

  // Refresh, then render /metrics.
  std::string ScrapeMetrics();
  Metrics& metrics() { return metrics_; }

  // /api/v1/correlations (engine/insights.h Insights::Correlate).
  Correlation Correlate(int64_t at_ms) const;

  std::vector<HistoryPoint> QueryHistory(int64_t from_ms, int64_t to_ms, int step_s) const;

  // Fed by other modules (any thread).
  void UpdateQueues(std::vector<QueueMetrics> queues);
  void UpdateRedis(RedisInfo info);
  void SetUpstreamUp(bool up);
  // When set, read at every merge instead of the last SetUpstreamUp(): the one flag /readyz
  // answers from, so respscope_upstream_up and readiness never disagree.
  void SetUpstreamUpSource(std::function<bool()> source);
  // Read at every merge and scrape (on the engine's or the scraper's thread).
  void SetPoolSource(std::function<PoolMetrics()> source);
  // Same, for a redis+sentinel:// upstream (unset otherwise: no respscope_sentinel_* series).
  void SetSentinelSource(std::function<SentinelMetrics()> source);
  void SetAlertRules(std::vector<AlertRule> rules);  // SIGHUP
  void SetSampleRate(double rate);                   // SIGHUP
  // Called on the engine thread with each periodic tick's alert transitions (firing,
  // resolved); it must not block (the notifier only queues them).
  void SetAlertListener(std::function<void(const std::vector<AlertEvent>&)> listener);

 private:
  void Run();
  void Build(Snapshot& s);
  void FoldPatterns(recorder::StatsView& stats);

  const EngineOptions options_;
  const std::vector<std::shared_ptr<recorder::Recorder>> shards_;
  const std::chrono::steady_clock::time_point started_;
  Metrics metrics_;

  mutable std::mutex mu_;  // merge state below
  History history_;
  RecentWindow window_;
  AlertEvaluator alerts_;
  Insights insights_;
  std::vector<Finding> findings_;
  std::vector<Baseline> baselines_;
  std::vector<FiringAlert> firing_;
  std::function<void(const std::vector<AlertEvent>&)> alert_listener_;
  std::set<std::string, std::less<>> admitted_patterns_;
  std::vector<QueueMetrics> queues_;
  RedisInfo redis_;
  bool upstream_up_ = true;
  std::function<bool()> upstream_up_source_;
  std::function<PoolMetrics()> pool_source_;
  std::function<SentinelMetrics()> sentinel_source_;
  double sample_rate_;
  uint64_t sequence_ = 0;

  mutable std::mutex current_mu_;
  std::shared_ptr<const Snapshot> current_;

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace respscope::engine
