// Micro benchmarks for the two RESP scanners (built only with -DRESPSCOPE_BENCH=ON).
//
//   build-bench/bench/bench_scanners [--benchmark_min_time=0.2]
//
// Two shapes, for each scanner:
//   Pipelined*  many small frames in one read, as a pipelining client (redis-benchmark -P 16)
//               or Redis answering it delivers them. Reported as ns per frame ("ns_per_cmd";
//               goal <= 50 ns).
//   Large*      one big bulk body fed in reads of 64 KiB (the proxy's read buffer,
//               ThreadContext::kScratch), 16 KiB and 1448 B. Reported as bytes of wire per second
//               (goal >= 5 GB/s) and ns per read: bodies are only counted down, never copied, so
//               the cost is per read, not per byte.
//
// Inputs are built once outside the timed loop; every iteration scans the whole input from a
// fresh position with the same scanner, as a long-lived connection does. Timing claims live
// here, never in tests (STYLE.md).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/resp/reply_scanner.h"
#include "proxy/resp/request_scanner.h"

namespace {

using respscope::resp::ReplyInfo;
using respscope::resp::ReplyScanner;
using respscope::resp::Request;
using respscope::resp::RequestScanner;
using respscope::resp::ScanStatus;

constexpr size_t kReadSize = 64 * 1024;  // = net::ThreadContext::kScratch

// Built with append: GCC 12 warns (-Wrestrict, a known false positive) on operator+ chains.
std::string Bulk(std::string_view s) {
  std::string out = "$";
  out.append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n");
  return out;
}

std::string Command(std::initializer_list<std::string_view> args) {
  std::string out = "*";
  out.append(std::to_string(args.size())).append("\r\n");
  for (std::string_view a : args) out += Bulk(a);
  return out;
}

// redis-benchmark's key shape with -r: "key:000000012345".
std::string Key(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key:%012d", i);
  return buf;
}

// A pipeline of `count` commands of one kind, as redis-benchmark sends them.
std::string RequestPipeline(int kind, int count) {
  std::string value(3, 'x');  // redis-benchmark's default -d 3
  std::string out;
  for (int i = 0; i < count; ++i) {
    std::string k = Key(i * 7919 % 100000);
    switch (kind) {
      case 0:
        out += Command({"GET", k});
        break;
      case 1:
        out += Command({"SET", k, value});
        break;
      case 2: {
        std::string mget = "*11\r\n";
        mget += Bulk("MGET");
        for (int j = 0; j < 10; ++j) mget += Bulk(Key((i * 10 + j) % 100000));
        out += mget;
        break;
      }
      case 3:
        out += Command({"LPUSH", "mylist", value});
        break;
    }
  }
  return out;
}

// The replies Redis sends to those pipelines.
std::string ReplyPipeline(int kind, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    switch (kind) {
      case 0:  // GET: 3 hits in 4
        out += (i % 4 == 3) ? "$-1\r\n" : Bulk("xxx");
        break;
      case 1:  // SET
        out += "+OK\r\n";
        break;
      case 2:  // MGET 10 keys: 2 hits in 3
        out += "*10\r\n";
        for (int j = 0; j < 10; ++j) out += (j % 3 == 2) ? "$-1\r\n" : Bulk("xxx");
        break;
      case 3:  // LPUSH: the list's new length
        out.append(":").append(std::to_string(i + 1)).append("\r\n");
        break;
      case 4:  // LRANGE_100
        out += "*100\r\n";
        for (int j = 0; j < 100; ++j) out += Bulk("xxx");
        break;
    }
  }
  return out;
}

const char* kRequestKinds[] = {"GET", "SET", "MGET10", "LPUSH"};
const char* kReplyKinds[] = {"GET", "SET", "MGET10", "LPUSH", "LRANGE100"};

void SetPerCommand(benchmark::State& state, int64_t commands_per_iter, size_t bytes_per_iter) {
  state.SetItemsProcessed(state.iterations() * commands_per_iter);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes_per_iter));
  state.counters["ns_per_cmd"] = benchmark::Counter(
      static_cast<double>(commands_per_iter),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  // kInvert of a rate gives seconds per command; the console prints it with its unit (ns).
}

// Large values: wire bytes per second, and the cost of one scanner call per read.
void SetPerRead(benchmark::State& state, size_t bytes_per_iter, size_t read_size) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes_per_iter));
  const double reads = static_cast<double>((bytes_per_iter + read_size - 1) / read_size);
  state.counters["ns_per_read"] = benchmark::Counter(
      reads, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.SetLabel("reads of " + std::to_string(read_size) + " B");
}

