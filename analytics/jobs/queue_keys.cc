#include "analytics/jobs/queue_keys.h"

#include <algorithm>
#include <array>
#include <utility>

namespace respscope::analytics::jobs {
namespace {

struct SuffixToken {
  std::string_view suffix;
  KeyToken token;
};

// Every queue-level suffix BullMQ 5/6 and Bull 4 use (bullmq-wire.md sections 4 and 5), plus
// the Bull pub/sub channel names that appear as KEYS.
constexpr std::array kQueueSuffixes = {
    SuffixToken{"wait", KeyToken::kWait},
    SuffixToken{"paused", KeyToken::kPaused},
    SuffixToken{"meta-paused", KeyToken::kMetaPaused},
    SuffixToken{"meta", KeyToken::kMeta},
    SuffixToken{"id", KeyToken::kId},
    SuffixToken{"active", KeyToken::kActive},
    SuffixToken{"prioritized", KeyToken::kPrioritized},
    SuffixToken{"priority", KeyToken::kPriority},
    SuffixToken{"delayed", KeyToken::kDelayed},
    SuffixToken{"completed", KeyToken::kCompleted},
    SuffixToken{"failed", KeyToken::kFailed},
    SuffixToken{"waiting-children", KeyToken::kWaitingChildren},
    SuffixToken{"stalled", KeyToken::kStalled},
    SuffixToken{"stalled-check", KeyToken::kStalledCheck},
    SuffixToken{"events", KeyToken::kEvents},
    SuffixToken{"marker", KeyToken::kMarker},
    SuffixToken{"pc", KeyToken::kPc},
    SuffixToken{"limiter", KeyToken::kLimiter},
    SuffixToken{"repeat", KeyToken::kRepeat},
    SuffixToken{"de", KeyToken::kDe},
    SuffixToken{"metrics:completed", KeyToken::kMetricsCompleted},
    SuffixToken{"metrics:failed", KeyToken::kMetricsFailed},
    SuffixToken{"drained", KeyToken::kDrained},
    SuffixToken{"progress", KeyToken::kProgress},
    SuffixToken{"resumed", KeyToken::kResumed},
};

constexpr std::array kJobSubKeys = {
    SuffixToken{"lock", KeyToken::kJobLock},
    SuffixToken{"logs", KeyToken::kJobLogs},
    SuffixToken{"dependencies", KeyToken::kJobDependencies},
    SuffixToken{"processed", KeyToken::kJobProcessed},
    SuffixToken{"failed", KeyToken::kJobFailed},
    SuffixToken{"unsuccessful", KeyToken::kJobUnsuccessful},
};

KeyToken ClassifyRest(std::string_view rest, std::string_view* job_id) {
  *job_id = {};
  if (rest.empty()) return KeyToken::kBase;
  for (const auto& s : kQueueSuffixes) {
    if (rest == s.suffix) return s.token;
  }
  if (rest.starts_with("active@")) return KeyToken::kActiveAt;
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && colon > 0) {
    const std::string_view last = rest.substr(colon + 1);
    for (const auto& s : kJobSubKeys) {
      if (last == s.suffix) {
        *job_id = rest.substr(0, colon);
        return s.token;
      }
    }
  }
  *job_id = rest;
  return KeyToken::kJob;
}

}  // namespace

bool IsQueueLevel(KeyToken t) { return t != KeyToken::kForeign && t < KeyToken::kJob; }

QueueKeyParser::QueueKeyParser(std::vector<std::string> prefixes) : prefixes_(std::move(prefixes)) {
  for (uint32_t i = 0; i < prefixes_.size(); ++i) {
    if (prefixes_[i].empty()) continue;
    by_length_.push_back(i);
    first_byte_[static_cast<unsigned char>(prefixes_[i][0])] = true;
  }
  std::stable_sort(by_length_.begin(), by_length_.end(), [this](uint32_t a, uint32_t b) {
    return prefixes_[a].size() > prefixes_[b].size();
  });
}

ParsedKey QueueKeyParser::Parse(std::string_view key) const {
  ParsedKey out;
  if (!MayMatch(key)) return out;
  for (uint32_t idx : by_length_) {
    const std::string& p = prefixes_[idx];
    if (key.size() <= p.size() + 1 || !key.starts_with(p) || key[p.size()] != ':') continue;
    const std::string_view after = key.substr(p.size() + 1);
    const size_t colon = after.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    out.prefix_index = idx;
    out.queue = after.substr(0, colon);
    out.rest = after.substr(colon + 1);
    out.token = ClassifyRest(out.rest, &out.job_id);
    return out;
  }
  return out;
}

}  // namespace respscope::analytics::jobs
