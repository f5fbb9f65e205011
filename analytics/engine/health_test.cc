#include "analytics/engine/health.h"

#include <gtest/gtest.h>

namespace respscope::engine {
namespace {

TEST(Health, Score) {
  Rates good;
  good.hit_rate = 0.95;
  good.p99_ms = 1;
  EXPECT_EQ(ComputeHealth(good, 10, true, nullptr), 100);
  EXPECT_EQ(ComputeHealth(good, 10, false, nullptr), 0);
  Rates bad = good;
  bad.hit_rate = 0.2;
  bad.error_rate = 0.5;
  bad.p99_ms = 100;
  std::vector<std::string> reasons;
  EXPECT_EQ(ComputeHealth(bad, 10, true, &reasons), 10);
  EXPECT_EQ(reasons.size(), 3u);
  Rates none;  // no lookups: hit rate does not count
  EXPECT_EQ(ComputeHealth(none, 10, true, nullptr), 100);
}

Snapshot WithHits(int64_t wall_ms, uint64_t hits, uint64_t misses) {
  Snapshot s;
  s.wall_ms = wall_ms;
  s.stats.patterns["user:{id}"].hits = hits;
  s.stats.patterns["user:{id}"].misses = misses;
  return s;
}

TEST(Alerts, ForDurationAndCooldown) {
  AlertEvaluator ev;
  ev.SetRules({{"low_hit_rate", "hit_rate", "user:*", false, 0.8, 5'000, 20'000, "warning"}});
  RecentWindow w(10);
  uint64_t hits = 0, misses = 0;
  auto tick = [&](int64_t t, uint64_t h, uint64_t m) {
    hits += h;
    misses += m;
    Snapshot s = WithHits(t, hits, misses);
    w.Observe(s);
    return ev.Evaluate(s, w);
  };
  EXPECT_TRUE(tick(0, 10, 0).empty());
  EXPECT_TRUE(tick(1000, 1, 9).empty());       // hit rate drops: pending
  int64_t t = 1000;
  std::vector<FiringAlert> f;
  while (f.empty() && t < 60'000) f = tick(t += 1000, 0, 10);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_GE(t, 6000);  // held for 5 s
  EXPECT_EQ(f[0].name, "low_hit_rate");
  EXPECT_EQ(f[0].severity, "warning");
  // Recovers: resolves, then the cooldown holds off an immediate re-fire.
  while (!f.empty() && t < 120'000) f = tick(t += 1000, 100, 0);
  int64_t resolved = t;
  EXPECT_LT(resolved, 120'000);
  while (f.empty() && t < 200'000) f = tick(t += 1000, 0, 100);
  EXPECT_GE(t - resolved, 20'000);
}

TEST(Alerts, JobFailureRate) {
  AlertEvaluator ev;
  ev.SetRules({{"jobs", "job_failure_rate", "*", true, 0.1, 0, 0, "critical"}});
  RecentWindow w(60);
  Snapshot s;
  s.wall_ms = 0;
  QueueMetrics q;
  q.queue = "email";
  s.queues = {q};
  w.Observe(s);
  EXPECT_TRUE(ev.Evaluate(s, w).empty());
  s.wall_ms = 1000;
  s.queues[0].transitions = {{"completed", 5}, {"failed", 5}};
  w.Observe(s);
  auto f = ev.Evaluate(s, w);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_DOUBLE_EQ(f[0].value, 0.5);
}

}  // namespace
}  // namespace respscope::engine

namespace respscope::engine {
namespace {

TEST(Health, StatusFromScoreUpstreamAndFindings) {
  std::vector<Finding> none;
  EXPECT_EQ(HealthStatus(100, true, none, nullptr), "healthy");
  EXPECT_EQ(HealthStatus(70, true, none, nullptr), "degraded");
  EXPECT_EQ(HealthStatus(40, true, none, nullptr), "unhealthy");
  EXPECT_EQ(HealthStatus(100, false, none, nullptr), "unhealthy");
  std::vector<Finding> info = {{"cold_cache", "info", "user:{id}", 0, 60, {}, {}, ""}};
  std::vector<std::string> reasons;
  EXPECT_EQ(HealthStatus(100, true, info, &reasons), "healthy");
  EXPECT_TRUE(reasons.empty());
  std::vector<Finding> warn = {{"keys_command", "warning", "keys", 0, 60, {}, {}, ""}};
  EXPECT_EQ(HealthStatus(100, true, warn, &reasons), "degraded");
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0], "warning: keys_command on keys");
  std::vector<Finding> crit = {{"job_failures", "critical", "email", 0, 60, {}, {}, ""}};
  EXPECT_EQ(HealthStatus(100, true, crit, nullptr), "unhealthy");
}

}  // namespace
}  // namespace respscope::engine

namespace respscope::engine {
namespace {

AlertRule Rule(const char* name, const char* metric, const char* selector, double threshold,
               const char* severity = "warning") {
  AlertRule r;
  r.name = name;
  r.metric = metric;
  r.selector = selector;
  r.threshold = threshold;
  r.severity = severity;
  return r;
}

TEST(Alerts, QueueUpstreamMemoryAndInsightMetrics) {
  AlertEvaluator ev;
  ev.SetRules({Rule("backlog", "queue_backlog", "email", 100),
               Rule("stalled", "stalled_jobs", "*", 0),
               Rule("slow", "slow_jobs", "*", 60),
               Rule("down", "upstream_down", "*", 0, "critical"),
               Rule("memory", "memory_used_ratio", "*", 0.9),
               Rule("findings", "insight", "job_*", 0, "critical")});
  RecentWindow window;
  Snapshot s;
  s.wall_ms = 1000;
  QueueMetrics q;
  q.queue = "email";
  q.depth["waiting"] = 10;
  s.queues = {q};
  s.redis.up = true;
  s.redis.used_memory = 50;
  s.redis.maxmemory = 100;
  window.Observe(s);
  EXPECT_TRUE(ev.Evaluate(s, window).empty());
  s.wall_ms = 2000;
  s.queues[0].depth["waiting"] = 500;
  s.queues[0].transitions["stalled"] = 2;
  s.queues[0].process.count = 2;
  s.queues[0].process.sum_seconds = 200;
  s.upstream_up = false;
  s.redis.used_memory = 95;
  s.insights = {{"job_failures", "critical", "email", 0, 60, {}, {}, ""},
                {"job_failures", "warning", "other", 0, 60, {}, {}, ""},
                {"keys_command", "critical", "keys", 0, 60, {}, {}, ""}};
  auto firing = ev.Evaluate(s, window);
  std::map<std::string, double> by_name;
  for (const auto& a : firing) by_name[a.name] = a.value;
  EXPECT_EQ(by_name.at("backlog"), 500);
  EXPECT_EQ(by_name.at("stalled"), 2);
  EXPECT_EQ(by_name.at("slow"), 100);
  EXPECT_EQ(by_name.at("down"), 1);
  EXPECT_DOUBLE_EQ(by_name.at("memory"), 0.95);
  EXPECT_EQ(by_name.at("findings"), 1);  // one critical job_* finding
  // Transitions for the notifier.
  auto events = AlertTransitions({}, firing, 2000);
  EXPECT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].status, "firing");
  auto resolved = AlertTransitions(firing, {}, 3000);
  EXPECT_EQ(resolved.size(), 6u);
  EXPECT_EQ(resolved[0].status, "resolved");
  // No maxmemory: no data, so the memory alert keeps its state (neither starts nor resolves).
  Snapshot t = s;
  t.wall_ms = 3000;
  t.redis.maxmemory = 0;
  for (const auto& a : ev.Evaluate(t, window)) by_name[a.name + "2"] = a.value;
  EXPECT_TRUE(by_name.count("memory2"));
}

}  // namespace
}  // namespace respscope::engine
