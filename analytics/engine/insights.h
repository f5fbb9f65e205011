// Insights: findings that say what is wrong and what to do, computed from the engine's
// snapshots (never on the data plane). Sans-IO: fed one Snapshot per periodic tick, returns the
// current findings; unit-tested with synthetic snapshots (insights_test.cc).
//
// A finding is {kind, severity, subject, since, evidence, recommendation}. It is re-derived on
// every tick from the evidence of the last `window`: when the evidence is gone, the finding is
// gone; `since` is kept while the same (kind, subject) stays found.
//
// Every subject comes from an already-sanitised source (pattern names from the bounded pattern
// set, hot keys from the sanitised hot-key list, command names from the command table, queue
// labels from the jobs module, client names from the recorder's sanitised client list).
//
// Memory: one small cumulative reading per sample (a sample every window/12, at least every
// tick), plus, for latency_regression, one histogram per tracked command / pattern (at most
// InsightOptions::max_latency_subjects of each) and a ring of per-window p95 values.
// Thread: engine thread only (the Engine serialises access).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "analytics/engine/finding.h"
#include "analytics/engine/snapshot.h"
#include "analytics/recorder/histogram.h"

namespace respscope::engine {

struct InsightOptions {
  // insights.enabled: false computes no finding (the Engine does not call Evaluate) and the
  // recorder keeps no key-lifetime or read-run evidence.
  bool enabled = true;
  int64_t window_ms = 60'000;  // evidence window (sliding); also the baseline window
  // keys_command: any KEYS call in the window; full reads (SMEMBERS, HGETALL, LRANGE, ZRANGE,
  // ...) whose reply is at least full_scan_bytes.
  uint64_t full_scan_bytes = 64 * 1024;
  // big_value: a pattern's bytes per call (in + out) over the window.
  uint64_t big_value_bytes = 100 * 1024;
  uint64_t big_value_min_calls = 5;
  // hot_key: one key's share of all keyed commands over the window.
  double hot_key_share = 0.3;  // info; warning at twice the share
  uint64_t hot_key_min_commands = 100;
  std::vector<std::string> hot_key_ignore_prefixes{"bull"};  // job queues' own keys
  // low_hit_rate: hit rate below this over at least min_lookups lookups (critical below half).
  double low_hit_rate = 0.5;
  uint64_t min_lookups = 100;
  // cold_cache: a low hit rate within `warmup_ms` of start or of a FLUSHALL / FLUSHDB.
  int64_t warmup_ms = 300'000;
  // queue_backlog: waiting jobs at least this many and grown over the window while fewer jobs
  // completed than were added.
  int64_t backlog_min_waiting = 100;
  // slow_jobs: mean processing time over the window (seed 003: 60 s warning, 120 s critical).
  double slow_job_s = 60, very_slow_job_s = 120;
  // job_failures: failed / finished over the window (seed 003: 25% warning, 50% critical).
  double job_failure_warning = 0.25, job_failure_critical = 0.5;
  uint64_t min_jobs = 10;
  // latency_regression: per tumbling window p95 of each command / pattern with at least
  // regression_min_calls calls; baseline from the first baseline_windows windows (seed 003:
  // 10), then followed by windows that did not regress. Regressed when p95 is more than
  // regression_ratio above the baseline and by at least regression_min_ms.
  int baseline_windows = 10;
  double regression_ratio = 0.10;
  double regression_min_ms = 1.0;
  uint64_t regression_min_calls = 20;
  size_t max_latency_subjects = 100;
  // connection_churn: connections opened per command over the window.
  double churn_connections_per_command = 0.5;
  uint64_t churn_min_connections = 20;
  // no_ttl_pattern: a pattern's distinct keys written without an expiry grew by at least this
  // many over the window, net of its deletes, while fewer expiries than half the new keys were
  // given (critical at 100 times it). Patterns under hot_key_ignore_prefixes (the queues' own
  // keys) are left to unbounded_job_history.
  uint64_t no_ttl_min_keys = 1000;
  // n_plus_one: at least this many single-key reads of one pattern in runs of sequential reads
  // (see recorder::RecorderOptions::run_min_reads) over the window.
  uint64_t n_plus_one_min_reads = 200;
  // unbounded_job_history: a queue's completed (or failed) set holds at least this many jobs
  // and grew over the window while most of its jobs are kept (critical at 100 times it).
  uint64_t job_history_min_jobs = 1000;
};

class Insights {
 public:
  explicit Insights(InsightOptions options = {});
  // One periodic tick; returns the findings, most severe first, then by kind and subject.
  std::vector<Finding> Evaluate(const Snapshot& s);
  std::vector<Baseline> Baselines() const;
  // The window containing `at_ms` (0: the latest window whose p99 is more than twice the
  // median of the windows before it) against up to 10 windows before it.
  Correlation Correlate(int64_t at_ms) const;
  const InsightOptions& options() const { return options_; }

