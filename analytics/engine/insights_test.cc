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
  o.no_ttl_min_keys = 100;
  o.n_plus_one_min_reads = 50;
  o.job_history_min_jobs = 100;
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
    w.P("user:{id}").ttl_sets += 100;  // SET ... EX
    w.P("counter:{id}").no_ttl_writes += 100;  // INCR of a fixed set of counters
    w.P("counter:{id}").no_ttl_keys = 20;
    w.P("user:{id}").runs += 1;  // one short sequence a second
    w.P("user:{id}").run_reads += 8;
    q.adds_read += 10;  // removeOnComplete
    q.completed_read += 10;
    q.depth["completed"] = 0;
    q.transitions["added"] += 10;
    q.transitions["completed"] += 10;
    q.process.count += 10;
    q.process.sum_seconds += 0.5;
    q.depth["waiting"] = 2;
    w.s.hot_keys = {{"user:1", "user:{id}", uint64_t(i + 1) * 5, 0}};
    EXPECT_TRUE(in.Evaluate(w.s).empty());
  }
}

TEST(Insights, NoTtlPatternWhileKeysWithoutExpiryGrowThenClears) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  // 60 new keys a second without expiry: 300 in the 5 s window.
  std::vector<Finding> f;
  for (int i = 0; i < 6; ++i) {
    w.Tick();
    auto& p = w.P("cart:{id}");
    p.write += 60;
    p.no_ttl_writes += 60;
    p.no_ttl_keys += 60;
    // Next to it: keys written without expiry, each given one afterwards (SET + EXPIRE).
    auto& later = w.P("report:{id}");
    later.no_ttl_writes += 60;
    later.no_ttl_keys += 60;
    later.ttl_sets += 60;
    // And lock keys: SET NX then DEL.
    auto& lock = w.P("lock:{id}");
    lock.no_ttl_writes += 60;
    lock.no_ttl_keys += 60;
    lock.deletes += 60;
    // Queue keys are left to unbounded_job_history.
    auto& job = w.P("bull:email:{id}");
    job.no_ttl_writes += 60;
    job.no_ttl_keys += 60;
    f = in.Evaluate(w.s);
  }
  const Finding* nt = Find(f, "no_ttl_pattern", "cart:{id}");
  ASSERT_NE(nt, nullptr);
  EXPECT_EQ(nt->severity, "warning");
  EXPECT_EQ(nt->evidence.at("new_keys_without_ttl"), 300);
  EXPECT_EQ(nt->evidence.at("writes_without_ttl"), 300);
  EXPECT_NE(nt->recommendation.find("EX"), std::string::npos);
  EXPECT_NE(nt->recommendation.find("cart:{id}"), std::string::npos);
  EXPECT_EQ(Find(f, "no_ttl_pattern", "report:{id}"), nullptr);
  EXPECT_EQ(Find(f, "no_ttl_pattern", "lock:{id}"), nullptr);
  EXPECT_EQ(Find(f, "no_ttl_pattern", "bull:email:{id}"), nullptr);
  // The same keys rewritten (no new ones): the count no longer grows, the finding clears.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    w.P("cart:{id}").no_ttl_writes += 60;
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "no_ttl_pattern", "cart:{id}"), nullptr);
}

TEST(Insights, NPlusOneFromSequentialReadRuns) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  std::vector<Finding> f;
  for (int i = 0; i < 3; ++i) {
    w.Tick();
    auto& p = w.P("product:{id}");
    p.read += 40;
    p.runs += 2;  // two loops of 20 reads, 0.2 ms between a reply and the next read
    p.run_reads += 40;
    p.run_gap_ns += 38 * 200'000;
    p.run_client = "web-1";
    p.run_command = "get";
    f = in.Evaluate(w.s);
  }
  const Finding* n = Find(f, "n_plus_one", "product:{id}");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->severity, "warning");
  EXPECT_EQ(n->evidence.at("sequential_reads"), 120);
  EXPECT_EQ(n->evidence.at("sequences"), 6);
  EXPECT_EQ(n->evidence.at("reads_per_sequence"), 20);
  EXPECT_NEAR(n->evidence.at("avg_gap_ms"), 0.2, 1e-9);
  EXPECT_EQ(n->evidence.at("round_trips_saved"), 114);
  EXPECT_EQ(n->details.at("client"), "web-1");
  EXPECT_NE(n->recommendation.find("MGET"), std::string::npos);
  // The loop is replaced by MGET: no more runs, the finding clears.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    w.P("product:{id}").read += 2;
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "n_plus_one", "product:{id}"), nullptr);
}

TEST(Insights, FewSequentialReadsSayNothing) {
  Insights in(Short());
  World w;
  in.Evaluate(w.s);
  w.Tick();
  w.P("product:{id}").runs += 1;
  w.P("product:{id}").run_reads += 49;
  EXPECT_EQ(Find(in.Evaluate(w.s), "n_plus_one", "product:{id}"), nullptr);
}

