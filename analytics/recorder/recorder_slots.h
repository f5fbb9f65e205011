// Internal: the slot types a Recorder shares with its readers. Included only by recorder*.cc.
#pragma once

#include <array>
#include <atomic>
#include <string>

#include "analytics/recorder/distinct_sketch.h"
#include "analytics/recorder/key_effect.h"
#include "analytics/recorder/recorder.h"

namespace respscope::recorder {

struct Recorder::CommandSlot {
  std::string name;
  Counter ok, error;
  AtomicHistogram latency;
  std::atomic<AtomicHistogram*> blocking{nullptr};  // allocated on first blocking call
  KeyEffect effect = KeyEffect::kNone;  // from the name, set before publication
  ~CommandSlot() { delete blocking.load(std::memory_order_relaxed); }
};

// Who made the latest run of sequential reads of a pattern (n_plus_one).
struct RunOffender {
  FixedText<64> client;  // the client slot's (sanitised) name
  FixedText<40> command;
};

struct BigEntry {
  uint64_t bytes;
  int64_t wall_ms;
  FixedText<kMaxStoredKey> key;
  FixedText<40> command;
};

struct Recorder::PatternSlot {
  std::string name;
  Counter read, write, other, hits, misses, bytes_in, bytes_out;
  AtomicHistogram latency;
  std::array<SeqCell<BigEntry>, kBigValuesPerPattern> big;
  // Writer-private mirror of `big` to decide without reading the seqlocked cells.
  std::array<uint64_t, kBigValuesPerPattern> big_bytes{};
  std::array<FixedText<kMaxStoredKey>, kBigValuesPerPattern> big_keys{};
  // Key lifetimes (per key): writes that leave a key without an expiry, expiries given,
  // expiries removed, deletes; distinct keys written without an expiry (allocated on the first
  // such write).
  Counter no_ttl_writes, ttl_sets, ttl_clears, deletes;
  std::atomic<DistinctSketch*> no_ttl_keys{nullptr};
  // Sequential single-key reads (see RecorderOptions::run_min_reads): runs, reads in them, and
  // the sum of the gaps (previous reply -> next request) between them.
  Counter runs, run_reads, run_gap_ns;
  SeqCell<RunOffender> run_offender;
  ~PatternSlot() { delete no_ttl_keys.load(std::memory_order_relaxed); }
};

struct Recorder::ClientRun {
  uint64_t client_id = 0;  // 0: free
  uint32_t pattern = 0;
  uint32_t reads = 0;
  int64_t end_ns = 0;      // the previous read's reply
  uint64_t key_sig = 0;    // the previous read's key (repeats of one key are no run)
  uint64_t gap_ns = 0;     // gaps summed while the run is shorter than run_min_reads
};

struct Recorder::ClientSlot {
  std::string name;
  Counter commands, errors;
  Counter shared, pinned;                          // commands by upstream mode (kObsShared/Pinned)
  std::atomic<const char*> pin_reason{nullptr};    // the last pinned command's reason (static)
};

struct ErrorSample {
  int64_t wall_ms;
  FixedText<200> text;
  FixedText<40> command;
};

struct Recorder::ErrorSlot {
  Counter count;
  SeqCell<ErrorSample> last;
};

struct SlowPayload {
  int64_t wall_ms;
  uint64_t duration_ns;
  FixedText<40> command;
  FixedText<136> pattern;
  FixedText<kMaxStoredKey> key;
  FixedText<64> client;
};

struct Recorder::SlowRecord {
  SeqCell<SlowPayload> cell;
};

}  // namespace respscope::recorder
