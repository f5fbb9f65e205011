// Micro benchmarks for the recorder hot path (built only with -DRESPSCOPE_BENCH=ON).
// Timing claims live here, never in tests.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "analytics/patterns/normalizer.h"
#include "analytics/recorder/recorder.h"
#include "analytics/recorder/space_saving.h"

namespace {

using namespace respscope;

std::shared_ptr<patterns::RulesHub> MakeHub(double sample_rate = 1.0) {
  patterns::SanitizeOptions so;
  so.hash_key = "bench";
  so.sample_rate = sample_rate;
  return std::make_shared<patterns::RulesHub>(patterns::KeyRules::Build({}, so));
}

std::vector<std::string> Keys(const char* prefix, int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(std::string(prefix) + std::to_string(i * 7919) + ":habits");
  return keys;
}

void BM_Normalize(benchmark::State& state) {
  auto rules = patterns::KeyRules::Build({}, {});
  patterns::Normalizer n;
  auto keys = Keys("user:", 1024);
  size_t i = 0;
  for (auto _ : state) {
    std::string_view k = keys[i++ & 1023];
    benchmark::DoNotOptimize(n.PatternId(*rules, k, rules->Classify(k)));
  }
}
BENCHMARK(BM_Normalize);

void BM_RecordGet(benchmark::State& state) {
  recorder::Recorder r({}, MakeHub(state.range(0) / 100.0));
  auto keys = Keys(state.range(1) ? "session:" : "user:", 1024);
  std::string_view key_view[1];
  uint32_t len[1];
  analytics::Lookup lookup[1] = {analytics::Lookup::kHit};
  analytics::Observation o;
  o.command_id = 1;
  o.command = "get";
  o.flags = analytics::kObsRead;
  o.client_name = "10.0.0.1:5000";
  size_t i = 0;
  for (auto _ : state) {
    key_view[0] = keys[i++ & 1023];
    len[0] = static_cast<uint32_t>(key_view[0].size());
    o.keys = key_view;
    o.key_lengths = len;
    o.lookups = lookup;
    o.start_ns = 0;
    o.end_ns = 100'000 + static_cast<int64_t>(i & 4095);
    r.Record(o);
    if ((i & 4095) == 0) r.Tick();  // the IO thread's publication, amortised
  }
  state.SetItemsProcessed(state.iterations());
}
// Args: sample rate in percent, sensitive keys (HMAC per sampled key).
BENCHMARK(BM_RecordGet)->Args({100, 0})->Args({10, 0})->Args({100, 1});

// redis-benchmark -t get -r 100000: keys "key:" + 12 digits drawn uniformly from 100k, a 3-byte
// value ("$3\r\nxxx\r\n" = 9 reply bytes). Almost every hot-key offer misses the sketch.
// The key is formatted into a local buffer each iteration (as the proxy hands the recorder a
// key sitting in a hot read buffer); that costs a few ns, see BM_KeyGen100k.
struct RandomKeys {
  uint64_t x = 42;
  char buf[17] = "key:000000000000";
  std::string_view Next() {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t v = static_cast<uint32_t>((x >> 33) % 100'000);
    for (int d = 15; d >= 10; --d) {
      buf[d] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    return std::string_view(buf, 16);
  }
};

void BM_KeyGen100k(benchmark::State& state) {
  RandomKeys gen;
  for (auto _ : state) benchmark::DoNotOptimize(gen.Next());
}
BENCHMARK(BM_KeyGen100k);

// Arg: 0 = GET (a read, 9 reply bytes), 1 = SET of a 3-byte value (a write, 45 request bytes,
// "+OK" = 5 reply bytes), as redis-benchmark -t get / -t set send them.
void BM_RecordRandom100k(benchmark::State& state) {
  recorder::Recorder r({}, MakeHub());
  RandomKeys gen;
  std::string_view key_view[1];
  uint32_t len[1];
  const bool set = state.range(0) == 1;
  analytics::Lookup lookup[1] = {set ? analytics::Lookup::kNone : analytics::Lookup::kHit};
  analytics::Observation o;
  o.command_id = set ? 2 : 1;
  o.command = set ? "set" : "get";
  o.flags = set ? analytics::kObsWrite : analytics::kObsRead;
  o.client_name = "10.0.0.1:5000";
  o.request_bytes = set ? 45 : 37;
  o.reply_bytes = set ? 5 : 9;
  size_t i = 0;
  for (auto _ : state) {
    key_view[0] = gen.Next();
    len[0] = static_cast<uint32_t>(key_view[0].size());
    o.keys = key_view;
    o.key_lengths = len;
    o.lookups = lookup;
    o.start_ns = 0;
    o.end_ns = 100'000 + static_cast<int64_t>(++i & 4095);
    r.Record(o);
    if ((i & 4095) == 0) r.Tick();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RecordRandom100k)->ArgName("set")->Arg(0)->Arg(1);

// The sketch alone on the same stream (capacity 512, the recorder's default).
void BM_SpaceSavingRandom100k(benchmark::State& state) {
  recorder::SpaceSaving ss(512);
  RandomKeys gen;
  size_t i = 0;
  for (auto _ : state) {
    ss.Offer(gen.Next(), 1);
    if ((++i & 4095) == 0) ss.Publish();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpaceSavingRandom100k);

}  // namespace

BENCHMARK_MAIN();
