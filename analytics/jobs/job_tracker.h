// BullMQ / Bull job tracking from observed script calls.
//
//   Observation (script command: args + raw reply)
//        |  EVAL / SCRIPT LOAD body -> SHA1 -> ScriptCatalog (header fingerprint)
//        |  EVALSHA sha -> catalog, else KEYS shape
//        v
//   ScriptCall -> InterpretCall -> JobEvents -> per-queue counters, wait / process / attempts
//                                               histograms, job records (LRU), audit log lines
//
// What reaches Record(): every script command (kObsScript: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO,
// SCRIPT LOAD; FCALL is ignored) with its args and reply_raw, including each command queued in
// MULTI with its own EXEC element as reply_raw. Plain commands may be passed too: their keys
// discover queues (`HSET <P>:<Q>:meta`, `BZPOPMIN <P>:<Q>:marker`, `XREAD ... <P>:<Q>:events`);
// no plain command's args or reply are needed. If a plain command ever carries args/reply_raw
// they are simply not used.
//
// Thread safety: Record() and Snapshot() may be called from any thread. One mutex guards the
// state. This is a deliberate exception to "no mutex on the hot path" (STYLE.md 8): only script
// commands and the few plain commands that name a queue-level key take it -- a tiny fraction of
// traffic -- and job state (one job moves between IO threads' connections: added by a producer,
// activated by a worker) must be merged anyway. Plain commands that do not name a queue key
// return before locking. SHA1 hashing and RESP / msgpack parsing happen outside the lock.
// Script calls allocate (small vectors, job records); they are not the hot path.
//
// Clocks: job timestamps come from the applications (BullMQ's Date.now() in ARGV and job
// hashes); where none exists (promote, job.retry(), Bull's retries) respscope's own monotonic
// clock (Observation::end_ns) measures the interval instead.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analytics/jobs/call_interpreter.h"
#include "analytics/jobs/job_types.h"
#include "analytics/jobs/queue_keys.h"
#include "analytics/jobs/script_catalog.h"
#include "analytics/observation.h"

namespace spdlog {
class logger;
}

namespace respscope::analytics::jobs {

// Default failure-reason sanitiser: truncates to 256 bytes on a UTF-8 boundary.
std::string DefaultSanitiseText(std::string_view text);

struct JobTrackerOptions {
  // Key prefixes (bullmq.prefixes). May contain ':' and hash tags ("{bq}").
  std::vector<std::string> prefixes = {"bull"};
  // Queues tracked; transitions of further queues are dropped and counted (queues_overflow).
  // Bounded because `queue` is a metrics label.
  size_t max_queues = 200;
  // Job records kept for durations, attempts and the recent list (LRU). ~300 bytes each.
  size_t max_tracked_jobs = 50000;
  // Recent jobs returned by Snapshot() (most recently changed first).
  size_t recent_jobs = 1000;
  // SHAs remembered by the script catalog.
  size_t max_scripts = 4096;
  // Applied to failure reasons before they are stored or logged (secrets, PII). The result is
  // additionally capped at 1 KiB. Default: DefaultSanitiseText. Called with the tracker's mutex
  // held: keep it cheap and never call back into the tracker.
  std::function<std::string(std::string_view)> sanitise_text;
  // Audit log for failed jobs: one JSON line per final failure, at info level. nullptr: the
  // spdlog default logger. Rate limited (client-triggered).
  std::shared_ptr<spdlog::logger> audit_logger;
  bool audit_failed_jobs = true;
  double audit_lines_per_second = 100;  // token bucket refill
  double audit_burst = 200;             // token bucket size
};

class JobTracker {
 public:
  explicit JobTracker(JobTrackerOptions options = {});
  ~JobTracker();
  JobTracker(const JobTracker&) = delete;
  JobTracker& operator=(const JobTracker&) = delete;

  // Feeds one observed command. Spans in `obs` are read during the call only.
  void Record(const Observation& obs);

