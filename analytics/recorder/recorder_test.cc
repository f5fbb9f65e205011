#include "analytics/recorder/recorder.h"

#include "analytics/recorder/distinct_sketch.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

namespace respscope::recorder {
namespace {

using analytics::Lookup;
using analytics::Observation;

// Owns the storage an Observation points into.
struct Obs {
  std::vector<std::string> key_store;
  std::vector<std::string_view> keys;
  std::vector<uint32_t> lengths;
  std::vector<Lookup> lookups;
  Observation o;

  Obs(uint16_t id, std::string_view cmd, std::vector<std::string> ks, uint32_t flags,
      int64_t dur_ns = 1000, std::vector<Lookup> lk = {})
      : key_store(std::move(ks)), lookups(std::move(lk)) {
    for (auto& k : key_store) {
      keys.emplace_back(k);
      lengths.push_back(static_cast<uint32_t>(k.size()));
    }
    o.command_id = id;
    o.command = cmd;
    o.flags = flags;
    o.start_ns = 1'000'000;
    o.end_ns = o.start_ns + dur_ns;
    o.keys = keys;
    o.key_lengths = lengths;
    o.lookups = lookups;
    o.client_name = "10.0.0.1:5555";
  }
};

std::shared_ptr<patterns::RulesHub> Hub(patterns::SanitizeOptions so = {},
                                        patterns::PatternOptions po = {}) {
  so.hash_key = "test-key";
  return std::make_shared<patterns::RulesHub>(patterns::KeyRules::Build(po, so));
}

TEST(Recorder, GroundTruthCounts) {
  patterns::SanitizeOptions so;
  so.exclude_key_patterns = {"temp:*"};
  RecorderOptions ro;
  ro.slow_threshold_ns = 5'000'000;
  Recorder r(ro, Hub(so));
  std::mt19937_64 rng(11);
  struct Expect { uint64_t ok = 0, err = 0; };
  std::map<std::string, Expect> cmd;
  uint64_t hits = 0, misses = 0, user_reads = 0, user_writes = 0, slow = 0, bytes_in = 0;
  uint64_t session_reads = 0;
  for (int i = 0; i < 20'000; ++i) {
    int kind = static_cast<int>(rng() % 5);
    std::string user = "user:" + std::to_string(rng() % 1000) + ":habits";
    bool err = rng() % 50 == 0;
    uint32_t eflag = err ? uint32_t{analytics::kObsError} : 0u;
    int64_t dur = (rng() % 100 == 0) ? 6'000'000 : 50'000;
    if (kind == 0) {
      bool hit = rng() % 4 != 0;
      Obs o(1, "get", {user}, analytics::kObsRead | eflag, dur, {hit ? Lookup::kHit : Lookup::kMiss});
      o.o.request_bytes = 30;
      o.o.error_prefix = "WRONGTYPE";
      o.o.error_text = "WRONGTYPE Operation against a key holding the wrong kind of value";
      r.Record(o.o);
      (err ? cmd["get"].err : cmd["get"].ok)++;
      (hit ? hits : misses)++;
      ++user_reads;
      bytes_in += 30;
      slow += dur >= 5'000'000;
    } else if (kind == 1) {
      Obs o(2, "set", {user}, analytics::kObsWrite, dur);
      o.o.request_bytes = 100;
      r.Record(o.o);
      cmd["set"].ok++;
      ++user_writes;
      bytes_in += 100;
      slow += dur >= 5'000'000;
    } else if (kind == 2) {
      // MGET over two patterns and an excluded key: counted once per pattern.
      Obs o(3, "mget", {user, "session:abc" + std::to_string(i % 7), "temp:1", user}, analytics::kObsRead, 1000,
            {Lookup::kHit, Lookup::kMiss, Lookup::kHit, Lookup::kMiss});
      o.o.request_bytes = 70;
      r.Record(o.o);
      cmd["mget"].ok++;
      hits += 1;
      misses += 2;
      ++user_reads;
      ++session_reads;
      bytes_in += 70;
    } else if (kind == 3) {
      Obs o(4, "blpop", {"queue:jobs"}, analytics::kObsWrite | analytics::kObsBlocking, 2'000'000'000);
      r.Record(o.o);
      cmd["blpop"].ok++;
    } else {
      Obs o(5, "ping", {}, 0, 100);
      o.o.flags |= analytics::kObsNoReply;
      r.Record(o.o);
      cmd["ping"].ok++;
    }
  }
  StatsView v;
  r.Tick();
  r.CollectInto(v);
  for (auto& [name, e] : cmd) {
    ASSERT_TRUE(v.commands.count(name)) << name;
    EXPECT_EQ(v.commands[name].ok, e.ok) << name;
    EXPECT_EQ(v.commands[name].error, e.err) << name;
  }
  EXPECT_EQ(v.commands["blpop"].latency.count(), 0u);
  EXPECT_EQ(v.commands["blpop"].blocking.count(), cmd["blpop"].ok);
  EXPECT_EQ(v.commands["ping"].latency.count(), 0u);  // no reply: latency unknown
  EXPECT_EQ(v.commands["get"].latency.count(), cmd["get"].ok + cmd["get"].err);

  const PatternView& user = v.patterns["user:{id}:habits"];
  EXPECT_EQ(user.read, user_reads);
  EXPECT_EQ(user.write, user_writes);
  EXPECT_EQ(v.patterns["session:*"].read, session_reads);
  EXPECT_EQ(v.patterns["queue:jobs"].write, cmd["blpop"].ok);
  EXPECT_EQ(v.patterns["queue:jobs"].latency.count(), 0u);  // blocking excluded
  uint64_t all_hits = 0, all_misses = 0, all_in = 0;
  for (auto& [name, p] : v.patterns) {
    all_hits += p.hits;
    all_misses += p.misses;
    all_in += p.bytes_in;
    EXPECT_EQ(name.find("temp"), std::string::npos);
  }
  EXPECT_EQ(all_hits, hits);
  EXPECT_EQ(all_misses, misses);
  EXPECT_EQ(all_in, bytes_in);

  // Hot keys: sanitised; no raw session key anywhere.
  ASSERT_FALSE(v.hot_keys.empty());
  for (auto& [key, hk] : v.hot_keys) {
    EXPECT_EQ(key.find("session:abc"), std::string::npos) << key;
    EXPECT_EQ(key.find("temp:"), std::string::npos) << key;
    if (key.rfind("session:", 0) == 0) {
      EXPECT_EQ(hk.pattern, "session:*");
    }
  }
  EXPECT_EQ(v.slow_log.size(), std::min<uint64_t>(slow, ro.slow_log_size));
  for (auto& s : v.slow_log) {
    EXPECT_GE(s.duration_ns, 5'000'000u);
    EXPECT_EQ(s.client, "10.0.0.1");
    EXPECT_EQ(s.pattern, "user:{id}:habits");
  }
  EXPECT_EQ(v.errors["WRONGTYPE"].count, cmd["get"].err);
  EXPECT_EQ(v.errors["WRONGTYPE"].last_text.rfind("WRONGTYPE Operation", 0), 0u);
  ASSERT_EQ(v.clients.size(), 1u);
  EXPECT_EQ(v.clients["10.0.0.1"].commands, 20'000u);
  EXPECT_EQ(v.clients["10.0.0.1"].errors, cmd["get"].err);
}

TEST(Recorder, SampleRateKeepsTotalsExact) {
  patterns::SanitizeOptions so;
  so.sample_rate = 0.1;
  Recorder r({}, Hub(so));
  for (int i = 0; i < 10'000; ++i) {
    Obs o(1, "get", {"user:" + std::to_string(i % 10)}, analytics::kObsRead, 1000,
          {i % 2 ? Lookup::kHit : Lookup::kMiss});
    o.o.request_bytes = 10;
    o.o.reply_bytes = 20;
    r.Record(o.o);
  }
  StatsView v;
  r.Tick();
  r.CollectInto(v);
  EXPECT_EQ(v.commands["get"].ok, 10'000u);
  EXPECT_EQ(v.patterns["user:{id}"].read, 10'000u);
  EXPECT_EQ(v.patterns["user:{id}"].hits, 5'000u);
  EXPECT_EQ(v.patterns["user:{id}"].misses, 5'000u);
  EXPECT_EQ(v.patterns["user:{id}"].bytes_in, 100'000u);
  EXPECT_EQ(v.patterns["user:{id}"].bytes_out, 200'000u);
  uint64_t sampled = 0;
  for (auto& [k, hk] : v.hot_keys) sampled += hk.count;
  EXPECT_NEAR(static_cast<double>(sampled), 1000.0, 200.0);
}

TEST(Recorder, BigValuesErrorsAndRuleSwap) {
  auto hub = Hub();
  Recorder r({}, hub);
  for (int size : {100, 5000, 300, 9000, 50, 7000, 8000}) {
    Obs o(1, "get", {"blob:" + std::to_string(size)}, analytics::kObsRead);
    o.o.reply_bytes = size;
    r.Record(o.o);
  }
  Obs bad(9, "eval", {}, analytics::kObsError);
  bad.o.error_prefix = "ERR";
  bad.o.error_text = "ERR user_script:1: bad token 'hunter2' for session:xyz";
  r.Record(bad.o);
  Obs odd(9, "eval", {}, analytics::kObsError);
  odd.o.error_prefix = "WEIRDPREFIX";
  r.Record(odd.o);
  StatsView v;
  r.Tick();
  r.CollectInto(v);
  const auto& big = v.patterns["blob:{id}"].big_values;
  ASSERT_EQ(big.size(), kBigValuesPerPattern);
  EXPECT_EQ(big[0].bytes, 9000u);
  EXPECT_EQ(big[0].key, "blob:9000");
  EXPECT_EQ(big[3].bytes, 5000u);
  EXPECT_EQ(v.errors["ERR"].count, 1u);
  EXPECT_EQ(v.errors["other"].count, 1u);
  EXPECT_EQ(v.errors["ERR"].last_text.find("hunter2"), std::string::npos);
  EXPECT_EQ(v.errors["ERR"].last_text.find("session:xyz"), std::string::npos);

  // Swap in rules with a named pattern: new keys follow them at the next command.
  patterns::PatternOptions po;
  po.rules = {{"blob:*", "blobs"}};
  patterns::SanitizeOptions so;
  so.hash_key = "test-key";
  hub->Publish(patterns::KeyRules::Build(po, so));
  Obs after(1, "get", {"blob:1"}, analytics::kObsRead);
  r.Record(after.o);
  StatsView v2;
  r.Tick();
  r.CollectInto(v2);
  EXPECT_EQ(v2.patterns["blobs"].read, 1u);
  EXPECT_EQ(v2.patterns["blob:{id}"].read, 7u);
}

TEST(Recorder, ConcurrentCollectNeverLosesOrDoublesCounts) {
  // Two shards recorded by two threads while a third collects repeatedly: collected totals
  // never go backwards and end exactly at what was recorded.
  auto hub = Hub();
  Recorder a({}, hub), b({}, hub);
  constexpr int kPerThread = 200'000;
  std::atomic<bool> done{false};
  // Every 10th command reads user:77777, the others one of 5,000 keys (more than a shard's
  // hot-key capacity, so the sketch admits and evicts while the reader collects).
  auto key_of = [](int i, std::mt19937_64& rng) {
    uint64_t r = rng();
    return "user:" + std::to_string(i % 10 == 0 ? 77777 : r % 5000);
  };
  auto work = [&](Recorder* r, int seed) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < kPerThread; ++i) {
      std::string key = key_of(i, rng);
      const auto latency = static_cast<int64_t>(rng() % 1'000'000);
      Obs o(1, "get", {key}, analytics::kObsRead, latency, {i % 3 ? Lookup::kHit : Lookup::kMiss});
      r->Record(o.o);
      if (i % 1000 == 0) r->Tick();
    }
    r->Tick();
  };
  std::thread t1(work, &a, 1), t2(work, &b, 2);
  uint64_t last = 0, last_hits = 0, collections = 0;
  std::thread reader([&] {
    while (!done.load()) {
      StatsView v;
      a.CollectInto(v);
      b.CollectInto(v);
      uint64_t total = v.commands["get"].ok;
      uint64_t hits = v.patterns["user:{id}"].hits;
      EXPECT_GE(total, last);
      EXPECT_GE(hits, last_hits);
      last = total;
      last_hits = hits;
      ++collections;
    }
  });
  t1.join();
  t2.join();
  done = true;
  reader.join();
  StatsView v;
  a.CollectInto(v);
  b.CollectInto(v);
  EXPECT_EQ(v.commands["get"].ok, 2u * kPerThread);
  EXPECT_EQ(v.commands["get"].latency.count(), 2u * kPerThread);
  EXPECT_EQ(v.patterns["user:{id}"].read, 2u * kPerThread);
  uint64_t expect_hits = 0;
  for (int i = 0; i < kPerThread; ++i) expect_hits += i % 3 ? 1 : 0;
  EXPECT_EQ(v.patterns["user:{id}"].hits, 2 * expect_hits);
  // Hot keys are estimates (see SpaceSaving): count - error never exceeds the truth, and the
  // heavy key is tracked with an estimate within 1%.
  std::map<std::string, uint64_t> truth;
  for (int seed : {1, 2}) {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < kPerThread; ++i) {
      ++truth[key_of(i, rng)];
      rng();  // the latency draw
    }
  }
  ASSERT_FALSE(v.hot_keys.empty());
  for (auto& [k, hk] : v.hot_keys) EXPECT_LE(hk.count - hk.error, truth[k]) << k;
  ASSERT_TRUE(v.hot_keys.count("user:77777"));
  EXPECT_NEAR(static_cast<double>(v.hot_keys["user:77777"].count), 2.0 * kPerThread / 10,
              0.01 * 2 * kPerThread / 10);
  EXPECT_GT(collections, 0u);
}

}  // namespace
}  // namespace respscope::recorder

namespace respscope::recorder {
namespace {

TEST(Recorder, KeyLifetimesPerPattern) {
  Recorder r(RecorderOptions{}, Hub());
  for (int i = 0; i < 2000; ++i) {
    Obs plain(2, "set", {"cart:" + std::to_string(i)}, analytics::kObsWrite);
    r.Record(plain.o);
    Obs with_ttl(2, "set", {"page:" + std::to_string(i)},
                 analytics::kObsWrite | analytics::kObsTtlSet);
    r.Record(with_ttl.o);
  }
  for (int i = 0; i < 50; ++i) {
    Obs h(3, "hset", {"cart:" + std::to_string(i)}, analytics::kObsWrite);  // rewrites
    r.Record(h.o);
    Obs e(4, "expire", {"job:" + std::to_string(i)}, analytics::kObsWrite);
    r.Record(e.o);
    Obs d(5, "del", {"cart:" + std::to_string(i)}, analytics::kObsWrite);
    r.Record(d.o);
    Obs failed(3, "hset", {"cart:x" + std::to_string(i)},
               analytics::kObsWrite | analytics::kObsError);  // WRONGTYPE: nothing written
    r.Record(failed.o);
  }
  StatsView v;
  r.CollectInto(v);
  const PatternView& cart = v.patterns["cart:{id}"];
  EXPECT_EQ(cart.no_ttl_writes, 2050u);
  EXPECT_EQ(cart.deletes, 50u);
  EXPECT_EQ(cart.ttl_sets, 0u);
  ASSERT_EQ(cart.no_ttl_registers.size(), DistinctSketch::kRegisters);
  DistinctSketch::Registers regs;
  std::copy(cart.no_ttl_registers.begin(), cart.no_ttl_registers.end(), regs.begin());
  EXPECT_NEAR(DistinctSketch::Estimate(regs), 2000, 0.13 * 2000);
  const PatternView& page = v.patterns["page:{id}"];
  EXPECT_EQ(page.no_ttl_writes, 0u);
  EXPECT_EQ(page.ttl_sets, 2000u);
  EXPECT_TRUE(page.no_ttl_registers.empty());
  EXPECT_EQ(v.patterns["job:{id}"].ttl_sets, 50u);
}

TEST(Recorder, KeyLifetimesOffDoesNothing) {
  RecorderOptions ro;
  ro.key_lifecycle = false;
  Recorder r(ro, Hub());
  for (int i = 0; i < 100; ++i) {
    Obs plain(2, "set", {"cart:" + std::to_string(i)}, analytics::kObsWrite);
    r.Record(plain.o);
    Obs get(1, "get", {"item:" + std::to_string(i)}, analytics::kObsRead);
    get.o.start_ns = 1'000'000 + i * 10'000;
    get.o.end_ns = get.o.start_ns + 5'000;
    r.Record(get.o);
  }
  StatsView v;
  r.CollectInto(v);
  EXPECT_EQ(v.patterns["cart:{id}"].write, 100u);
  EXPECT_EQ(v.patterns["cart:{id}"].no_ttl_writes, 0u);
  EXPECT_TRUE(v.patterns["cart:{id}"].no_ttl_registers.empty());
  EXPECT_EQ(v.patterns["item:{id}"].run_reads, 0u);
}

// One connection's reads: `n` GETs of distinct keys, each `gap` after the previous reply
// (negative: sent before it, i.e. pipelined), taking 20 us each.
int64_t Reads(Recorder& r, uint64_t client, const std::string& prefix, int n, int64_t start,
              int64_t gap, bool same_key = false) {
  int64_t t = start;
  for (int i = 0; i < n; ++i) {
    Obs g(1, "get", {prefix + std::to_string(same_key ? 7 : i)}, analytics::kObsRead);
    g.o.client_id = client;
    g.o.start_ns = t;
    g.o.end_ns = t + 20'000;
    r.Record(g.o);
    t = g.o.end_ns + gap;
  }
  return t;
}

TEST(Recorder, SequentialReadRuns) {
  Recorder r(RecorderOptions{}, Hub());
  int64_t t = Reads(r, 1, "item:", 35, 1'000'000, 100'000);  // one run of 35, 100 us apart
  t = Reads(r, 1, "item:", 5, t + 50'000'000, 100'000);      // too short to count
  Reads(r, 2, "item:", 25, 1'000'000, -10'000);               // pipelined: no run
  Reads(r, 3, "item:", 25, 1'000'000, 100'000, true);         // one key polled: no run
  Reads(r, 4, "item:", 25, 1'000'000, 20'000'000);            // 20 ms apart: no run
  Reads(r, 5, "item:", 250, 1'000'000, 50'000);               // 250: batches of 100
  StatsView v;
  r.CollectInto(v);
  const PatternView& item = v.patterns["item:{id}"];
  EXPECT_EQ(item.run_reads, 35u + 250u);
  EXPECT_EQ(item.runs, 1u + 3u);  // run 5: from read 10 on, +1 at 110 and 210
  EXPECT_EQ(item.run_gap_ns, 34u * 100'000 + 249u * 50'000);
  EXPECT_EQ(item.run_client, "10.0.0.1");
  EXPECT_EQ(item.run_command, "get");
}

TEST(Recorder, ClosedConnectionEndsItsRun) {
  Recorder r(RecorderOptions{}, Hub());
  int64_t t = Reads(r, 9, "item:", 9, 1'000'000, 100'000);
  r.OnEvent(analytics::SessionEvent::kClientClosed, 9);
  Reads(r, 9, "item:", 9, t, 100'000);  // 9 + 9 reads, never 10 in one run
  StatsView v;
  r.CollectInto(v);
  EXPECT_EQ(v.patterns["item:{id}"].run_reads, 0u);
}

}  // namespace
}  // namespace respscope::recorder
