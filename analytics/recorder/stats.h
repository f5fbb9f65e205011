// StatsView: what the engine reads out of the recorder shards, merged by name. Plain values,
// engine thread only. Every count is cumulative since the shard started.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "analytics/recorder/histogram.h"

namespace respscope::recorder {

struct CommandView {
  uint64_t ok = 0;
  uint64_t error = 0;
  Histogram latency;   // non-blocking calls with a known latency
  Histogram blocking;  // kObsBlocking calls
};

struct BigValue {
  std::string key;      // sanitised
  std::string command;
  uint64_t bytes = 0;   // reply_bytes of a read, request_bytes of a write
  int64_t wall_ms = 0;  // unix epoch milliseconds
};

struct PatternView {
  uint64_t read = 0, write = 0, other = 0;  // commands touching the pattern, once per command
  uint64_t hits = 0, misses = 0;            // per key
  uint64_t bytes_in = 0, bytes_out = 0;     // of commands whose FIRST key has this pattern
  Histogram latency;                        // non-blocking, once per command
  std::vector<BigValue> big_values;         // largest first, at most kBigValuesPerPattern
  // Key lifetimes, per key (RecorderOptions::key_lifecycle): writes leaving a key without an
  // expiry, expiries given (SET EX..., SETEX, EXPIRE...), removed (PERSIST), deletes.
  uint64_t no_ttl_writes = 0, ttl_sets = 0, ttl_clears = 0, deletes = 0;
  // Distinct keys written without an expiry: the merged sketch registers (empty when none),
  // and the estimate the engine computes from them (cumulative since start).
  std::vector<uint8_t> no_ttl_registers;
  double no_ttl_keys = 0;
  // Sequential single-key reads (n_plus_one): runs, reads in runs, summed gaps (ns) between a
  // reply and the next read; who made the latest run.
  uint64_t runs = 0, run_reads = 0, run_gap_ns = 0;
  std::string run_client, run_command;
};

struct HotKeyView {
  std::string pattern;
  uint64_t count = 0;        // estimate summed over shards (see SpaceSaving)
  uint64_t error = 0;        // count - error <= sampled true count (a guaranteed lower bound)
  uint64_t present_min = 0;  // merge bookkeeping (see Recorder::CollectInto)
};

struct SlowEntry {
  int64_t wall_ms = 0;
  uint64_t duration_ns = 0;
  std::string command, pattern, key, client;  // key: sanitised; empty when not sampled
};

struct ErrorView {
  uint64_t count = 0;
  std::string last_text;  // sanitised: prefix + first line cut
  std::string last_command;
  int64_t last_wall_ms = 0;
};

struct ClientView {
  uint64_t commands = 0;
  uint64_t errors = 0;
  // Commands by how they reached Redis; the rest went over dedicated connections.
  uint64_t shared = 0, pinned = 0;
  std::string pin_reason;  // why a pinned connection of this client left the shared ones
  uint64_t dedicated() const { return commands - shared - pinned; }
  // "shared", "pinned", "dedicated", or "mixed" when its commands took more than one way.
  const char* mode() const {
    int ways = (shared > 0) + (pinned > 0) + (dedicated() > 0);
    if (ways > 1) return "mixed";
    return shared > 0 ? "shared" : pinned > 0 ? "pinned" : "dedicated";
  }
};

struct EventTotals {
  uint64_t connections_opened = 0, connections_closed = 0, rejected_max_clients = 0;
  uint64_t upstream_connect_errors = 0, observation_lost = 0;
  uint64_t client_protocol_errors = 0, upstream_protocol_errors = 0, backpressure_stalls = 0;
  uint64_t bytes_client_in = 0, bytes_client_out = 0;
  uint64_t accept_fd_exhausted = 0;  // client listener: accept() found no free descriptor
};

struct StatsView {
  std::map<std::string, CommandView, std::less<>> commands;
  std::map<std::string, PatternView, std::less<>> patterns;
  std::map<std::string, HotKeyView, std::less<>> hot_keys;
  uint64_t hot_key_min_total = 0;  // sum over full shards of their smallest tracked count
  std::vector<SlowEntry> slow_log;  // unsorted across shards
  std::map<std::string, ErrorView, std::less<>> errors;  // by prefix (bounded set + "other")
  std::map<std::string, ClientView, std::less<>> clients;
  EventTotals events;
  int shards = 0;
};

}  // namespace respscope::recorder