// Scans `input` in reads of at most `read_size` bytes; returns frames seen (must be `expect`).
template <typename Scanner, typename Out>
int64_t ScanAll(Scanner& scanner, std::string_view input, size_t read_size, Out* out) {
  int64_t frames = 0;
  while (!input.empty()) {
    std::string_view chunk = input.substr(0, read_size);
    input.remove_prefix(chunk.size());
    for (;;) {
      ScanStatus st = scanner.Next(&chunk, out);
      if (st == ScanStatus::kCommand) {
        ++frames;
        benchmark::DoNotOptimize(out);
        continue;
      }
      if (st == ScanStatus::kError) {
        std::fprintf(stderr, "scanner error: %s\n", scanner.error().c_str());
        std::abort();
      }
      break;  // kNeedMore: chunk consumed
    }
  }
  return frames;
}

// Arg 0: command kind (kRequestKinds). 1024 commands per iteration, one 64 KiB read at a time
// (a pipeline of 16 fits in one read; 1024 spans a few reads, exercising the carry-over).
void BM_RequestPipelined(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  const int count = 1024;
  std::string input = RequestPipeline(kind, count);
  RequestScanner scanner;
  Request req;
  for (auto _ : state) {
    int64_t n = ScanAll(scanner, input, kReadSize, &req);
    if (n != count) state.SkipWithError("wrong command count");
  }
  state.SetLabel(kRequestKinds[kind]);
  SetPerCommand(state, count, input.size());
}
BENCHMARK(BM_RequestPipelined)->DenseRange(0, 3);

// Arg 0: reply kind (kReplyKinds).
void BM_ReplyPipelined(benchmark::State& state) {
  const int kind = static_cast<int>(state.range(0));
  const int count = 1024;
  std::string input = ReplyPipeline(kind, count);
  ReplyScanner scanner;
  ReplyInfo info;
  for (auto _ : state) {
    int64_t n = ScanAll(scanner, input, kReadSize, &info);
    if (n != count) state.SkipWithError("wrong frame count");
  }
  state.SetLabel(kReplyKinds[kind]);
  SetPerCommand(state, count, input.size());
}
BENCHMARK(BM_ReplyPipelined)->DenseRange(0, 4);

// Worst case for the request scanner's carry-over: every command split across two reads.
void BM_RequestPipelinedSplit(benchmark::State& state) {
  const int count = 1024;
  std::string input = RequestPipeline(1, count);  // SET key:... xxx, 45 bytes each
  const size_t read_size = static_cast<size_t>(state.range(0));
  RequestScanner scanner;
  Request req;
  for (auto _ : state) {
    int64_t n = ScanAll(scanner, input, read_size, &req);
    if (n != count) state.SkipWithError("wrong command count");
  }
  state.SetLabel("SET, reads of " + std::to_string(read_size) + " B");
  SetPerCommand(state, count, input.size());
}
BENCHMARK(BM_RequestPipelinedSplit)->Arg(31)->Arg(1500);

// Large values. Bodies are counted down, never read or copied, so the cost is per read, not per
// byte: GB/s = read size / (cost of one Next() over a read of body bytes). Args: value size,
// read size: 64 KiB (the proxy's read buffer), 16 KiB and 1448 B (one TCP segment on loopback
// with a 1500 MTU: the worst case a slow sender can force).
void BM_RequestLargeValue(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const size_t read_size = static_cast<size_t>(state.range(1));
  std::string input = Command({"SET", "big:1", std::string(size, 'v')});
  RequestScanner scanner;
  Request req;
  for (auto _ : state) {
    if (ScanAll(scanner, input, read_size, &req) != 1) state.SkipWithError("no command");
  }
  SetPerRead(state, input.size(), read_size);
}
BENCHMARK(BM_RequestLargeValue)
    ->Args({1 << 20, kReadSize})
    ->Args({16 << 20, kReadSize})
    ->Args({16 << 20, 16 << 10})
    ->Args({16 << 20, 1448});

void BM_ReplyLargeValue(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const size_t read_size = static_cast<size_t>(state.range(1));
  std::string input = Bulk(std::string(size, 'v'));
  ReplyScanner scanner;
  ReplyInfo info;
  for (auto _ : state) {
    if (ScanAll(scanner, input, read_size, &info) != 1) state.SkipWithError("no frame");
  }
  SetPerRead(state, input.size(), read_size);
}
BENCHMARK(BM_ReplyLargeValue)
    ->Args({1 << 20, kReadSize})
    ->Args({16 << 20, kReadSize})
    ->Args({16 << 20, 16 << 10})
    ->Args({16 << 20, 1448});

}  // namespace

BENCHMARK_MAIN();
