#include "analytics/engine/insights.h"

#include <gtest/gtest.h>

namespace respscope::engine {
namespace {

// A synthetic world: cumulative counters the test moves forward, one Snapshot per tick (1 s).
struct World {
  Snapshot s;
  World() {
    s.wall_ms = 1'000'000;
    s.uptime_s = 3600;  // warm unless a test says otherwise
  }
  void Tick() {
    s.wall_ms += 1000;
    s.uptime_s += 1;
  }
  recorder::PatternView& P(const std::string& name) { return s.stats.patterns[name]; }
  void Commands(const std::string& cmd, uint64_t n, uint64_t ns = 100'000) {
    auto& c = s.stats.commands[cmd];
    c.ok += n;
    c.latency.Record(ns, n);
    s.commands += n;
  }
  QueueMetrics& Q(const std::string& name) {
    for (auto& q : s.queues) {
      if (q.queue == name) return q;
    }
    s.queues.push_back({});
    s.queues.back().queue = name;
    return s.queues.back();
  }
};

InsightOptions Short() {
  InsightOptions o;
  o.window_ms = 5000;
  o.warmup_ms = 10'000;
  o.min_lookups = 10;
  o.min_jobs = 4;
  o.slow_job_s = 2;
  o.very_slow_job_s = 4;
  o.backlog_min_waiting = 10;
  o.hot_key_min_commands = 10;
  o.churn_min_connections = 5;
  o.regression_min_calls = 10;
  o.regression_min_ms = 1;
  return o;
}

const Finding* Find(const std::vector<Finding>& all, const std::string& kind,
                    const std::string& subject) {
  for (const auto& f : all) {
    if (f.kind == kind && f.subject == subject) return &f;
  }
  return nullptr;
}

TEST(Insights, KeysCommandAppearsThenClearsWhenTheWindowHasNoMore) {
  Insights in(Short());
  World w;
  EXPECT_TRUE(in.Evaluate(w.s).empty());
  w.Tick();
  w.Commands("keys", 3);
  auto f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "keys_command", "keys"), nullptr);
  EXPECT_EQ(Find(f, "keys_command", "keys")->evidence.at("calls"), 3);
  EXPECT_EQ(Find(f, "keys_command", "keys")->severity, "warning");
  int64_t since = Find(f, "keys_command", "keys")->since_ms;
  w.Tick();
  f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "keys_command", "keys"), nullptr);
  EXPECT_EQ(Find(f, "keys_command", "keys")->since_ms, since);  // the same finding
  for (int i = 0; i < 6; ++i) {
    w.Tick();
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "keys_command", "keys"), nullptr);
}

TEST(Insights, FullReadWithLargeRepliesIsAKeysCommandFindingOnThePattern) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  auto& p = w.P("tags:{id}");
  // The largest value was written (SADD of many members); the reads are SMEMBERS.
  p.big_values.push_back({"tags:1", "sadd", 250'000, w.s.wall_ms});
  for (int i = 0; i < 3; ++i) {
    w.Tick();
    p.read += 5;
    p.bytes_out += 5 * 200'000;
    w.Commands("smembers", 5);
    in.Evaluate(w.s);
  }
  auto f = in.Evaluate(w.s);
  const Finding* k = Find(f, "keys_command", "tags:{id}");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->details.at("command"), "smembers");
  EXPECT_EQ(Find(f, "big_value", "tags:{id}"), nullptr);  // said once, as the full read
  // GETs of big strings are big values, not scans, even while SMEMBERS runs elsewhere.
  auto& b = w.P("blob:{id}");
  b.big_values.push_back({"blob:1", "get", 300'000, w.s.wall_ms});
  w.Tick();
  b.read += 5;
  b.bytes_out += 5 * 300'000;
  w.Commands("smembers", 1);
  f = in.Evaluate(w.s);
  EXPECT_EQ(Find(f, "keys_command", "blob:{id}"), nullptr);
  EXPECT_NE(Find(f, "big_value", "blob:{id}"), nullptr);
}

TEST(Insights, BigValueByBytesPerCallOverTheWindow) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  auto& p = w.P("blob:{id}");
  p.big_values.push_back({"blob:1", "get", 300'000, w.s.wall_ms});
  w.Tick();
  p.read += 10;
  p.bytes_out += 10 * 300'000;
  auto f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "big_value", "blob:{id}"), nullptr);
  EXPECT_NEAR(Find(f, "big_value", "blob:{id}")->evidence.at("bytes_per_call"), 300'000, 1);
  // Then small values only: once the big calls leave the window, the finding clears.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    p.read += 100;
    p.bytes_out += 100 * 100;
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "big_value", "blob:{id}"), nullptr);
}