TEST(Insights, UnboundedJobHistoryFromOptionsAndDepthThenClears) {
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  q.depth["completed"] = 80;
  q.depth["failed"] = 0;
  in.Evaluate(w.s);
  std::vector<Finding> f;
  for (int i = 0; i < 3; ++i) {
    w.Tick();
    q.transitions["added"] += 20;
    q.transitions["completed"] += 20;
    q.adds_read += 20;
    q.adds_keep_completed += 20;  // no removeOnComplete
    q.adds_keep_failed += 20;
    q.completed_read += 20;
    q.completed_keep_all += 20;   // the worker's keepJobs: {count: -1}
    q.depth["completed"] += 20;
    f = in.Evaluate(w.s);
  }
  const Finding* h = Find(f, "unbounded_job_history", "email");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->severity, "warning");
  EXPECT_EQ(h->evidence.at("completed_jobs"), 140);
  EXPECT_EQ(h->evidence.at("completed_growth"), 60);
  EXPECT_EQ(h->evidence.at("completed_kept_share"), 1);
  EXPECT_EQ(h->evidence.at("added_without_removeOnComplete_share"), 1);
  EXPECT_EQ(h->details.at("sets"), "completed");  // nothing failed
  EXPECT_NE(h->recommendation.find("removeOnComplete: {count: 1000}"), std::string::npos);
  // Jobs now come with removeOnComplete: the set stops growing; the finding clears.
  for (int i = 0; i < 7; ++i) {
    w.Tick();
    q.adds_read += 20;
    q.completed_read += 20;
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "unbounded_job_history", "email"), nullptr);
}

TEST(Insights, JobHistoryTrustsTheWorkersKeepJobsOverTheJobOptions) {
  // Jobs added without removeOnComplete, but the worker's removeOnComplete bounds them
  // (keepJobs {count: 0}): no finding even while the set still grows a little.
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  q.depth["completed"] = 500;
  in.Evaluate(w.s);
  std::vector<Finding> f;
  for (int i = 0; i < 3; ++i) {
    w.Tick();
    q.adds_read += 20;
    q.adds_keep_completed += 20;
    q.completed_read += 20;
    q.depth["completed"] += 1;
    f = in.Evaluate(w.s);
  }
  EXPECT_EQ(Find(f, "unbounded_job_history", "email"), nullptr);
  // Without depths (no inspector), the failures kept count as growth.
  Insights in2(Short());
  World w2;
  auto& q2 = w2.Q("email");
  in2.Evaluate(w2.s);
  for (int i = 0; i < 3; ++i) {
    w2.Tick();
    q2.failed_read += 50;
    q2.failed_keep_all += 50;
    f = in2.Evaluate(w2.s);
  }
  ASSERT_NE(Find(f, "unbounded_job_history", "email"), nullptr);
  EXPECT_EQ(Find(f, "unbounded_job_history", "email")->details.at("sets"), "failed");
  EXPECT_NE(Find(f, "unbounded_job_history", "email")->recommendation.find("removeOnFail"),
            std::string::npos);
}

TEST(Insights, BacklogSaysHowLongTheOldestJobWaited) {
  Insights in(Short());
  World w;
  auto& q = w.Q("email");
  q.depth["waiting"] = 500;
  q.oldest_runnable_ms = w.s.wall_ms - 90'000;
  std::vector<Finding> f;
  for (int i = 0; i < 7; ++i) {
    f = in.Evaluate(w.s);
    w.Tick();
  }
  const Finding* b = Find(f, "queue_backlog", "email");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->evidence.at("oldest_waiting_age_s"), 96);  // 90 s + six ticks
  EXPECT_NE(b->recommendation.find("oldest waiting job has waited 96 s"), std::string::npos);
  // A delayed job not yet due is no waiting age.
  q.oldest_runnable_ms = w.s.wall_ms + 60'000;
  f = in.Evaluate(w.s);
  ASSERT_NE(Find(f, "queue_backlog", "email"), nullptr);
  EXPECT_EQ(Find(f, "queue_backlog", "email")->evidence.count("oldest_waiting_age_s"), 0u);
}

TEST(Insights, CorrelationTakesASpikeOverSeveralWindowsAtItsPeak) {
  InsightOptions o = Short();
  o.window_ms = 1000;
  Insights in(o);
  World w;
  auto window = [&](uint64_t slow_ns, uint64_t slow_calls) {
    w.Tick();
    w.Commands("get", 100, 100'000);
    w.s.all_latency.Record(100'000, 100);
    if (slow_calls > 0) {
      w.Commands("eval", slow_calls, slow_ns);
      w.s.all_latency.Record(slow_ns, slow_calls);
    }
    in.Evaluate(w.s);
  };
  in.Evaluate(w.s);
  for (int i = 0; i < 6; ++i) window(0, 0);  // steady: GET at 0.1 ms
  window(40'000'000, 30);  // the spike's peak: EVAL at 40 ms
  window(2'000'000, 30);   // its tail: EVAL at 2 ms, still more than twice the steady p99
  window(0, 0);
  Correlation c = in.Correlate(0);
  ASSERT_TRUE(c.found);
  EXPECT_GT(c.p99_ms, 30.0);  // the peak, not the tail
  EXPECT_LT(c.baseline_p99_ms, 1.0);  // the steady windows, not the spike's first one
  EXPECT_GT(c.p99_ms, 2 * c.baseline_p99_ms);
  EXPECT_EQ(c.baseline_windows, 6);
  ASSERT_FALSE(c.commands.empty());
  EXPECT_EQ(c.commands[0].name, "eval");
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
