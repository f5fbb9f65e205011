#include "analytics/engine/metrics.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace respscope::engine {
namespace {

Snapshot Sample() {
  Snapshot s;
  auto& get = s.stats.commands["get"];
  get.ok = 90;
  get.error = 10;
  for (int i = 0; i < 100; ++i) get.latency.Record(200'000);  // 200 us
  auto& blpop = s.stats.commands["blpop"];
  blpop.ok = 2;
  blpop.blocking.Record(2'000'000'000);
  auto& p = s.stats.patterns["user:{id}:habits"];
  p.read = 100;
  p.hits = 70;
  p.misses = 30;
  p.bytes_in = 1234;
  p.latency.Record(5'000'000);
  s.stats.events.connections_opened = 5;
  s.stats.events.connections_closed = 2;
  s.health_score = 87;
  s.alerts.push_back({"low_hit_rate", "warning", "hit_rate", "*", 0.7, 0.8, 0});
  return s;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(Metrics, RendersContractSeries) {
  Metrics m;
  m.Update(Sample(), {{"low_hit_rate", "warning"}, {"job_failure_rate", "critical"}});
  QueueMetrics q;
  q.queue = "email";
  q.transitions = {{"completed", 3}, {"failed", 1}};
  q.wait.Observe(0.2);
  q.process.Observe(1.5);
  q.depth = {{"waiting", 4}};
  m.UpdateQueues({q});
  m.UpdateRedis({1 << 20, 100, 5, true});
  std::string t = m.Render();
  EXPECT_TRUE(Has(t, "respscope_commands_total{command=\"get\",result=\"ok\"} 90"));
  EXPECT_TRUE(Has(t, "respscope_commands_total{command=\"get\",result=\"error\"} 10"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_bucket{command=\"get\",le=\"0.00025\"} 100"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_bucket{command=\"get\",le=\"0.0001\"} 0"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_count{command=\"get\"} 100"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_sum{command=\"get\"} 0.02"));
  EXPECT_FALSE(Has(t, "respscope_command_duration_seconds_count{command=\"blpop\"}"));
  EXPECT_TRUE(Has(t, "respscope_blocking_command_duration_seconds_count{command=\"blpop\"} 1"));
  EXPECT_TRUE(Has(t, "respscope_cache_lookups_total{pattern=\"user:{id}:habits\",result=\"hit\"} 70"));
  EXPECT_TRUE(Has(t, "respscope_pattern_commands_total{kind=\"read\",pattern=\"user:{id}:habits\"} 100"));
  EXPECT_TRUE(Has(t, "respscope_pattern_bytes_total{direction=\"in\",pattern=\"user:{id}:habits\"} 1234"));
  EXPECT_TRUE(Has(t, "respscope_pattern_duration_seconds_count{pattern=\"user:{id}:habits\"} 1"));
  EXPECT_TRUE(Has(t, "respscope_client_connections 3"));
  EXPECT_TRUE(Has(t, "respscope_client_connections_total 5"));
  EXPECT_TRUE(Has(t, "respscope_bytes_total{direction=\"client_in\"} 0"));
  EXPECT_TRUE(Has(t, "respscope_protocol_errors_total{side=\"upstream\"} 0"));
  EXPECT_TRUE(Has(t, "respscope_upstream_up 1"));
  EXPECT_TRUE(Has(t, "respscope_upstream_connect_errors_total 0"));
  EXPECT_TRUE(Has(t, "respscope_health_score 87"));
  EXPECT_TRUE(Has(t, "respscope_alerts_firing{alert=\"low_hit_rate\",severity=\"warning\"} 1"));
  EXPECT_TRUE(Has(t, "respscope_alerts_firing{alert=\"job_failure_rate\",severity=\"critical\"} 0"));
  EXPECT_TRUE(Has(t, "respscope_bullmq_jobs_total{queue=\"email\",transition=\"completed\"} 3"));
  EXPECT_TRUE(Has(t, "respscope_bullmq_job_wait_seconds_count{queue=\"email\"} 1"));
  EXPECT_TRUE(Has(t, "respscope_bullmq_job_process_seconds_bucket{queue=\"email\",le=\"2.5\"} 1"));
  EXPECT_TRUE(Has(t, "respscope_bullmq_queue_jobs{queue=\"email\",state=\"waiting\"} 4"));
  EXPECT_TRUE(Has(t, "respscope_redis_used_memory_bytes 1048576"));
  EXPECT_TRUE(Has(t, "respscope_redis_keyspace_hits_total 100"));
  EXPECT_TRUE(Has(t, "respscope_redis_keyspace_misses_total 5"));
  EXPECT_TRUE(Has(t, "respscope_build_info{version="));
}

TEST(Metrics, CountersFollowCumulativeValuesAndRedisResets) {
  Metrics m;
  Snapshot s = Sample();
  m.Update(s);
  s.stats.commands["get"].ok = 150;
  s.stats.commands["get"].latency.Record(20'000'000, 5);  // 20 ms
  m.Update(s);
  m.Update(s);  // same values: no double counting
  m.UpdateRedis({0, 100, 0, true});
  m.UpdateRedis({0, 30, 0, true});  // INFO reset after a Redis restart
  std::string t = m.Render();
  EXPECT_TRUE(Has(t, "respscope_commands_total{command=\"get\",result=\"ok\"} 150"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_count{command=\"get\"} 105"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_bucket{command=\"get\",le=\"0.025\"} 105"));
  EXPECT_TRUE(Has(t, "respscope_command_duration_seconds_bucket{command=\"get\",le=\"0.01\"} 100"));
  EXPECT_TRUE(Has(t, "respscope_redis_keyspace_hits_total 130"));
}

TEST(Metrics, PromtoolAcceptsTheText) {
  if (std::system("command -v promtool > /dev/null 2>&1") != 0) GTEST_SKIP() << "no promtool";
  Metrics m;
  m.Update(Sample(), {{"low_hit_rate", "warning"}});
  QueueMetrics q;
  q.queue = "email";
  q.transitions = {{"completed", 3}};
  q.wait.Observe(0.2);
  m.UpdateQueues({q});
  m.UpdateRedis({1, 2, 3, true});
  std::string path = ::testing::TempDir() + "/respscope_metrics.txt";
  std::ofstream(path) << m.Render();
  std::string cmd = "promtool check metrics < " + path + " > " + path + ".out 2>&1";
  int rc = std::system(cmd.c_str());
  std::ifstream out(path + ".out");
  std::string report((std::istreambuf_iterator<char>(out)), {});
  EXPECT_EQ(rc, 0) << report;
}

}  // namespace
}  // namespace respscope::engine
