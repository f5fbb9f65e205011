#include "analytics/engine/health.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "analytics/patterns/glob.h"

namespace respscope::engine {
namespace {
double Clamp01(double v) { return std::clamp(v, 0.0, 1.0); }
}  // namespace

int ComputeHealth(const Rates& recent, double slow_threshold_ms, bool upstream_up,
                  std::vector<std::string>* reasons) {
  if (!upstream_up) {
    if (reasons) reasons->push_back("upstream down");
    return 0;
  }
  double score = 100;
  char buf[128];
  if (recent.hit_rate >= 0 && recent.hit_rate < 0.9) {
    score -= 30 * Clamp01((0.9 - recent.hit_rate) / 0.5);
    std::snprintf(buf, sizeof(buf), "hit rate %.1f%%", recent.hit_rate * 100);
    if (reasons) reasons->push_back(buf);
  }
  if (recent.error_rate > 0) {
    score -= 30 * Clamp01(recent.error_rate / 0.10);
    std::snprintf(buf, sizeof(buf), "error rate %.2f%%", recent.error_rate * 100);
    if (reasons && recent.error_rate >= 0.001) reasons->push_back(buf);
  }
  if (slow_threshold_ms > 0 && recent.p99_ms > slow_threshold_ms / 2) {
    score -= 30 * Clamp01((recent.p99_ms - slow_threshold_ms / 2) / (1.5 * slow_threshold_ms));
    std::snprintf(buf, sizeof(buf), "p99 %.2f ms vs slow threshold %.2f ms", recent.p99_ms,
                  slow_threshold_ms);
    if (reasons) reasons->push_back(buf);
  }
  return static_cast<int>(std::lround(std::clamp(score, 0.0, 100.0)));
}

std::string HealthStatus(int score, bool upstream_up, const std::vector<Finding>& findings,
                         std::vector<std::string>* reasons) {
  int worst = -1;
  for (const Finding& f : findings) {
    int rank = SeverityRank(f.severity);
    if (rank < SeverityRank("warning")) continue;
    worst = std::max(worst, rank);
    if (reasons) reasons->push_back(f.severity + ": " + f.kind + " on " + f.subject);
  }
  if (!upstream_up || score < 50 || worst >= SeverityRank("critical")) return "unhealthy";
  if (score < 80 || worst >= SeverityRank("warning")) return "degraded";
  return "healthy";
}

std::vector<AlertEvent> AlertTransitions(const std::vector<FiringAlert>& before,
                                         const std::vector<FiringAlert>& after, int64_t now_ms) {
  std::vector<AlertEvent> out;
  auto has = [](const std::vector<FiringAlert>& set, const std::string& name) {
    return std::any_of(set.begin(), set.end(), [&](const FiringAlert& a) { return a.name == name; });
  };
  for (const auto& a : after) {
    if (!has(before, a.name)) out.push_back({"firing", a, now_ms});
  }
  for (const auto& a : before) {
    if (!has(after, a.name)) out.push_back({"resolved", a, now_ms});
  }
  return out;
}

void AlertEvaluator::SetRules(std::vector<AlertRule> rules) {
  rules_ = std::move(rules);
  std::map<std::string, State> kept;
  for (const auto& r : rules_) {
    if (auto it = state_.find(r.name); it != state_.end()) kept[r.name] = it->second;
  }
  state_ = std::move(kept);
}

std::vector<FiringAlert> AlertEvaluator::Evaluate(const Snapshot& now, const RecentWindow& window) {
  std::vector<FiringAlert> firing;
  const int64_t t = now.wall_ms;
  for (const AlertRule& rule : rules_) {
    double value = -1;
    if (rule.metric == "hit_rate") {
      value = window.PatternHitRate(now, rule.selector.empty() ? "*" : rule.selector);
    } else if (rule.metric == "error_rate") {
      value = now.recent.commands ? now.recent.error_rate : -1;
    } else if (rule.metric == "p99_latency") {
      value = now.recent.commands ? now.recent.p99_ms / 1000.0 : -1;
    } else if (rule.metric == "job_failure_rate") {
      value = window.JobFailureRate(now, rule.selector.empty() ? "*" : rule.selector);
    } else if (rule.metric == "stalled_jobs") {
      value = window.StalledJobs(now, rule.selector.empty() ? "*" : rule.selector);
    } else if (rule.metric == "slow_jobs") {
      value = window.MeanProcessSeconds(now, rule.selector.empty() ? "*" : rule.selector);
    } else if (rule.metric == "queue_backlog") {
      bool any = false;
      int64_t waiting = 0;
      for (const auto& q : now.queues) {
        auto it = q.depth.find("waiting");
        if (it == q.depth.end() || !patterns::GlobMatch(rule.selector, q.queue)) continue;
        any = true;
        waiting += it->second;
      }
      value = any ? static_cast<double>(waiting) : -1;
    } else if (rule.metric == "upstream_down") {
      value = now.upstream_up ? 0 : 1;
    } else if (rule.metric == "memory_used_ratio") {
      value = now.redis.up && now.redis.maxmemory > 0
                  ? double(now.redis.used_memory) / double(now.redis.maxmemory)
                  : -1;
    } else if (rule.metric == "insight") {
      int n = 0;
      for (const auto& f : now.insights) {
        if (SeverityRank(f.severity) >= SeverityRank(rule.severity) &&
            patterns::GlobMatch(rule.selector, f.kind)) {
          ++n;
        }
      }
      value = n;
    }
    State& st = state_[rule.name];
    if (value >= 0) {
      bool cond = rule.above ? value > rule.threshold : value < rule.threshold;
      if (cond) {
        if (st.pending_since < 0) st.pending_since = t;
        bool cooled = st.resolved_at < 0 || t - st.resolved_at >= rule.cooldown_ms;
        if (st.firing_since < 0 && t - st.pending_since >= rule.for_ms && cooled) {
          st.firing_since = t;
        }
      } else {
        st.pending_since = -1;
        if (st.firing_since >= 0) {
          st.firing_since = -1;
          st.resolved_at = t;
        }
      }
    }
    if (st.firing_since >= 0) {
      firing.push_back({rule.name, rule.severity, rule.metric, rule.selector, value,
                        rule.threshold, st.firing_since});
    }
  }
  return firing;
}

}  // namespace respscope::engine
