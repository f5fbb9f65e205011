// The hot-path contract: after warm-up, Record() does not touch the heap. Counted with a
// replaced global operator new and OpenSSL's allocator hooks (this test binary only).
#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "analytics/recorder/recorder.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_allocations{0};
}  // namespace

#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
void* CountingMalloc(size_t n, const char*, int) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(n);
}
void* CountingRealloc(void* p, size_t n, const char*, int) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::realloc(p, n);
}
void CountingFree(void* p, const char*, int) { std::free(p); }
// Must run before OpenSSL allocates anything.
const bool g_hooked = CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, CountingFree);
}  // namespace

void* operator new(size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace respscope::recorder {
namespace {

TEST(RecorderAlloc, SteadyStateRecordDoesNotAllocate) {
  patterns::SanitizeOptions so;
  so.hash_key = "k";
  so.sample_rate = 0.5;
  so.exclude_key_patterns = {"temp:*"};
  auto hub = std::make_shared<patterns::RulesHub>(patterns::KeyRules::Build({}, so));
  RecorderOptions ro;
  ro.slow_threshold_ns = 1'000'000;
  Recorder r(ro, hub);
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back("user:" + std::to_string(i) + ":habits");
    keys.push_back("session:" + std::to_string(i * 31));
    keys.push_back("temp:" + std::to_string(i));
  }
  auto run = [&](int rounds) {
    for (int round = 0; round < rounds; ++round) {
      for (size_t i = 0; i < keys.size(); ++i) {
        std::string_view k[2] = {keys[i], keys[(i + 1) % keys.size()]};
        uint32_t len[2] = {static_cast<uint32_t>(k[0].size()), static_cast<uint32_t>(k[1].size())};
        analytics::Lookup lk[2] = {analytics::Lookup::kHit, analytics::Lookup::kMiss};
        analytics::Observation o;
        o.command_id = static_cast<uint16_t>(1 + i % 3);
        o.command = i % 3 == 0 ? "get" : i % 3 == 1 ? "mget" : "set";
        o.flags = (i % 3 == 2 ? analytics::kObsWrite : analytics::kObsRead) |
                  (i % 17 == 0 ? analytics::kObsError : 0u) |
                  (i % 23 == 0 ? analytics::kObsBlocking : 0u);
        o.start_ns = 0;
        o.end_ns = static_cast<int64_t>(i % 7 == 0 ? 2'000'000 : 50'000);
        o.keys = k;
        o.key_lengths = len;
        o.lookups = lk;
        o.reply_bytes = i * 10 + round;
        o.error_prefix = "WRONGTYPE";
        o.error_text = "WRONGTYPE Operation against a key holding the wrong kind of value";
        o.client_name = i % 2 ? "10.0.0.1:4000" : "10.0.0.2:4001";
        r.Record(o);
      }
      r.Tick();  // publishing hot keys allocates nothing either
    }
  };
  ASSERT_TRUE(g_hooked);
  run(3);  // warm-up: first sight of commands, patterns, clients, blocking histograms
  g_allocations = 0;
  g_counting = true;
  run(20);
  r.OnBytes(10, 20);
  r.OnEvent(analytics::SessionEvent::kClientConnected, 1);
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0u);
}

}  // namespace
}  // namespace respscope::recorder