  // A copy of everything, for the metrics / API layers. Queues in discovery order.
  JobsSnapshot Snapshot() const;

  // Names of the queues discovered so far (prefix, name), e.g. for the inspector's depth polls.
  std::vector<std::pair<std::string, std::string>> Queues() const;

 private:
  struct Histogram {
    explicit Histogram(std::span<const double> b) : bounds(b), counts(b.size() + 1, 0) {}
    void Observe(double v);
    HistogramSnapshot Snap() const { return {counts, sum, count}; }
    std::span<const double> bounds;
    std::vector<uint64_t> counts;
    double sum = 0;
    uint64_t count = 0;
  };
  struct JobRecord;
  // Runnable jobs by the unix ms since when they are runnable (oldest waiting age).
  using RunnableIndex = std::multimap<int64_t, JobRecord*>;
  struct QueueState {
    uint32_t prefix_index = 0;
    std::string name;
    std::array<uint64_t, kTransitionCount> transitions{};
    JobRetentionCounts retention;
    RunnableIndex runnable;  // waiting, prioritized and delayed jobs (bounded by the LRU)
    Histogram wait{kJobDurationBucketsSeconds};
    Histogram process{kJobDurationBucketsSeconds};
    Histogram attempts{kJobAttemptsBuckets};
  };
  struct JobRecord {
    uint32_t queue = 0;
    std::string id;
    std::string name;
    JobState state = JobState::kUnknown;
    int64_t added_ms = -1;
    int64_t processed_ms = -1;
    int64_t finished_ms = -1;
    int64_t ready_ms = -1;        // application clock: runnable since
    int64_t ready_mono_ns = -1;   // respscope clock: runnable since
    bool not_runnable = false;    // waiting for children: no wait sample
    int64_t active_mono_ns = -1;  // respscope clock: current attempt started
    bool attempt_open = false;    // an activation was seen and its attempt has not ended
    uint32_t attempts = 0;
    int32_t max_attempts = -1;
    std::string failed_reason;
    int64_t updated_unix_ms = 0;
    bool indexed = false;  // in queues_[queue].runnable at runnable_at
    RunnableIndex::iterator runnable_at;
  };
  struct Pending;  // per-call scratch prepared outside the lock

  void RecordPlain(const Observation& obs);
  void RecordScript(const Observation& obs);

  // All below: mutex_ held.
  int64_t QueueIndex(uint32_t prefix_index, std::string_view name);  // -1: overflow
  JobRecord& Touch(uint32_t queue, std::string_view id);
  void MarkRunnable(JobRecord& r, int64_t since_unix_ms);
  void Unmark(JobRecord& r);
  void CountRetention(QueueState& q, const JobEvent& e);
  void Apply(uint32_t queue, const JobEvent& e, int64_t now_ns, int64_t now_unix_ms,
             std::vector<std::string>* audit);
  void Activate(QueueState& q, JobRecord& r, const JobEvent& e, int64_t now_ns);
  // Closes the current attempt; returns its processing time in seconds, or -1 if unknown.
  double EndAttempt(QueueState& q, JobRecord& r, const JobEvent& e, int64_t now_ns);
  std::string Sanitise(std::string_view text) const;
  std::string AuditLine(const QueueState& q, const JobRecord& r, const JobEvent& e,
                        double duration_ms) const;
  bool AuditAllowed();
  void WriteAudit(const std::vector<std::string>& lines);

  const JobTrackerOptions options_;
  const QueueKeyParser parser_;
  const size_t max_jobs_;

  mutable std::mutex mutex_;
  ScriptCatalog catalog_;
  std::vector<QueueState> queues_;
  std::unordered_map<std::string, uint32_t> queue_index_;
  std::list<JobRecord> lru_;  // front = most recently changed
  std::unordered_map<std::string, std::list<JobRecord>::iterator> jobs_;
  JobsCounters counters_;
  double audit_tokens_ = 0;
  int64_t audit_refill_ns_ = 0;
};

}  // namespace respscope::analytics::jobs
