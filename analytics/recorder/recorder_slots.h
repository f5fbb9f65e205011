// Internal: the slot types a Recorder shares with its readers. Included only by recorder*.cc.
#pragma once

#include <array>
#include <atomic>
#include <string>

#include "analytics/recorder/recorder.h"

namespace respscope::recorder {

struct Recorder::CommandSlot {
  std::string name;
  Counter ok, error;
  AtomicHistogram latency;
  std::atomic<AtomicHistogram*> blocking{nullptr};  // allocated on first blocking call
  ~CommandSlot() { delete blocking.load(std::memory_order_relaxed); }
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
