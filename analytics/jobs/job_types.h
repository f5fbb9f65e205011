// Job transitions, duration buckets and the snapshot the job tracker hands to the metrics and
// API layers. Names here are part of the metrics contract
// (`respscope_bullmq_jobs_total{queue, transition}`): never rename, only append.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace respscope::analytics::jobs {

// What a transition counter counts. Each counts only when Redis's reply says it happened.
enum class Transition : uint8_t {
  kAdded,            // a job was created (any add script, flows, job schedulers)
  kWaiting,          // a job entered the wait list: added there, promoted, retried at once,
                     // manually retried (reprocess), recovered from a stall, or sent back by the
                     // rate limiter. NOT counted: automatic delayed -> waiting promotions, which
                     // happen inside other scripts and are invisible on the wire.
  kDelayed,          // added delayed, or moved to delayed (backoff, moveToDelayed)
  kPrioritized,      // added with a priority
  kWaitingChildren,  // flow parent added, or a job moved to wait for its children
  kActive,           // a worker took the job (an activation reply carried it)
  kProgress,         // updateProgress succeeded
  kCompleted,
  kFailed,       // final failure (no retry left, unrecoverable, stalled too often)
  kRetried,      // a failed attempt was re-queued (at once or after a backoff), or a finished
                 // job was retried by hand (job.retry() / reprocess)
  kStalled,      // the stall checker found the job's worker gone
  kRemoved,      // job.remove() / queue.remove()
  kPaused,       // queue paused (queue-level, no job)
  kResumed,      // queue resumed
  kDrained,      // queue.drain() ran (queue-level); NOT the "queue ran empty" event
  kCleaned,      // jobs removed by queue.clean(): counts jobs, not calls
  kObliterated,  // queue.obliterate() finished (queue-level)
  kCount,
};
inline constexpr size_t kTransitionCount = static_cast<size_t>(Transition::kCount);

// Stable lowercase names, indexed by Transition.
inline constexpr std::array<std::string_view, kTransitionCount> kTransitionNames = {
    "added",    "waiting",   "delayed", "prioritized", "waiting_children", "active",
    "progress", "completed", "failed",  "retried",     "stalled",          "removed",
    "paused",   "resumed",   "drained", "cleaned",     "obliterated",
};
constexpr std::string_view TransitionName(Transition t) {
  return kTransitionNames[static_cast<size_t>(t)];
}

// Where a job is, as far as respscope saw it.
enum class JobState : uint8_t {
  kUnknown,
  kWaiting,
  kDelayed,
  kPrioritized,
  kWaitingChildren,
  kActive,
  kCompleted,
  kFailed,
  kRemoved,
};
std::string_view JobStateName(JobState s);  // "unknown", "waiting", ..., "waiting_children"

// Histogram upper bounds. Durations in seconds (wait: added/ready -> active; process:
// active -> finished); attempts per finished job as a plain count.
inline constexpr std::array<double, 18> kJobDurationBucketsSeconds = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
inline constexpr std::array<double, 7> kJobAttemptsBuckets = {1, 2, 3, 4, 5, 10, 25};

// counts[i] is the number of observations v with bounds[i-1] < v <= bounds[i]
// (NOT cumulative); counts.back() is the +Inf overflow bucket.
struct HistogramSnapshot {
  std::vector<uint64_t> counts;
  double sum = 0;
  uint64_t count = 0;
};

// What the wire says about keeping finished jobs, cumulative per queue. Adds: the job options
// (BullMQ's msgpack opts, Bull's opts JSON) with no removeOnComplete / removeOnFail (absent or
// false) keep every such job forever. Finishes: the keepJobs a worker sends with each
// moveToFinished (the job's option, else the worker's own) -- {count: -1} and no age keeps all.
struct JobRetentionCounts {
  uint64_t adds_read = 0;            // adds whose options could be read
  uint64_t adds_keep_completed = 0;  // ... of them without removeOnComplete
  uint64_t adds_keep_failed = 0;     // ... of them without removeOnFail
  uint64_t completed_read = 0;       // completions whose keepJobs could be read
  uint64_t completed_keep_all = 0;   // ... of them keeping every completed job
  uint64_t failed_read = 0;          // final failures whose keepJobs could be read
  uint64_t failed_keep_all = 0;      // ... of them keeping every failed job
};

struct QueueJobsSnapshot {
  std::string prefix;  // as configured, e.g. "bull" or "{bq}"
  std::string name;    // the queue name (no ':')
  std::array<uint64_t, kTransitionCount> transitions{};
  JobRetentionCounts retention;
  // Unix ms since when the longest-runnable job respscope saw become runnable (waiting,
  // prioritized, or delayed and due) has not been taken by a worker; -1 when none is known.
  // May lie in the future (only delayed jobs, not yet due). Jobs that were waiting before
  // respscope started, or whose records were evicted, are not known.
  int64_t oldest_runnable_ms = -1;
  HistogramSnapshot wait_seconds;     // bounds: kJobDurationBucketsSeconds
  HistogramSnapshot process_seconds;  // bounds: kJobDurationBucketsSeconds
  HistogramSnapshot attempts;         // bounds: kJobAttemptsBuckets; one per completed/failed job
};

struct RecentJobSnapshot {
  std::string prefix;
  std::string queue;
  std::string id;
  std::string name;  // truncated to kMaxJobNameBytes
  JobState state = JobState::kUnknown;
  // Unix milliseconds from the application's clocks (BullMQ/Bull timestamps); -1 = unknown.
  int64_t added_ms = -1;
  int64_t processed_ms = -1;  // start of the latest attempt
  int64_t finished_ms = -1;
  uint32_t attempts = 0;        // attempts started, as far as respscope knows
  std::string failed_reason;    // sanitised; latest failure, also for retried attempts
  int64_t updated_unix_ms = 0;  // respscope's wall clock at the latest transition
};

struct JobsCounters {
  uint64_t scripts_known = 0;        // SHAs in the catalog (body- or shape-identified)
  uint64_t scripts_dropped = 0;      // SHAs not remembered: catalog full
  uint64_t calls_by_body = 0;        // script calls identified from a body seen earlier
  uint64_t calls_by_shape = 0;       // script calls identified by KEYS shape
  uint64_t calls_unknown = 0;        // script calls left as plain EVALSHA traffic
  uint64_t calls_rejected = 0;       // identified calls whose reply was an error / failure code
  uint64_t calls_unparsed = 0;       // identified calls with a truncated or malformed reply
  uint64_t calls_foreign = 0;        // identified calls outside the configured prefixes
  uint64_t queues_overflow = 0;      // transitions dropped: more queues than max_queues
  uint64_t jobs_evicted = 0;         // job records evicted (max_tracked_jobs)
  uint64_t audit_lines = 0;          // failed-job audit lines written
  uint64_t audit_lines_dropped = 0;  // ... dropped by the rate limit
};

struct JobsSnapshot {
  std::vector<QueueJobsSnapshot> queues;  // in discovery order
  std::vector<RecentJobSnapshot> recent;  // most recently changed first
  JobsCounters counters;
};

inline constexpr size_t kMaxJobNameBytes = 128;
inline constexpr size_t kMaxJobIdBytes = 256;

}  // namespace respscope::analytics::jobs
