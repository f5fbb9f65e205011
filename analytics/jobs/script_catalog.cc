#include "analytics/jobs/script_catalog.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>

namespace respscope::analytics::jobs {
namespace {

// ---------------------------------------------------------------------------------------------
// Body fingerprints: header first line (+ family, + tie-breaker) -> script.
// ---------------------------------------------------------------------------------------------

enum class Fam : uint8_t { kAny, kBull, kBullMQ };

struct HeaderRule {
  std::string_view first_line;
  Fam family;  // kBullMQ: body has XADD; kBull: body has no XADD; kAny: either
  // Tie-breaker: the rule applies only if the header (`--[[ ... ]]`) contains this text, or,
  // when it starts with "body:", if the whole body contains the rest. Empty: always.
  std::string_view must_contain;
  std::string_view name;
  ScriptOp op;
};

// First matching rule wins, so rules with a tie-breaker precede the fallback for the same line.
constexpr HeaderRule kHeaderRules[] = {
    // Job creation.
    {"Adds a job to the queue by doing the following:", Fam::kBullMQ, "", "addStandardJob",
     ScriptOp::kAddStandardJob},
    {"Adds a job to the queue by doing the following:", Fam::kBull, "", "addJob",
     ScriptOp::kAddJob},
    {"Adds a delayed job to the queue by doing the following:", Fam::kAny, "", "addDelayedJob",
     ScriptOp::kAddDelayedJob},
    {"Adds a prioritized job to the queue by doing the following:", Fam::kAny, "",
     "addPrioritizedJob", ScriptOp::kAddPrioritizedJob},
    {"Adds a parent job to the queue by doing the following:", Fam::kAny, "", "addParentJob",
     ScriptOp::kAddParentJob},
    {"Adds a job scheduler, i.e. a job factory that creates jobs based on a given schedule "
     "(repeat options).",
     Fam::kAny, "", "addJobScheduler", ScriptOp::kAddJobScheduler},
    {"Updates a job scheduler and adds next delayed job", Fam::kAny, "", "updateJobScheduler",
     ScriptOp::kUpdateJobScheduler},
    // Worker path.
    {"Move next job to be processed to active, lock it and fetch its data. The job", Fam::kAny, "",
     "moveToActive", ScriptOp::kMoveToActive},
    {"Move job from active to a finished status (completed or failed)", Fam::kAny, "",
     "moveToFinished", ScriptOp::kMoveToFinished},
    {"Moves job from active to delayed set.", Fam::kAny, "", "moveToDelayed",
     ScriptOp::kMoveToDelayed},
    {"Retries a failed job by moving it back to the wait queue.", Fam::kAny, "", "retryJob",
     ScriptOp::kRetryJob},
    {"Attempts to reprocess a job", Fam::kAny, "", "reprocessJob", ScriptOp::kReprocessJob},
    {"Move stalled jobs to wait.", Fam::kAny, "", "moveStalledJobsToWait",
     ScriptOp::kMoveStalledJobsToWait},
    {"Function to move job from active state to wait.", Fam::kAny, "", "moveJobFromActiveToWait",
     ScriptOp::kMoveJobFromActiveToWait},
    {"Moves job from active to waiting children set.", Fam::kAny, "", "moveToWaitingChildren",
     ScriptOp::kMoveToWaitingChildren},
    {"Promotes a job that is currently \"delayed\" to the \"waiting\" state", Fam::kAny, "",
     "promote", ScriptOp::kPromote},
    {"Update job progress", Fam::kAny, "", "updateProgress", ScriptOp::kUpdateProgress},
    {"Save stacktrace and failedReason.", Fam::kAny, "", "saveStacktrace",
     ScriptOp::kSaveStacktrace},
    // Removal and queue-level operations. removeJob-2 and removeUnprocessedChildren-2 share
    // their first line; their KEYS[2] documentation differs.
    {"Remove a job from all the statuses it may be in as well as all its data.", Fam::kAny,
     "repeat key", "removeJob", ScriptOp::kRemoveJob},
    {"Remove a job from all the statuses it may be in as well as all its data.", Fam::kAny, "",
     "removeUnprocessedChildren", ScriptOp::kOther},
    {"Remove a job from all the queues it may be in as well as all its data.", Fam::kBull, "",
     "removeJob", ScriptOp::kRemoveJob},
    {"Remove jobs from the specific set.", Fam::kAny, "", "cleanJobsInSet",
     ScriptOp::kCleanJobsInSet},
    {"Drains the queue, removes all jobs that are waiting", Fam::kAny, "", "drain",
     ScriptOp::kDrain},
    {"Completely obliterates a queue and all of its contents", Fam::kAny, "", "obliterate",
     ScriptOp::kObliterate},
    {"Pauses or resumes a queue globally.", Fam::kAny, "", "pause", ScriptOp::kPause},
    {"Pauses or resumes a queue globably.", Fam::kBull, "", "pause", ScriptOp::kPause},
    // Known, no transition.
    {"Add job log", Fam::kAny, "", "addLog", ScriptOp::kOther},
    {"Adds a repeatable job", Fam::kAny, "'delayed' key", "addRepeatableJob", ScriptOp::kOther},
    {"Adds a repeatable job", Fam::kAny, "", "updateRepeatableJobMillis", ScriptOp::kOther},
    {"Attempts to retry all failed jobs", Fam::kBull, "", "retryJobs", ScriptOp::kOther},
    {"Break parent-child dependency by removing", Fam::kAny, "", "removeChildDependency",
     ScriptOp::kOther},
    {"Change job delay when it is in delayed set.", Fam::kAny, "", "changeDelay", ScriptOp::kOther},
    {"Change job priority", Fam::kAny, "", "changePriority", ScriptOp::kOther},
    {"Checks if a job is finished (.i.e. is in the completed or failed set)", Fam::kAny, "",
     "isFinished", ScriptOp::kOther},
    {"Checks if job is in a given list.", Fam::kAny, "", "isJobInList", ScriptOp::kOther},
    {"Checks if queue is maxed.", Fam::kAny, "", "isMaxed", ScriptOp::kOther},
    {"Extend lock and removes the job from the stalled set.", Fam::kAny, "", "extendLock",
     ScriptOp::kOther},
    {"Extend locks for multiple jobs and remove them from the stalled set if successful.",
     Fam::kAny, "", "extendLocks", ScriptOp::kOther},
    {"Get a job state", Fam::kAny, "body:LPOS", "getStateV2", ScriptOp::kOther},
    {"Get a job state", Fam::kAny, "", "getState", ScriptOp::kOther},
    {"Get counts per child states", Fam::kAny, "", "getDependencyCounts", ScriptOp::kOther},
    {"Get counts per provided states", Fam::kAny, "priorities", "getCountsPerPriority",
     ScriptOp::kOther},
    {"Get counts per provided states", Fam::kAny, "", "getCounts", ScriptOp::kOther},
    {"Get job ids per provided states", Fam::kAny, "", "getRanges", ScriptOp::kOther},
    {"Get job scheduler record.", Fam::kAny, "", "getJobScheduler", ScriptOp::kOther},
    {"Get jobs (id + data) for the provided states.", Fam::kAny, "", "getJobs", ScriptOp::kOther},
    {"Get metrics", Fam::kAny, "", "getMetrics", ScriptOp::kOther},
    {"Get rate limit ttl", Fam::kAny, "", "getRateLimitTtl", ScriptOp::kOther},
    {"Move completed, failed or delayed jobs to wait.", Fam::kAny, "", "moveJobsToWait",
     ScriptOp::kOther},
    {"Moves a parent out of the waiting-children state if it has no pending", Fam::kAny, "",
     "releaseParentIfNoPendingDependencies", ScriptOp::kOther},
    {"Paginate a set or hash", Fam::kAny, "", "paginate", ScriptOp::kOther},
    {"Release lock", Fam::kAny, "", "releaseLock", ScriptOp::kOther},
    {"Remove all jobs matching a given pattern from all the queues they may be in as well as "
     "all its data.",
     Fam::kBull, "", "removeJobs", ScriptOp::kOther},
    {"Remove deduplication key if it matches the job id.", Fam::kAny, "", "removeDeduplicationKey",
     ScriptOp::kOther},
    {"Removes a job scheduler and its next scheduled job.", Fam::kAny, "", "removeJobScheduler",
     ScriptOp::kOther},
    {"Removes a repeatable job", Fam::kAny, "", "removeRepeatable", ScriptOp::kOther},
    {"Removes orphaned job keys that exist in Redis but are not referenced", Fam::kAny, "",
     "removeOrphanedJobs", ScriptOp::kOther},
    {"Takes a lock", Fam::kBull, "", "takeLock", ScriptOp::kOther},
    {"Update job data", Fam::kAny, "", "updateData", ScriptOp::kOther},
    {"Updates the delay set, by picking a delayed job that should", Fam::kBull, "",
     "updateDelaySet", ScriptOp::kOther},
    // BullMQ 6 relay (pub/sub over Redis) scripts.
    {"Records the last inbox position acknowledged by the reader.", Fam::kAny, "", "relayAckInbox",
     ScriptOp::kOther},
    {"Deletes the retained message of a topic.", Fam::kAny, "", "relayDeleteRetained",
     ScriptOp::kOther},
    {"Read-only views of a relay namespace, for dashboards. Lists are paginated", Fam::kAny, "",
     "relayGet", ScriptOp::kOther},
    {"Returns the relay namespaces of a prefix that may be in use (with live", Fam::kAny, "",
     "relayGetNamespaces", ScriptOp::kOther},
    {"Renews a relay node's liveness lease (and the expiry of its namespace).", Fam::kAny, "",
     "relayHeartbeat", ScriptOp::kOther},
    {"Publishes a message on a topic.", Fam::kAny, "", "relayPublish", ScriptOp::kOther},
    {"Reads a batch and atomically marks its entries as in flight so publish-time", Fam::kAny, "",
     "relayReadInbox", ScriptOp::kOther},
    {"Registers (or refreshes) a relay node, its liveness lease and its info.", Fam::kAny, "",
     "relayRegisterNode", ScriptOp::kOther},
    {"Removes every subscription of a relay endpoint.", Fam::kAny, "", "relayRemoveEndpoint",
     ScriptOp::kOther},
    {"Subscribes a relay endpoint to a topic pattern. For an exact topic (no", Fam::kAny, "",
     "relaySubscribe", ScriptOp::kOther},
    {"Removes expired relay nodes and expired retained messages, and prunes at", Fam::kAny, "",
     "relaySweep", ScriptOp::kOther},
    {"Records that a relay namespace is in use until a given time, in the", Fam::kAny, "",
     "relayTouchNamespace", ScriptOp::kOther},
    {"Removes the consumed entries of a relay node's inbox (up to the reader's", Fam::kAny, "",
     "relayTrimInbox", ScriptOp::kOther},
    {"Unregisters a relay node and frees its inbox immediately. Prunes at most", Fam::kAny, "",
     "relayUnregisterNode", ScriptOp::kOther},
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The `--[[ ... ]]` header; empty if the body does not start with one. Bodies are limited to a
// header of 8 KiB: the longest shipped header is ~2 KiB.
std::string_view Header(std::string_view body) {
  constexpr size_t kMaxHeader = 8192;
  size_t start = 0;
  while (start < body.size() && IsSpace(body[start])) ++start;
  if (body.substr(start, 4) != "--[[") return {};
  const std::string_view rest = body.substr(start + 4, kMaxHeader);
  const size_t end = rest.find("]]");
  if (end == std::string_view::npos) return {};
  return rest.substr(0, end);
}

std::string_view FirstLine(std::string_view header) {
  while (!header.empty()) {
    const size_t nl = header.find('\n');
    const std::string_view line = Trim(header.substr(0, nl));
    if (!line.empty()) return line;
    if (nl == std::string_view::npos) break;
    header.remove_prefix(nl + 1);
  }
  return {};
}

// The highest KEYS[n] the header documents: the script's numkeys in every shipped release.
int DocumentedNumKeys(std::string_view header) {
  int max_index = 0;
  size_t pos = 0;
  while ((pos = header.find("KEYS[", pos)) != std::string_view::npos) {
    pos += 5;
    int v = 0;
    auto [p, ec] = std::from_chars(header.data() + pos, header.data() + header.size(), v);
    if (ec == std::errc() && p < header.data() + header.size() && *p == ']') {
      max_index = std::max(max_index, v);
    }
  }
  return max_index;
}

// ---------------------------------------------------------------------------------------------
// KEYS shapes: the suffix sequence of each interpreted script per release.
// ---------------------------------------------------------------------------------------------

using K = KeyToken;
constexpr uint64_t B(K t) { return TokenBit(t); }
constexpr uint64_t kDone = B(K::kCompleted) | B(K::kFailed);
constexpr uint64_t kMetrics = B(K::kMetricsCompleted) | B(K::kMetricsFailed);
constexpr uint64_t kWaitOrPaused = B(K::kWait) | B(K::kPaused);
constexpr uint64_t kAnySet = B(K::kWait) | B(K::kPaused) | B(K::kActive) | B(K::kPrioritized) |
                             B(K::kPriority) | B(K::kDelayed) | B(K::kCompleted) | B(K::kFailed) |
                             B(K::kWaitingChildren);

constexpr size_t kMaxShapeKeys = 14;

struct Shape {
  Family family;
  ScriptOp op;
  std::string_view name;
  size_t n;
  std::array<uint64_t, kMaxShapeKeys> keys;  // allowed tokens per position
  size_t argc_min = 0;                       // ARGV count bounds (0 / SIZE_MAX: any)
  size_t argc_max = SIZE_MAX;
};

#define S(...) \
  { __VA_ARGS__ }
// clang-format off
const Shape kShapes[] = {
  // ---- BullMQ 5.x / 6.x
  {Family::kBullMQ, ScriptOp::kAddStandardJob, "addStandardJob", 9,
   S(B(K::kWait), B(K::kPaused), B(K::kMeta), B(K::kId), B(K::kCompleted), B(K::kDelayed),
     B(K::kActive), B(K::kEvents), B(K::kMarker))},
  {Family::kBullMQ, ScriptOp::kAddDelayedJob, "addDelayedJob", 6,
   S(B(K::kMarker), B(K::kMeta), B(K::kId), B(K::kDelayed), B(K::kCompleted), B(K::kEvents))},
  {Family::kBullMQ, ScriptOp::kAddPrioritizedJob, "addPrioritizedJob", 9,
   S(B(K::kMarker), B(K::kMeta), B(K::kId), B(K::kPrioritized), B(K::kDelayed),
     B(K::kCompleted), B(K::kActive), B(K::kEvents), B(K::kPc))},
  {Family::kBullMQ, ScriptOp::kAddParentJob, "addParentJob", 6,
   S(B(K::kMeta), B(K::kId), B(K::kDelayed), B(K::kWaitingChildren), B(K::kCompleted),
     B(K::kEvents))},
  {Family::kBullMQ, ScriptOp::kAddJobScheduler, "addJobScheduler", 11,
   S(B(K::kRepeat), B(K::kDelayed), B(K::kWait), B(K::kPaused), B(K::kMeta),
     B(K::kPrioritized), B(K::kMarker), B(K::kId), B(K::kEvents), B(K::kPc), B(K::kActive))},
  {Family::kBullMQ, ScriptOp::kUpdateJobScheduler, "updateJobScheduler", 12,
   S(B(K::kRepeat), B(K::kDelayed), B(K::kWait), B(K::kPaused), B(K::kMeta),
     B(K::kPrioritized), B(K::kMarker), B(K::kId), B(K::kEvents), B(K::kPc), B(K::kJob),
     B(K::kActive))},
  {Family::kBullMQ, ScriptOp::kMoveToActive, "moveToActive", 11,
   S(B(K::kWait), B(K::kActive), B(K::kPrioritized), B(K::kEvents), B(K::kStalled),
     B(K::kLimiter), B(K::kDelayed), B(K::kPaused), B(K::kMeta), B(K::kPc), B(K::kMarker))},
  {Family::kBullMQ, ScriptOp::kMoveToFinished, "moveToFinished", 14,
   S(B(K::kWait), B(K::kActive), B(K::kPrioritized), B(K::kEvents), B(K::kStalled),
     B(K::kLimiter), B(K::kDelayed), B(K::kPaused), B(K::kMeta), B(K::kPc), kDone, B(K::kJob),
     kMetrics, B(K::kMarker))},
  {Family::kBullMQ, ScriptOp::kMoveToDelayed, "moveToDelayed", 11,  // 6.3+
   S(B(K::kMarker), B(K::kActive), B(K::kPrioritized), B(K::kDelayed), B(K::kJob),
     B(K::kEvents), B(K::kMeta), B(K::kStalled), B(K::kWait), B(K::kLimiter), B(K::kPc))},
  {Family::kBullMQ, ScriptOp::kMoveToDelayed, "moveToDelayed", 12,  // 5.x, 6.0-6.2
   S(B(K::kMarker), B(K::kActive), B(K::kPrioritized), B(K::kDelayed), B(K::kJob),
     B(K::kEvents), B(K::kMeta), B(K::kStalled), B(K::kWait), B(K::kLimiter), B(K::kPaused),
     B(K::kPc))},
  {Family::kBullMQ, ScriptOp::kRetryJob, "retryJob", 11,
   S(B(K::kActive), B(K::kWait), B(K::kPaused), B(K::kJob), B(K::kMeta), B(K::kEvents),
     B(K::kDelayed), B(K::kPrioritized), B(K::kPc), B(K::kMarker), B(K::kStalled))},
  {Family::kBullMQ, ScriptOp::kReprocessJob, "reprocessJob", 9,  // 6.x
   S(B(K::kJob), B(K::kEvents), kDone, B(K::kWait), B(K::kMeta), B(K::kActive), B(K::kMarker),
     B(K::kPrioritized), B(K::kPc))},
  {Family::kBullMQ, ScriptOp::kReprocessJob, "reprocessJob", 8,  // 5.x
   S(B(K::kJob), B(K::kEvents), kDone, B(K::kWait), B(K::kMeta), B(K::kPaused), B(K::kActive),
     B(K::kMarker))},
  {Family::kBullMQ, ScriptOp::kMoveStalledJobsToWait, "moveStalledJobsToWait", 9,
   S(B(K::kStalled), B(K::kWait), B(K::kActive), B(K::kStalledCheck), B(K::kMeta),
     B(K::kPaused), B(K::kMarker), B(K::kEvents), B(K::kRepeat))},
  {Family::kBullMQ, ScriptOp::kMoveJobFromActiveToWait, "moveJobFromActiveToWait", 9,
   S(B(K::kActive), B(K::kWait), B(K::kStalled), B(K::kPaused), B(K::kMeta), B(K::kLimiter),
     B(K::kPrioritized), B(K::kMarker), B(K::kEvents))},
  {Family::kBullMQ, ScriptOp::kMoveToWaitingChildren, "moveToWaitingChildren", 7,
   S(B(K::kActive), B(K::kWaitingChildren), B(K::kJob), B(K::kJobDependencies),
     B(K::kJobUnsuccessful), B(K::kStalled), B(K::kEvents))},
  {Family::kBullMQ, ScriptOp::kPromote, "promote", 9,
   S(B(K::kDelayed), B(K::kWait), B(K::kPaused), B(K::kMeta), B(K::kPrioritized),
     B(K::kActive), B(K::kPc), B(K::kEvents), B(K::kMarker))},
  {Family::kBullMQ, ScriptOp::kUpdateProgress, "updateProgress", 3,
   S(B(K::kJob), B(K::kEvents), B(K::kMeta))},
  {Family::kBullMQ, ScriptOp::kRemoveJob, "removeJob", 2, S(B(K::kJob), B(K::kRepeat))},
  {Family::kBullMQ, ScriptOp::kCleanJobsInSet, "cleanJobsInSet", 3,
   S(kAnySet, B(K::kEvents), B(K::kRepeat))},
  {Family::kBullMQ, ScriptOp::kDrain, "drain", 5,
   S(B(K::kWait), B(K::kPaused), B(K::kDelayed), B(K::kPrioritized), B(K::kRepeat))},
  {Family::kBullMQ, ScriptOp::kObliterate, "obliterate", 2, S(B(K::kMeta), B(K::kBase))},
  {Family::kBullMQ, ScriptOp::kPause, "pause", 7,
   S(kWaitOrPaused, kWaitOrPaused, B(K::kMeta), B(K::kPrioritized), B(K::kEvents),
     B(K::kDelayed), B(K::kMarker))},
  // ---- Bull 4.x
  {Family::kBull, ScriptOp::kAddJob, "addJob", 6,
   S(B(K::kWait), B(K::kPaused), B(K::kMetaPaused), B(K::kId), B(K::kDelayed), B(K::kPriority))},
  {Family::kBull, ScriptOp::kMoveToActive, "moveToActive", 8,
   S(B(K::kWait), B(K::kActive), B(K::kPriority), B(K::kActiveAt), B(K::kStalled),
     B(K::kLimiter), B(K::kDelayed), B(K::kDrained))},
  {Family::kBull, ScriptOp::kMoveToFinished, "moveToFinished", 9,
   S(B(K::kActive), kDone, B(K::kJob), B(K::kWait), B(K::kPriority), B(K::kActiveAt),
     B(K::kDelayed), B(K::kStalled), kMetrics)},
  {Family::kBull, ScriptOp::kMoveToDelayed, "moveToDelayed", 4,
   S(B(K::kActive), B(K::kDelayed), B(K::kJob), B(K::kStalled))},
  {Family::kBull, ScriptOp::kRetryJob, "retryJob", 7,
   S(B(K::kActive), B(K::kWait), B(K::kJob), B(K::kMetaPaused), B(K::kPaused), B(K::kStalled),
     B(K::kPriority))},
  {Family::kBull, ScriptOp::kReprocessJob, "reprocessJob", 6,
   S(B(K::kJob), B(K::kJobLock), kDone, B(K::kWait), B(K::kMetaPaused), B(K::kPaused))},
  {Family::kBull, ScriptOp::kMoveStalledJobsToWait, "moveStalledJobsToWait", 7,
   S(B(K::kStalled), B(K::kWait), B(K::kActive), B(K::kFailed), B(K::kStalledCheck),
     B(K::kMetaPaused), B(K::kPaused))},
  {Family::kBull, ScriptOp::kPromote, "promote", 5,
   S(B(K::kDelayed), B(K::kWait), B(K::kPaused), B(K::kMetaPaused), B(K::kPriority))},
  {Family::kBull, ScriptOp::kPause, "pause", 5,
   S(kWaitOrPaused, kWaitOrPaused, B(K::kMetaPaused), B(K::kPaused) | B(K::kResumed),
     B(K::kMeta))},
  {Family::kBull, ScriptOp::kRemoveJob, "removeJob", 11,
   S(B(K::kActive), B(K::kWait), B(K::kDelayed), B(K::kPaused), B(K::kCompleted), B(K::kFailed),
     B(K::kPriority), B(K::kJob), B(K::kJobLogs), B(K::kLimiter), B(K::kBase))},
  {Family::kBull, ScriptOp::kUpdateProgress, "updateProgress", 2,
   S(B(K::kJob), B(K::kProgress))},
  {Family::kBull, ScriptOp::kCleanJobsInSet, "cleanJobsInSet", 3,
   S(kAnySet, B(K::kPriority), B(K::kLimiter))},
  {Family::kBull, ScriptOp::kObliterate, "obliterate", 2, S(B(K::kMetaPaused), B(K::kBase))},
  // saveStacktrace-1 [job key] ARGV: stacktrace, failedReason, attemptsMade. Its only KEY is a
  // job key, like updateData-1 (1 ARGV): the ARGV count tells them apart.
  {Family::kBull, ScriptOp::kSaveStacktrace, "saveStacktrace", 1, S(B(K::kJob)), 3, 3},
};
// clang-format on
#undef S

bool ShapeMatches(const Shape& s, std::span<const KeyToken> keys, size_t argc) {
  if (keys.size() != s.n || argc < s.argc_min || argc > s.argc_max) return false;
  for (size_t i = 0; i < s.n; ++i) {
    if ((s.keys[i] & TokenBit(keys[i])) == 0) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view FamilyName(Family f) {
  switch (f) {
    case Family::kBull:
      return "bull";
    case Family::kBullMQ:
      return "bullmq";
    default:
      return "unknown";
  }
}

ShaHex Sha1Hex(std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ShaHex out{};
  if (EVP_Digest(body.data(), body.size(), digest, &len, EVP_sha1(), nullptr) != 1 || len != 20) {
    out.fill('0');  // cannot happen with a working libcrypto; an all-zero SHA matches nothing
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < 20; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
  return out;
}

std::optional<ShaHex> ParseShaHex(std::string_view arg) {
  if (arg.size() != 40) return std::nullopt;
  ShaHex out{};
  for (size_t i = 0; i < 40; ++i) {
    if (HexValue(arg[i]) < 0) return std::nullopt;
    out[i] = static_cast<char>(arg[i] >= 'A' && arg[i] <= 'F' ? arg[i] - 'A' + 'a' : arg[i]);
  }
  return out;
}

std::optional<ScriptIdentity> IdentifyBody(std::string_view body) {
  const std::string_view header = Header(body);
  if (header.empty()) return std::nullopt;
  const std::string_view first = FirstLine(header);
  if (first.empty()) return std::nullopt;
  // BullMQ emits its events into the `events` stream; Bull publishes over pub/sub.
  const bool xadd = body.find("XADD") != std::string_view::npos;
  for (const HeaderRule& r : kHeaderRules) {
    if (r.first_line != first) continue;
    if (r.family == Fam::kBullMQ && !xadd) continue;
    if (r.family == Fam::kBull && xadd) continue;
    if (!r.must_contain.empty()) {
      if (r.must_contain.starts_with("body:")) {
        if (body.find(r.must_contain.substr(5)) == std::string_view::npos) continue;
      } else if (header.find(r.must_contain) == std::string_view::npos) {
        continue;
      }
    }
    ScriptIdentity id;
    // Interpreted scripts need a family (ARGV layouts differ): no XADD means Bull. Others,
    // and saveStacktrace (same in both), stay unknown unless the body says BullMQ.
    const bool family_matters = r.op != ScriptOp::kOther && r.op != ScriptOp::kSaveStacktrace;
    id.family = r.family == Fam::kBull     ? Family::kBull
                : r.family == Fam::kBullMQ ? Family::kBullMQ
                : xadd                     ? Family::kBullMQ
                : family_matters           ? Family::kBull
                                           : Family::kUnknown;
    id.op = r.op;
    id.name = r.name;
    id.numkeys = DocumentedNumKeys(header);
    id.by = IdentifiedBy::kBody;
    return id;
  }
  return std::nullopt;
}

std::optional<ScriptIdentity> IdentifyShape(std::span<const KeyToken> keys,
                                            std::span<const std::string_view> argv) {
  for (const Shape& s : kShapes) {
    if (!ShapeMatches(s, keys, argv.size())) continue;
    ScriptIdentity id;
    id.family = s.family;
    id.op = s.op;
    id.name = s.name;
    id.numkeys = static_cast<int>(keys.size());
    id.by = IdentifiedBy::kShape;
    return id;
  }
  return std::nullopt;
}

std::optional<ScriptIdentity> ScriptCatalog::LearnBody(std::string_view body) {
  if (Header(body).empty()) return std::nullopt;  // not ours: do not pay for a SHA1
  return LearnBody(Sha1Hex(body), body);
}

std::optional<ScriptIdentity> ScriptCatalog::LearnBody(const ShaHex& sha, std::string_view body) {
  if (const ScriptIdentity* known = Find(sha);
      known != nullptr && known->by == IdentifiedBy::kBody) {
    return *known;
  }
  auto id = IdentifyBody(body);
  if (id) Store(sha, *id);
  return id;
}

void ScriptCatalog::Learn(const ShaHex& sha, const ScriptIdentity& body_identity) {
  Store(sha, body_identity);
}

const ScriptIdentity* ScriptCatalog::Find(const ShaHex& sha) const {
  auto it = by_sha_.find(sha);
  return it == by_sha_.end() ? nullptr : &it->second;
}

void ScriptCatalog::Remember(const ShaHex& sha, const ScriptIdentity& identity) {
  auto it = by_sha_.find(sha);
  if (it != by_sha_.end()) {
    if (it->second.by == IdentifiedBy::kBody) return;
    it->second = identity;
    return;
  }
  Store(sha, identity);
}

void ScriptCatalog::Store(const ShaHex& sha, const ScriptIdentity& identity) {
  auto it = by_sha_.find(sha);
  if (it != by_sha_.end()) {
    it->second = identity;
    return;
  }
  if (by_sha_.size() >= max_scripts_) {
    ++dropped_;
    return;
  }
  by_sha_.emplace(sha, identity);
}

}  // namespace respscope::analytics::jobs
