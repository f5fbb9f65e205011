// Recorder: one shard per IO thread, implementing ObservationSink.
//
// Hot path (Record/OnEvent/OnBytes, the IO thread): no lock, no atomic read-modify-write, no
// heap allocation in steady state. Allocation happens only the first time a command, pattern
// or client name is seen (bounded by the options) and when the rules change.
//
// Hand-off to the engine (CollectInto, any thread, typically the engine thread):
//   - every count is a single-writer Counter (relaxed load+store by the owner, relaxed load by
//     the reader): cumulative, monotonic, never lost, never counted twice; the engine
//     computes rates from differences of cumulative readings.
//   - per-command / per-pattern / per-client slots are allocated by the owner, fully built,
//     then published with a release store of their pointer (acquire on read); their names
//     never change afterwards.
//   - slow log entries, error samples, big values and hot-key slots are seqlocked
//     (SeqCell / per-slot generation): a reader sees whole entries or retries.
//   - hot keys are published by Tick() (every 100 ms on the IO thread), not per command: a
//     collection shows them as of the last tick, every other figure as of the call.
// A collection is not an atomic cut across counters (a command in flight may be in the
// per-command count and not yet in its pattern count); each counter on its own is exact.
//
// Lifetime: the engine must stop calling CollectInto before the Recorder is destroyed.
//
// Privacy: every key, error text and client name goes through patterns::Sanitizer before it is
// copied. Excluded keys are skipped per key (still counted in command totals); sample_rate
// applies to hot keys, big values and the slow log's key only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analytics/observation.h"
#include "analytics/patterns/key_rules.h"
#include "analytics/patterns/normalizer.h"
#include "analytics/patterns/sanitizer.h"
#include "analytics/recorder/histogram.h"
#include "analytics/recorder/key_effect.h"
#include "analytics/recorder/single_writer.h"
#include "analytics/recorder/space_saving.h"
#include "analytics/recorder/stats.h"

namespace respscope::recorder {

struct RecorderOptions {
  uint64_t slow_threshold_ns = 10'000'000;  // slow log entry at or above this latency
  size_t hot_key_capacity = 512;            // Space-Saving slots per shard
  size_t slow_log_size = 128;               // last N slow commands per shard
  size_t max_clients = 256;                 // distinct client names per shard; beyond: "other"
  size_t max_commands = 1024;               // distinct command names per shard; beyond: "other"
  size_t max_patterns_cap = 10000;          // hard cap on pattern slots whatever the rules say
  // Per-pattern evidence for the insights no_ttl_pattern and n_plus_one (insights.enabled):
  // key lifetimes (writes without expiry, a distinct-key sketch, expiries, deletes) and runs
  // of sequential single-key reads per client. Off: none of that work is done.
  bool key_lifecycle = true;
  // A run: consecutive single-key reads of one pattern by one connection, each sent at most
  // run_max_gap_ns after the previous reply arrived, of distinct keys; counted from
  // run_min_reads reads on.
  int64_t run_max_gap_ns = 5'000'000;
  uint32_t run_min_reads = 10;
};

// Runs longer than this count as several (one MGET per this many keys).
inline constexpr uint32_t kRunBatch = 100;
// Connections whose run is followed at once per shard (direct-mapped by connection id; a
// connection whose slot is taken by another starts over: evidence lost, never invented).
inline constexpr size_t kRunSlots = 1024;

inline constexpr size_t kBigValuesPerPattern = 4;

// The bounded set of error prefixes counted separately; anything else is "other".
std::string_view ErrorPrefixBucket(std::string_view prefix);
inline constexpr size_t kErrorPrefixCount = 23;
std::string_view ErrorPrefixName(size_t index);  // index < kErrorPrefixCount

class Recorder final : public analytics::ObservationSink {
 public:
  Recorder(RecorderOptions options, std::shared_ptr<const patterns::RulesHub> rules);
  ~Recorder() override;

  void Record(const analytics::Observation& obs) override;
  void OnEvent(analytics::SessionEvent event, uint64_t client_id) override;
  void OnBytes(uint64_t client_in, uint64_t client_out) override;
  void Tick() override;

  // Any thread. Adds this shard's cumulative state into `view` (merging by name).
  void CollectInto(StatsView& view) const;

  const RecorderOptions& options() const { return options_; }

 private:
  struct CommandSlot;
  struct PatternSlot;
  struct ClientSlot;
  struct ErrorSlot;
  struct SlowRecord;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using NameIndex = std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>>;

  void MaybeReloadRules();
  CommandSlot& CommandFor(uint16_t id, std::string_view name);
  PatternSlot& PatternFor(uint32_t pattern_id);
  ClientSlot& ClientFor(std::string_view name);
  struct ClientRun;
  void RecordKeys(const analytics::Observation& obs, bool timed, uint64_t duration_ns,
                  KeyEffect effect, ClientSlot* client);
  void TrackRun(const analytics::Observation& obs, PatternSlot& p, uint32_t pattern_id,
                std::string_view key, ClientSlot* client);
  void RecordError(const analytics::Observation& obs);
  void RecordSlow(const analytics::Observation& obs, uint64_t duration_ns, uint32_t pattern_id,
                  std::string_view key);
  void MaybeBigValue(PatternSlot& p, const analytics::Observation& obs, std::string_view key);

  const RecorderOptions options_;
  const std::shared_ptr<const patterns::RulesHub> hub_;

  // Writer-private state.
  std::shared_ptr<const patterns::KeyRules> rules_;
  uint64_t rules_version_ = 0;
  patterns::Normalizer normalizer_;
  patterns::Sanitizer sanitizer_;
  std::vector<int32_t> command_by_id_;
  NameIndex command_index_, client_index_;
  std::string first_key_;  // sanitised first key of the current command (reused buffer)
  std::string client_buf_;
  std::string last_client_raw_;         // client_name of the last command (fixed capacity)
  ClientSlot* last_client_ = nullptr;   // its slot; nullptr: no cached name

  // Shared with readers: append-only slot tables, published by count (release/acquire).
  std::unique_ptr<std::atomic<CommandSlot*>[]> commands_;
  std::atomic<uint32_t> n_commands_{0};
  std::unique_ptr<std::atomic<PatternSlot*>[]> patterns_;
  std::atomic<uint32_t> n_patterns_{0};  // highest published pattern id + 1 (may have holes)
  std::unique_ptr<std::atomic<ClientSlot*>[]> clients_;
  std::atomic<uint32_t> n_clients_{0};
  std::unique_ptr<ErrorSlot[]> errors_;
  std::unique_ptr<SlowRecord[]> slow_;
  Counter slow_head_;
  SpaceSaving hot_keys_;
  std::unique_ptr<ClientRun[]> runs_;  // kRunSlots, writer-private (key_lifecycle only)

  Counter ev_opened_, ev_closed_, ev_rejected_, ev_connect_errors_, ev_lost_;
  Counter ev_accept_fd_;
  Counter ev_client_proto_, ev_upstream_proto_, ev_stalls_, bytes_in_, bytes_out_;
};

}  // namespace respscope::recorder
