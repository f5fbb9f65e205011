// BullMQ / Bull key names: `<prefix>:<queue>:<rest>`.
//
// Queue names contain no ':' but prefixes may (and may be hash tags such as `{bq}`), so a key is
// split with the configured prefixes, longest first: `<prefix>:` then the queue up to the next
// ':' then everything else. `<rest>` is classified into a KeyToken: a queue-level suffix
// (wait, meta, events, ...), a job key (`<jobId>`) or one of its sub-keys (`<jobId>:lock`, ...).
// Job ids may contain ':' (`repeat:<scheduler>:<ms>`), which is why known suffixes are matched
// whole first and job sub-keys only by their last segment.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace respscope::analytics::jobs {

enum class KeyToken : uint8_t {
  kForeign = 0,  // not under a configured prefix, or not `<prefix>:<queue>:...`
  kBase,         // `<prefix>:<queue>:` itself (obliterate, getCounts, Bull removeJob)
  kWait,
  kPaused,
  kMetaPaused,  // Bull
  kMeta,
  kId,
  kActive,
  kActiveAt,  // Bull `active@<token>` event channel
  kPrioritized,
  kPriority,  // Bull
  kDelayed,
  kCompleted,
  kFailed,
  kWaitingChildren,
  kStalled,
  kStalledCheck,
  kEvents,
  kMarker,
  kPc,
  kLimiter,
  kRepeat,
  kDe,
  kMetricsCompleted,
  kMetricsFailed,
  kDrained,   // Bull event channel
  kProgress,  // Bull event channel
  kResumed,   // Bull event channel
  kJob,       // `<jobId>`
  kJobLock,
  kJobLogs,
  kJobDependencies,
  kJobProcessed,
  kJobFailed,
  kJobUnsuccessful,
  kCount,
};
static_assert(static_cast<int>(KeyToken::kCount) <= 64, "tokens are used as bits of a mask");

constexpr uint64_t TokenBit(KeyToken t) { return uint64_t{1} << static_cast<unsigned>(t); }

// True for tokens that name a queue-level structure (not a job key, not foreign).
bool IsQueueLevel(KeyToken t);

struct ParsedKey {
  KeyToken token = KeyToken::kForeign;
  uint32_t prefix_index = 0;  // into the parser's prefixes
  std::string_view queue;     // view into the key
  std::string_view rest;      // after `<prefix>:<queue>:`; the job id for kJob
  // The job id for kJob and kJob* sub-keys (rest without the sub-key suffix).
  std::string_view job_id;
};

class QueueKeyParser {
 public:
  explicit QueueKeyParser(std::vector<std::string> prefixes);

  ParsedKey Parse(std::string_view key) const;
  // False when no prefix can start `key` (one table load; most application keys).
  bool MayMatch(std::string_view key) const {
    return !key.empty() && first_byte_[static_cast<unsigned char>(key[0])];
  }

  const std::vector<std::string>& prefixes() const { return prefixes_; }

 private:
  std::vector<std::string> prefixes_;  // as configured
  std::vector<uint32_t> by_length_;    // indices into prefixes_, longest first
  std::array<bool, 256> first_byte_{};  // first bytes of the prefixes
};

}  // namespace respscope::analytics::jobs