TEST(Insights, LowHitRateWhenWarmColdCacheAfterStartOrFlush) {
  InsightOptions o = Short();
  Insights in(o);
  World w;
  w.s.uptime_s = 1;  // just started
  in.Evaluate(w.s);
  auto& p = w.P("user:{id}");
  w.Tick();
  p.read += 20;
  p.hits += 2;
  p.misses += 18;
  auto f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "cold_cache", "user:{id}"), nullptr);
  EXPECT_EQ(Find(f, "cold_cache", "user:{id}")->severity, "info");
  EXPECT_EQ(Find(f, "cold_cache", "user:{id}")->details.at("cause"), "start");
  EXPECT_EQ(Find(f, "low_hit_rate", "user:{id}"), nullptr);
  // Past the warm-up, the same misses are a low hit rate.
  w.s.uptime_s = 100;
  w.Tick();
  p.hits += 2;
  p.misses += 18;
  f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "low_hit_rate", "user:{id}"), nullptr);
  EXPECT_EQ(Find(f, "low_hit_rate", "user:{id}")->severity, "critical");  // 10% < 25%
  // A flush starts a warm-up again.
  w.Tick();
  w.Commands("flushall", 1);
  p.misses += 20;
  f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "cold_cache", "user:{id}"), nullptr);
  EXPECT_EQ(Find(f, "cold_cache", "user:{id}")->details.at("cause"), "flush");
  // Hits come back: both clear.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    p.hits += 100;
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "cold_cache", "user:{id}"), nullptr);
  EXPECT_EQ(Find(f, "low_hit_rate", "user:{id}"), nullptr);
}

TEST(Insights, TooFewLookupsSayNothing) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  w.Tick();
  w.P("user:{id}").misses += 5;
  EXPECT_TRUE(in.Evaluate(w.s).empty());
}

TEST(Insights, HotKeyShareOfKeyedTrafficButNotQueueKeys) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  w.Tick();
  w.P("config:{id}").read += 80;
  w.P("user:{id}").read += 20;
  w.P("bull:email:{id}").read += 100;
  w.s.hot_keys = {{"bull:email:meta", "bull:email:{id}", 100, 0},
                  {"config:1", "config:{id}", 80, 0},
                  {"user:1", "user:{id}", 1, 0}};
  auto f = in.Evaluate(w.s);
  const Finding* h = Find(f, "hot_key", "config:1");
  ASSERT_NE(h, nullptr);
  EXPECT_NEAR(h->evidence.at("share"), 0.4, 1e-9);
  EXPECT_EQ(h->severity, "info");
  EXPECT_EQ(h->details.at("pattern"), "config:{id}");
  EXPECT_EQ(Find(f, "hot_key", "bull:email:meta"), nullptr);
  EXPECT_EQ(Find(f, "hot_key", "user:1"), nullptr);
}