 private:
  // The median p99 of the (up to) 10 correlation windows before window i.
  double MedianP99Before(size_t i) const;
  struct PatternReading {
    uint64_t calls = 0, hits = 0, misses = 0, bytes = 0, reads = 0, bytes_out = 0;
    uint64_t no_ttl_writes = 0, ttl_sets = 0, deletes = 0;
    double no_ttl_keys = 0;
    uint64_t runs = 0, run_reads = 0, run_gap_ns = 0;
  };
  struct QueueReading {
    uint64_t added = 0, completed = 0, failed = 0, stalled = 0, process_count = 0;
    double process_sum = 0;
    int64_t waiting = -1, completed_depth = -1, failed_depth = -1;
    int64_t oldest_runnable_ms = -1;
    uint64_t adds_read = 0, adds_keep_completed = 0, adds_keep_failed = 0;
    uint64_t completed_read = 0, completed_keep_all = 0, failed_read = 0, failed_keep_all = 0;
  };
  struct Reading {
    int64_t wall_ms = 0;
    uint64_t commands = 0, keys_calls = 0, flushes = 0, connections_opened = 0;
    std::map<std::string, PatternReading, std::less<>> patterns;
    std::map<std::string, uint64_t, std::less<>> hot_keys;
    std::map<std::string, QueueReading, std::less<>> queues;
    std::map<std::string, uint64_t, std::less<>> clients;
    std::map<std::string, uint64_t, std::less<>> full_reads;  // calls of whole-collection reads
  };
  struct Series {  // latency_regression state of one command or pattern
    recorder::Histogram at_boundary;
    std::deque<double> p95;  // closed windows with enough calls, newest last (bounded)
    double baseline = 0;
    int baseline_n = 0;
    bool regressed = false;
    double last_p95 = 0;
    uint64_t last_calls = 0;
  };

  struct Totals {  // cumulative, at a window boundary
    std::map<std::string, std::pair<uint64_t, uint64_t>, std::less<>> commands, patterns;
    std::map<std::string, uint64_t, std::less<>> clients, queues;  // commands; jobs added
  };
  struct WindowStats {  // one closed window's deltas (calls, ns)
    int64_t from_ms = 0, to_ms = 0;
    double p99_ms = 0;
    Totals delta;
  };
  static Totals ReadTotals(const Snapshot& s);
  void CloseCorrelationWindow(const Snapshot& s);

  Reading Read(const Snapshot& s) const;
  bool Ignored(std::string_view pattern) const;  // under hot_key_ignore_prefixes
  void PatternLifecycleFindings(const std::string& name, const PatternReading& p,
                                const PatternReading& pb, const recorder::PatternView& view,
                                std::vector<Finding>& out, double window_s) const;
  void JobHistoryFinding(const std::string& name, const QueueReading& q, const QueueReading& qb,
                         std::vector<Finding>& out, double window_s) const;
  const Reading* Base(int64_t now_ms) const;
  void CloseLatencyWindow(const Snapshot& s);
  void CloseSeries(Series& series, const recorder::Histogram& now);
  void LatencyFindings(const std::map<std::string, Series, std::less<>>& all, const char* scope,
                       std::vector<Finding>& out) const;

  InsightOptions options_;
  std::deque<Reading> readings_;
  int64_t last_flush_ms_ = -1;
  uint64_t last_flushes_ = 0;
  int64_t boundary_ms_ = -1;
  std::map<std::string, Series, std::less<>> command_series_, pattern_series_;
  std::map<std::string, int64_t> since_;
  Totals totals_at_boundary_;
  recorder::Histogram all_at_boundary_;
  int64_t correlation_from_ms_ = -1;
  std::deque<WindowStats>
      windows_;  // newest last, at most 60  // kind + '\0' + subject -> first seen
};

}  // namespace respscope::engine
