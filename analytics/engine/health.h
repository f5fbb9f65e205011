// Health score and alert rules. Pure functions / a small state machine; engine thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "analytics/engine/history.h"
#include "analytics/engine/snapshot.h"

namespace respscope::engine {

// 0-100 from the recent window: starts at 100 and loses up to 30 points each for a low hit
// rate (below 0.9; all 30 at 0.4), the error rate (all 30 at 10%), and p99 above half the
// slow threshold (all 30 at twice the threshold). Upstream down: 0. Reasons say why.
int ComputeHealth(const Rates& recent, double slow_threshold_ms, bool upstream_up,
                  std::vector<std::string>* reasons);

// healthy / degraded / unhealthy (seeds 003, 004): unhealthy when the upstream is down, the
// score is below 50 or a critical finding stands; degraded when the score is below 80 or a
// warning finding stands; else healthy. Each standing warning or critical finding adds a
// reason ("<kind> on <subject>") to `reasons`.
std::string HealthStatus(int score, bool upstream_up, const std::vector<Finding>& findings,
                         std::vector<std::string>* reasons);

// Mapped by the app from config::AlertRule: selector = pattern (or queue for
// job_failure_rate), above = (comparison == kAbove), for_ms/cooldown_ms from the durations.
// Every metric is evaluated over the engine's recent window (one minute); queue_backlog
// (waiting jobs), upstream_down and memory_used_ratio are gauges read as they are; insight
// counts the standing findings of the selected kinds at the rule's severity or above.
struct AlertRule {
  std::string name;
  // hit_rate | error_rate | p99_latency | job_failure_rate | queue_backlog | stalled_jobs |
  // slow_jobs | upstream_down | memory_used_ratio | insight
  std::string metric;
  std::string selector = "*"; // glob over patterns (hit_rate), queues (job metrics) or finding
                              // kinds (insight); error_rate and p99_latency are evaluated
                              // globally for now (errors are not counted per pattern)
  bool above = true;          // fire when value > threshold (false: value < threshold)
  double threshold = 0;       // ratio for rates, seconds for p99_latency and slow_jobs, a
                              // count for queue_backlog, stalled_jobs and insight
  int64_t for_ms = 0;         // condition must hold this long
  int64_t cooldown_ms = 0;    // after resolving, do not fire again for this long
  std::string severity = "warning";
};

// An alert's transition, handed to the notifier: "firing" when it starts firing, "resolved"
// when it stops (alert is then as it was last seen firing: its last value and since_ms).
struct AlertEvent {
  std::string status;  // firing | resolved
  FiringAlert alert;
  int64_t time_ms = 0;
};

// The transitions between two firing sets (by alert name).
std::vector<AlertEvent> AlertTransitions(const std::vector<FiringAlert>& before,
                                         const std::vector<FiringAlert>& after, int64_t now_ms);

class AlertEvaluator {
 public:
  void SetRules(std::vector<AlertRule> rules);
  const std::vector<AlertRule>& rules() const { return rules_; }
  // Evaluates every rule at `now.wall_ms`; returns the firing set. A metric with no data
  // (no lookups, no jobs) neither starts nor resolves an alert.
  std::vector<FiringAlert> Evaluate(const Snapshot& now, const RecentWindow& window);

 private:
  struct State {
    int64_t pending_since = -1;
    int64_t firing_since = -1;
    int64_t resolved_at = -1;
  };
  std::vector<AlertRule> rules_;
  std::map<std::string, State> state_;
};

}  // namespace respscope::engine
