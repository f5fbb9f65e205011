#include "analytics/engine/engine.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

namespace respscope::engine {
namespace {

using analytics::Lookup;

std::shared_ptr<patterns::RulesHub> Hub() {
  patterns::SanitizeOptions so;
  so.hash_key = "k";
  return std::make_shared<patterns::RulesHub>(patterns::KeyRules::Build({}, so));
}

void RecordGet(recorder::Recorder& r, const std::string& key, int64_t dur_ns, Lookup lookup,
               bool error = false) {
  std::string_view keys[1] = {key};
  uint32_t lens[1] = {static_cast<uint32_t>(key.size())};
  Lookup lookups[1] = {lookup};
  analytics::Observation o;
  o.command_id = 1;
  o.command = "get";
  o.flags = analytics::kObsRead | (error ? analytics::kObsError : 0u);
  o.start_ns = 0;
  o.end_ns = dur_ns;
  o.keys = keys;
  o.key_lengths = lens;
  o.lookups = lookups;
  o.client_name = "app";
  o.error_prefix = error ? "ERR" : "";
  r.Record(o);
  r.Tick();  // the IO thread's periodic publication of hot keys, here after every command
}

TEST(Engine, ConcurrentRecordingWhileMergingKeepsTotalsExact) {
  auto hub = Hub();
  auto a = std::make_shared<recorder::Recorder>(recorder::RecorderOptions{}, hub);
  auto b = std::make_shared<recorder::Recorder>(recorder::RecorderOptions{}, hub);
  EngineOptions eo;
  eo.interval = std::chrono::milliseconds(5);
  Engine engine(eo, {a, b});
  engine.Start();
  constexpr int kN = 150'000;
  auto work = [&](recorder::Recorder* r, int seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < kN; ++i) {
      RecordGet(*r, "user:" + std::to_string(rng() % 3000), 1000 + rng() % 100000,
                i % 4 ? Lookup::kHit : Lookup::kMiss, i % 100 == 0);
    }
  };
  std::thread t1(work, a.get(), 1), t2(work, b.get(), 2);
  uint64_t last = 0;
  int refreshes = 0;
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) {
      auto s = engine.Refresh();
      EXPECT_GE(s->commands, last);
      last = s->commands;
      ++refreshes;
      engine.ScrapeMetrics();
    }
  });
  t1.join();
  t2.join();
  scraper.join();
  engine.Stop();
  auto s = engine.Refresh();
  EXPECT_EQ(s->commands, 2u * kN);
  EXPECT_EQ(s->errors, 2u * (kN / 100));
  EXPECT_EQ(s->stats.commands.at("get").error, 2u * (kN / 100));
  EXPECT_EQ(s->hits, 2u * (kN - kN / 4));
  EXPECT_EQ(s->misses, 2u * (kN / 4));
  EXPECT_EQ(s->all_latency.count(), 2u * kN);
  EXPECT_EQ(s->stats.errors.at("ERR").count, 2u * (kN / 100));
  EXPECT_EQ(s->hot_keys.size(), eo.top_keys);
  EXPECT_EQ(refreshes, 50);
  // Metrics agree with the snapshot.
  std::string text = engine.ScrapeMetrics();
  EXPECT_NE(text.find("respscope_commands_total{command=\"get\",result=\"ok\"} " +
                      std::to_string(2 * kN - 2 * (kN / 100))),
            std::string::npos);
}

TEST(Engine, PatternsFoldIntoOtherBeyondMax) {
  auto hub = Hub();
  auto a = std::make_shared<recorder::Recorder>(recorder::RecorderOptions{}, hub);
  EngineOptions eo;
  eo.max_patterns = 2;
  Engine engine(eo, {a});
  RecordGet(*a, "alpha:1", 1000, Lookup::kHit);
  RecordGet(*a, "beta:1", 1000, Lookup::kHit);
  engine.Refresh();
  RecordGet(*a, "gamma:1", 1000, Lookup::kMiss);
  RecordGet(*a, "delta:1", 1000, Lookup::kMiss);
  auto s = engine.Refresh();
  EXPECT_EQ(s->stats.patterns.size(), 3u);
  EXPECT_EQ(s->stats.patterns.at("other").misses, 2u);
  EXPECT_EQ(s->stats.patterns.at("alpha:{id}").hits, 1u);
  EXPECT_EQ(s->misses, 2u);
}

TEST(History, FineAndCoarseRings) {
  History h({10, 6, 60, 3});
  Snapshot s;
  s.wall_ms = 1'000'000;
  for (int i = 0; i <= 200; ++i) {
    s.wall_ms = 1'000'000 + int64_t{i} * 1000;
    s.commands += 100;
    s.hits += 9;
    s.misses += 1;
    s.all_latency.Record(1'000'000);  // 1 ms
    h.Observe(s);
  }
  // A range the fine ring covers is served from it; an older start falls back to coarse.
  EXPECT_EQ(h.Query(0, s.wall_ms, 10).size(), 3u);
  auto fine = h.Query(s.wall_ms - 60'000, s.wall_ms, 10);
  ASSERT_EQ(fine.size(), 6u);  // ring capacity
  EXPECT_EQ(fine.back().commands, 1000u);
  EXPECT_DOUBLE_EQ(fine.back().commands_per_s(), 100.0);
  EXPECT_NEAR(fine.back().hit_rate(), 0.9, 1e-9);
  EXPECT_NEAR(fine.back().p99_ms, 1.0, 0.02);
  auto coarse = h.Query(0, s.wall_ms, 60);
  ASSERT_EQ(coarse.size(), 3u);
  EXPECT_EQ(coarse.back().commands, 6000u);
  // Steps wider than a level's step merge its points.
  auto merged = h.Query(s.wall_ms - 60'000, s.wall_ms, 30);
  ASSERT_FALSE(merged.empty());
  EXPECT_EQ(merged.back().commands % 1000, 0u);
  EXPECT_GE(merged.back().commands, 1000u);
}

}  // namespace
}  // namespace respscope::engine