TEST(Insights, QueueKinds) {
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  q.depth["waiting"] = 0;
  in.Evaluate(w.s);
  // Backlog: 50 added, 5 finished, waiting grows.
  w.Tick();
  q.transitions["added"] += 50;
  q.transitions["completed"] += 3;
  q.transitions["failed"] += 2;
  q.transitions["stalled"] += 1;
  q.process.count += 5;
  q.process.sum_seconds += 5 * 3.0;  // mean 3 s: slow (2 s), not very slow (4 s)
  q.depth["waiting"] = 45;
  auto f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "queue_backlog", "email"), nullptr);
  EXPECT_EQ(Find(f, "queue_backlog", "email")->evidence.at("waiting"), 45);
  ASSERT_NE(Find(f, "stalled_jobs", "email"), nullptr);
  ASSERT_NE(Find(f, "slow_jobs", "email"), nullptr);
  EXPECT_EQ(Find(f, "slow_jobs", "email")->severity, "warning");
  ASSERT_NE(Find(f, "job_failures", "email"), nullptr);
  EXPECT_EQ(Find(f, "job_failures", "email")->severity, "warning");  // 40%
  EXPECT_NEAR(Find(f, "job_failures", "email")->evidence.at("failure_rate"), 0.4, 1e-9);
  // Workers catch up with fast, successful jobs: everything clears.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    q.transitions["completed"] += 20;
    q.process.count += 20;
    q.process.sum_seconds += 20 * 0.01;
    q.depth["waiting"] = std::max<int64_t>(0, q.depth["waiting"] - 20);
    f = in.Evaluate(w.s);
  }
  EXPECT_TRUE(f.empty()) << f.front().kind;
}

TEST(Insights, BacklogWithNoWorkerAtAll) {
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  q.depth["waiting"] = 500;
  std::vector<Finding> f;
  for (int i = 0; i < 7; ++i) {
    f = in.Evaluate(w.s);
    w.Tick();
  }
  ASSERT_NE(Find(f, "queue_backlog", "email"), nullptr);
}

TEST(Insights, LatencyRegressionAfterTenWindowsWithTrend) {
  InsightOptions o = Short();
  o.window_ms = 1000;
  Insights in(o);
  World w;
  in.Evaluate(w.s);
  // Ten windows at 1 ms: the baseline (the window in which a command is first seen has no
  // known start and is not counted, hence eleven ticks).
  for (int i = 0; i < 11; ++i) {
    w.Tick();
    w.Commands("get", 100, 1'000'000);
    EXPECT_EQ(Find(in.Evaluate(w.s), "latency_regression", "get"), nullptr);
  }
  // A step to 5 ms: regressed, degrading.
  std::vector<Finding> f;
  for (int i = 0; i < 3; ++i) {
    w.Tick();
    w.Commands("get", 100, 5'000'000);
    f = in.Evaluate(w.s);
  }
  const Finding* r = Find(f, "latency_regression", "get");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->details.at("scope"), "command");
  EXPECT_EQ(r->details.at("trend"), "degrading");
  EXPECT_EQ(r->severity, "critical");  // more than twice the baseline
  EXPECT_NEAR(r->evidence.at("baseline_p95_ms"), 1.0, 0.05);
  // Back to 1 ms: clears at once; three windows later the trend is improving.
  w.Tick();
  w.Commands("get", 100, 1'000'000);
  f = in.Evaluate(w.s);
  EXPECT_EQ(Find(f, "latency_regression", "get"), nullptr);
  for (int i = 0; i < 2; ++i) {
    w.Tick();
    w.Commands("get", 100, 1'000'000);
    in.Evaluate(w.s);
  }
  auto b = in.Baselines();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].established);
  EXPECT_EQ(b[0].trend, "improving");
}

TEST(Insights, NoRegressionBeforeTheBaselineNorBelowTheFloor) {
  InsightOptions o = Short();
  o.window_ms = 1000;
  Insights in(o);
  World w;
  in.Evaluate(w.s);
  for (int i = 0; i < 5; ++i) {  // too few windows for a baseline
    w.Tick();
    w.Commands("get", 100, 1'000'000);
    in.Evaluate(w.s);
  }
  w.Tick();
  w.Commands("get", 100, 9'000'000);
  EXPECT_EQ(Find(in.Evaluate(w.s), "latency_regression", "get"), nullptr);
  // Microsecond commands: +50% but far below regression_min_ms.
  Insights fast(o);
  World v;
  fast.Evaluate(v.s);
  for (int i = 0; i < 10; ++i) {
    v.Tick();
    v.Commands("get", 100, 50'000);
    fast.Evaluate(v.s);
  }
  v.Tick();
  v.Commands("get", 100, 75'000);
  EXPECT_EQ(Find(fast.Evaluate(v.s), "latency_regression", "get"), nullptr);
}

TEST(Insights, ConnectionChurnNamesTheBusiestClient) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  w.Tick();
  w.s.stats.events.connections_opened += 30;
  w.Commands("get", 30);
  w.s.stats.clients["10.0.0.7"].commands += 30;
  w.s.stats.clients["10.0.0.8"].commands += 2;
  auto f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "connection_churn", "10.0.0.7"), nullptr);
  EXPECT_EQ(Find(f, "connection_churn", "10.0.0.7")->evidence.at("connections_per_command"), 1);
  // A few long-lived connections doing lots of work: nothing.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    w.Commands("get", 1000);
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "connection_churn", "10.0.0.7"), nullptr);
}

TEST(Insights, HealthyTrafficRaisesNothing) {
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  for (int i = 0; i < 20; ++i) {
    w.Tick();
    w.Commands("get", 500, 80'000);
    w.Commands("set", 100, 90'000);
    w.P("user:{id}").read += 500;
    w.P("user:{id}").hits += 480;
    w.P("user:{id}").misses += 20;
    w.P("user:{id}").bytes_out += 500 * 200;
    q.transitions["added"] += 10;
    q.transitions["completed"] += 10;
    q.process.count += 10;
    q.process.sum_seconds += 0.5;
    q.depth["waiting"] = 2;
    w.s.hot_keys = {{"user:1", "user:{id}", uint64_t(i + 1) * 5, 0}};
    EXPECT_TRUE(in.Evaluate(w.s).empty());
  }
}

TEST(Insights, CorrelationRanksWhatAddedTheExtraTime) {
  InsightOptions o = Short();
  o.window_ms = 1000;
  Insights in(o);
  World w;
  auto record = [&](const std::string& cmd, const std::string& pattern, uint64_t n, uint64_t ns) {
    w.Commands(cmd, n, ns);
    auto& p = w.P(pattern);
    p.read += n;
    p.latency.Record(ns, n);
    w.s.all_latency.Record(ns, n);
    w.s.stats.clients["10.0.0.1"].commands += n;
  };
  in.Evaluate(w.s);
  for (int i = 0; i < 6; ++i) {  // steady: GET user:{id} at 0.1 ms
    w.Tick();
    record("get", "user:{id}", 100, 100'000);
    in.Evaluate(w.s);
  }
  EXPECT_FALSE(in.Correlate(0).found);
  w.Tick();  // the spike: a slow ZRANGEBYSCORE on feed:{id} from another client
  record("get", "user:{id}", 100, 100'000);
  w.Commands("zrangebyscore", 50, 20'000'000);
  w.P("feed:{id}").latency.Record(20'000'000, 50);
  w.s.all_latency.Record(20'000'000, 50);
  w.s.stats.clients["10.0.0.9"].commands += 50;
  in.Evaluate(w.s);
  w.Tick();
  record("get", "user:{id}", 100, 100'000);
  in.Evaluate(w.s);
  Correlation c = in.Correlate(0);
  ASSERT_TRUE(c.found);
  EXPECT_GT(c.p99_ms, 2 * c.baseline_p99_ms);
  ASSERT_FALSE(c.commands.empty());
  EXPECT_EQ(c.commands[0].name, "zrangebyscore");
  EXPECT_NEAR(c.commands[0].extra, 1000.0, 1.0);  // 50 x 20 ms in one second
  EXPECT_EQ(c.patterns[0].name, "feed:{id}");
  EXPECT_EQ(c.clients[0].name, "10.0.0.9");
  // Asking for a time inside a steady window compares it with the ones before: nothing extra.
  Correlation steady = in.Correlate(c.from_ms - 500);
  ASSERT_TRUE(steady.found);
  EXPECT_LT(steady.commands[0].extra, 1.0);
}

TEST(Insights, MostSevereFirst) {
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  in.Evaluate(w.s);
  w.Tick();
  w.Commands("keys", 1);
  q.transitions["failed"] += 10;  // 100%: critical
  auto f = in.Evaluate(w.s);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].kind, "job_failures");
  EXPECT_EQ(f[0].severity, "critical");
  EXPECT_EQ(f[1].kind, "keys_command");
}

}  // namespace
}  // namespace respscope::engine
