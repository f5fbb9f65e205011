#include "analytics/jobs/job_tracker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>

#include "proxy/resp/resp_value.h"

namespace respscope::analytics::jobs {
namespace {

constexpr size_t kDefaultReasonBytes = 256;
constexpr size_t kMaxReasonBytes = 1024;  // hard cap after the application's sanitiser

// Cuts at most `max` bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t end = max;
  // Step back over continuation bytes (10xxxxxx) to the start of the cut sequence.
  while (end > 0 && (static_cast<uint8_t>(s[end]) & 0xc0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const char x = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] + 32) : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

int64_t UnixMsNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SteadyNsNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string QueueKey(uint32_t prefix_index, std::string_view name) {
  std::string k(sizeof(prefix_index), '\0');
  std::memcpy(k.data(), &prefix_index, sizeof(prefix_index));
  k.append(name);
  return k;
}

std::string JobKey(uint32_t queue, std::string_view id) {
  std::string k(sizeof(queue), '\0');
  std::memcpy(k.data(), &queue, sizeof(queue));
  k.append(id);
  return k;
}

JobState StateOf(Transition t) {
  switch (t) {
    case Transition::kWaiting:
      return JobState::kWaiting;
    case Transition::kDelayed:
      return JobState::kDelayed;
    case Transition::kPrioritized:
      return JobState::kPrioritized;
    case Transition::kWaitingChildren:
      return JobState::kWaitingChildren;
    case Transition::kActive:
      return JobState::kActive;
    case Transition::kCompleted:
      return JobState::kCompleted;
    case Transition::kFailed:
      return JobState::kFailed;
    case Transition::kRemoved:
      return JobState::kRemoved;
    default:
      return JobState::kUnknown;
  }
}

}  // namespace

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kWaiting:
      return "waiting";
    case JobState::kDelayed:
      return "delayed";
    case JobState::kPrioritized:
      return "prioritized";
    case JobState::kWaitingChildren:
      return "waiting_children";
    case JobState::kActive:
      return "active";
    case JobState::kCompleted:
      return "completed";
    case JobState::kFailed:
      return "failed";
    case JobState::kRemoved:
      return "removed";
    default:
      return "unknown";
  }
}

std::string DefaultSanitiseText(std::string_view text) {
  return TruncateUtf8(text, kDefaultReasonBytes);
}

void JobTracker::Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

// Everything about one script call that can be computed without the lock.
struct JobTracker::Pending {
  bool eval = false;
  std::optional<ShaHex> sha;
  std::optional<ScriptIdentity> body_identity;
  std::span<const std::string_view> keys;
  std::span<const std::string_view> argv;
  std::vector<ParsedKey> parsed;
  std::vector<KeyToken> tokens;
  std::optional<resp::RespValue> reply;
  bool error = false;
};

JobTracker::JobTracker(JobTrackerOptions options)
    : options_(std::move(options)),
      parser_(options_.prefixes),
      max_jobs_(std::max<size_t>(options_.max_tracked_jobs, 1)),
      catalog_(options_.max_scripts),
      audit_tokens_(options_.audit_burst),
      audit_refill_ns_(SteadyNsNow()) {}

JobTracker::~JobTracker() = default;

void JobTracker::Record(const Observation& obs) {
  if ((obs.flags & kObsScript) != 0 && !obs.args.empty()) {
    RecordScript(obs);
  } else {
    RecordPlain(obs);
  }
}

void JobTracker::RecordPlain(const Observation& obs) {
  // Queue discovery only. Parse without the lock; most plain commands stop here.
  ParsedKey found;
  for (std::string_view key : obs.keys) {
    if (!parser_.MayMatch(key)) continue;
    ParsedKey k = parser_.Parse(key);
    if (IsQueueLevel(k.token) && k.token != KeyToken::kBase) {
      found = k;
      break;
    }
  }
  if (found.token == KeyToken::kForeign) return;
  std::lock_guard lock(mutex_);
  QueueIndex(found.prefix_index, found.queue);
}

void JobTracker::RecordScript(const Observation& obs) {
  const std::string_view cmd = obs.args[0];
  Pending p;
  if (IEquals(cmd, "script")) {
    // SCRIPT LOAD <body>: learn it (the reply is its SHA; hashing ourselves checks nothing new).
    if (obs.args.size() < 3 || !IEquals(obs.args[1], "load") || (obs.flags & kObsError)) return;
    const std::string_view body = obs.args[2];
    auto id = IdentifyBody(body);
    if (!id) return;
    const ShaHex sha = Sha1Hex(body);
    std::lock_guard lock(mutex_);
    catalog_.Learn(sha, *id);
    return;
  }
  if (IEquals(cmd, "eval") || IEquals(cmd, "eval_ro")) {
    p.eval = true;
  } else if (!IEquals(cmd, "evalsha") && !IEquals(cmd, "evalsha_ro")) {
    return;  // FCALL and friends: BullMQ / Bull do not use functions
  }
  if (obs.args.size() < 3) return;
  int64_t numkeys = -1;
  {
    const std::string_view n = obs.args[2];
    auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), numkeys);
    if (ec != std::errc() || ptr != n.data() + n.size() || numkeys < 0) return;
  }
  const size_t available = obs.args.size() - 3;
  const size_t nkeys = std::min<size_t>(static_cast<size_t>(numkeys), available);
  p.keys = obs.args.subspan(3, nkeys);
  p.argv = obs.args.subspan(3 + nkeys);

  if (p.eval) {
    const std::string_view body = obs.args[1];
    if (!body.empty()) {  // empty: over the capture limit; identify by shape
      p.body_identity = IdentifyBody(body);
      if (p.body_identity) p.sha = Sha1Hex(body);
    }
  } else {
    p.sha = ParseShaHex(obs.args[1]);
  }

  p.parsed.reserve(p.keys.size());
  p.tokens.reserve(p.keys.size());
  for (std::string_view k : p.keys) {
    p.parsed.push_back(parser_.Parse(k));
    p.tokens.push_back(p.parsed.back().token);
  }
  p.error = (obs.flags & kObsError) != 0;
  if (!p.error && !obs.reply_raw.empty() && (obs.flags & kObsReplyTruncated) == 0) {
    p.reply = resp::ParseResp(obs.reply_raw);
  }

  const int64_t now_ns = obs.end_ns > 0 ? obs.end_ns : (obs.start_ns > 0 ? obs.start_ns : -1);
  const int64_t now_unix_ms = UnixMsNow();
  std::vector<std::string> audit;
  {
    std::lock_guard lock(mutex_);
    std::optional<ScriptIdentity> identity;
    if (p.body_identity) {
      catalog_.Learn(*p.sha, *p.body_identity);
      identity = p.body_identity;
      ++counters_.calls_by_body;
    } else if (const ScriptIdentity* known = p.sha ? catalog_.Find(*p.sha) : nullptr;
               known != nullptr && known->by == IdentifiedBy::kBody) {
      identity = *known;
      ++counters_.calls_by_body;
    } else if (auto shaped = IdentifyShape(p.tokens, p.argv); shaped) {
      identity = shaped;
      if (p.sha) catalog_.Remember(*p.sha, *shaped);
      ++counters_.calls_by_shape;
    } else {
      ++counters_.calls_unknown;
      return;
    }
    const ParsedKey* base = nullptr;
    for (const ParsedKey& k : p.parsed) {
      if (k.token != KeyToken::kForeign) {
        base = &k;
        break;
      }
    }
    if (base == nullptr) {
      ++counters_.calls_foreign;
      return;
    }
    const int64_t q = QueueIndex(base->prefix_index, base->queue);
    if (identity->op == ScriptOp::kOther) return;
    if (p.error || (p.reply && p.reply->IsError())) {
      ++counters_.calls_rejected;
      return;
    }
    if (!p.reply) {
      ++counters_.calls_unparsed;
      return;
    }
    ScriptCall call{*identity, p.keys, p.parsed, p.argv, &*p.reply};
    std::vector<JobEvent> events;
    if (!InterpretCall(call, &events)) {
      ++counters_.calls_rejected;
      return;
    }
    if (q < 0) {
      counters_.queues_overflow += events.size();
      return;
    }
    for (const JobEvent& e : events) {
      Apply(static_cast<uint32_t>(q), e, now_ns, now_unix_ms, &audit);
    }
  }
  if (!audit.empty()) WriteAudit(audit);
}

int64_t JobTracker::QueueIndex(uint32_t prefix_index, std::string_view name) {
  const std::string key = QueueKey(prefix_index, name);
  auto it = queue_index_.find(key);
  if (it != queue_index_.end()) return it->second;
  if (queues_.size() >= options_.max_queues) return -1;
  QueueState q;
  q.prefix_index = prefix_index;
  q.name = std::string(name);
  queues_.push_back(std::move(q));
  const auto index = static_cast<uint32_t>(queues_.size() - 1);
  queue_index_.emplace(key, index);
  return index;
}

JobTracker::JobRecord& JobTracker::Touch(uint32_t queue, std::string_view id) {
  if (id.size() > kMaxJobIdBytes) id = id.substr(0, kMaxJobIdBytes);
  std::string key = JobKey(queue, id);
  auto it = jobs_.find(key);
  if (it != jobs_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    return *it->second;
  }
  while (lru_.size() >= max_jobs_) {
    JobRecord& victim = lru_.back();
    Unmark(victim);
    jobs_.erase(JobKey(victim.queue, victim.id));
    lru_.pop_back();
    ++counters_.jobs_evicted;
  }
  JobRecord r;
  r.queue = queue;
  r.id = std::string(id);
  lru_.push_front(std::move(r));
  jobs_.emplace(std::move(key), lru_.begin());
  return lru_.front();
}

void JobTracker::MarkRunnable(JobRecord& r, int64_t since_unix_ms) {
  Unmark(r);
  r.runnable_at = queues_[r.queue].runnable.emplace(since_unix_ms, &r);
  r.indexed = true;
}

void JobTracker::Unmark(JobRecord& r) {
  if (!r.indexed) return;
  queues_[r.queue].runnable.erase(r.runnable_at);
  r.indexed = false;
}

void JobTracker::CountRetention(QueueState& q, const JobEvent& e) {
  JobRetentionCounts& c = q.retention;
  switch (e.transition) {
    case Transition::kAdded:
      if (e.keep_completed == Keep::kUnknown) return;
      ++c.adds_read;
      if (e.keep_completed == Keep::kAll) ++c.adds_keep_completed;
      if (e.keep_failed == Keep::kAll) ++c.adds_keep_failed;
      return;
    case Transition::kCompleted:
      if (e.keep_completed == Keep::kUnknown) return;
      ++c.completed_read;
      if (e.keep_completed == Keep::kAll) ++c.completed_keep_all;
      return;
    case Transition::kFailed:
      if (e.keep_failed == Keep::kUnknown) return;
      ++c.failed_read;
      if (e.keep_failed == Keep::kAll) ++c.failed_keep_all;
      return;
    default:
      return;
  }
}

void JobTracker::Apply(uint32_t queue, const JobEvent& e, int64_t now_ns, int64_t now_unix_ms,
                       std::vector<std::string>* audit) {
  QueueState& q = queues_[queue];
  if (e.counts) {
    q.transitions[static_cast<size_t>(e.transition)] += e.count;
    CountRetention(q, e);
  }
  if (e.transition == Transition::kDrained || e.transition == Transition::kObliterated) {
    // The queue's waiting jobs are gone (drain also takes the delayed ones when asked): no
    // record of them may stand for the oldest waiting job.
    for (auto& [since, record] : q.runnable) record->indexed = false;
    q.runnable.clear();
  }
  if (e.job_id.empty()) return;
  JobRecord& r = Touch(queue, e.job_id);
  r.updated_unix_ms = now_unix_ms;
  switch (e.transition) {
    case Transition::kAdded:
      Unmark(r);
      // A custom id can be reused after removal: start the record afresh.
      r.name = TruncateUtf8(e.job_name, kMaxJobNameBytes);
      r.state = JobState::kUnknown;
      r.added_ms = e.ts_ms;
      r.processed_ms = r.finished_ms = -1;
      r.attempts = 0;
      r.max_attempts = e.max_attempts;
      r.failed_reason.clear();
      r.active_mono_ns = -1;
      r.attempt_open = false;
      break;
    case Transition::kWaiting:
    case Transition::kDelayed:
    case Transition::kPrioritized:
      r.state = StateOf(e.transition);
      r.not_runnable = false;
      if (e.ready_ms >= 0) {
        r.ready_ms = e.ready_ms;
        r.ready_mono_ns = -1;
      } else {
        r.ready_ms = -1;
        r.ready_mono_ns = now_ns;
      }
      MarkRunnable(r, e.ready_ms >= 0 ? e.ready_ms : now_unix_ms);
      break;
    case Transition::kWaitingChildren:
      Unmark(r);
      r.state = JobState::kWaitingChildren;
      r.not_runnable = true;
      r.ready_ms = r.ready_mono_ns = -1;
      break;
    case Transition::kActive:
      Activate(q, r, e, now_ns);
      break;
    case Transition::kCompleted:
    case Transition::kFailed: {
      Unmark(r);
      const double process_s = e.ends_attempt ? EndAttempt(q, r, e, now_ns) : -1;
      r.attempt_open = false;
      r.state = StateOf(e.transition);
      r.finished_ms = e.ts_ms;
      if (r.attempts > 0) q.attempts.Observe(r.attempts);
      if (e.max_attempts >= 0) r.max_attempts = e.max_attempts;
      if (e.transition == Transition::kFailed) {
        r.failed_reason = Sanitise(e.reason);
        if (options_.audit_failed_jobs) {
          if (AuditAllowed()) {
            audit->push_back(AuditLine(q, r, e, process_s >= 0 ? process_s * 1e3 : -1));
          } else {
            ++counters_.audit_lines_dropped;
          }
        }
      }
      break;
    }
    case Transition::kRetried:
      if (e.counts && e.ends_attempt) EndAttempt(q, r, e, now_ns);
      if (!e.reason.empty()) r.failed_reason = Sanitise(e.reason);
      break;
    case Transition::kRemoved:
      Unmark(r);
      r.state = JobState::kRemoved;
      r.attempt_open = false;
      break;
    case Transition::kStalled:
      r.attempt_open = false;  // its worker is gone; a waiting or failed event follows
      r.active_mono_ns = -1;
      break;
    default:
      break;  // progress
  }
}

void JobTracker::Activate(QueueState& q, JobRecord& r, const JobEvent& e, int64_t now_ns) {
  r.attempts = e.attempts_started > 0 ? static_cast<uint32_t>(e.attempts_started) : r.attempts + 1;
  if (r.name.empty() && !e.job_name.empty()) r.name = TruncateUtf8(e.job_name, kMaxJobNameBytes);
  if (r.added_ms < 0) r.added_ms = e.created_ms;
  if (e.max_attempts >= 0) r.max_attempts = e.max_attempts;

  // Wait time: since the job became runnable. Prefer the application's clock (both ends come
  // from ARGV / the job hash); else respscope's clock; else, for a first attempt seen without
  // its history, the job hash alone (processedOn - (timestamp + opts.delay)).
  double wait_s = -1;
  if (r.ready_ms >= 0 && e.processed_ms >= 0) {
    wait_s = static_cast<double>(e.processed_ms - r.ready_ms) / 1e3;
  } else if (r.ready_mono_ns >= 0 && now_ns >= 0) {
    wait_s = static_cast<double>(now_ns - r.ready_mono_ns) / 1e9;
  } else if (!r.not_runnable && r.attempts <= 1 && e.created_ms >= 0 && e.processed_ms >= 0) {
    wait_s = static_cast<double>(e.processed_ms -
                                 (e.created_ms + std::max<int64_t>(e.opts_delay_ms, 0))) /
             1e3;
  }
  if (wait_s >= 0) q.wait.Observe(wait_s);  // negative: skewed clocks; drop

  Unmark(r);
  r.state = JobState::kActive;
  r.processed_ms = e.processed_ms;
  r.finished_ms = -1;
  r.active_mono_ns = now_ns;
  r.attempt_open = true;
  r.ready_ms = r.ready_mono_ns = -1;
  r.not_runnable = false;
}

double JobTracker::EndAttempt(QueueState& q, JobRecord& r, const JobEvent& e, int64_t now_ns) {
  if (!r.attempt_open) return -1;  // the attempt's start was not seen, or it already ended
  r.attempt_open = false;
  double process_s = -1;
  if (e.ts_ms >= 0 && r.processed_ms >= 0) {
    process_s = static_cast<double>(e.ts_ms - r.processed_ms) / 1e3;
  } else if (now_ns >= 0 && r.active_mono_ns >= 0) {
    process_s = static_cast<double>(now_ns - r.active_mono_ns) / 1e9;
  }
  r.active_mono_ns = -1;
  if (process_s < 0) return -1;  // skewed clocks
  q.process.Observe(process_s);
  return process_s;
}

std::string JobTracker::Sanitise(std::string_view text) const {
  std::string s = options_.sanitise_text ? options_.sanitise_text(text) : DefaultSanitiseText(text);
  if (s.size() > kMaxReasonBytes) s = TruncateUtf8(s, kMaxReasonBytes);
  return s;
}

std::string JobTracker::AuditLine(const QueueState& q, const JobRecord& r, const JobEvent& e,
                                  double duration_ms) const {
  boost::json::object o;
  o["event"] = "job_failed";
  o["prefix"] = parser_.prefixes()[q.prefix_index];
  o["queue"] = q.name;
  o["job_id"] = r.id;
  o["name"] = r.name;
  o["attempt"] = r.attempts;
  if (r.max_attempts > 0) o["max_attempts"] = r.max_attempts;
  o["reason"] = r.failed_reason;
  if (duration_ms >= 0) {
    o["duration_ms"] = static_cast<int64_t>(std::llround(duration_ms));
  } else {
    o["duration_ms"] = nullptr;
  }
  if (e.ts_ms >= 0) o["finished_ms"] = e.ts_ms;
  return boost::json::serialize(o);
}

bool JobTracker::AuditAllowed() {
  const int64_t now = SteadyNsNow();
  const double elapsed_s = static_cast<double>(now - audit_refill_ns_) / 1e9;
  audit_refill_ns_ = now;
  audit_tokens_ =
      std::min(options_.audit_burst, audit_tokens_ + elapsed_s * options_.audit_lines_per_second);
  if (audit_tokens_ < 1) return false;
  audit_tokens_ -= 1;
  ++counters_.audit_lines;
  return true;
}

void JobTracker::WriteAudit(const std::vector<std::string>& lines) {
  spdlog::logger* log =
      options_.audit_logger ? options_.audit_logger.get() : spdlog::default_logger_raw();
  if (log == nullptr) return;
  for (const std::string& line : lines) log->info("{}", line);
}

JobsSnapshot JobTracker::Snapshot() const {
  std::lock_guard lock(mutex_);
  JobsSnapshot s;
  s.queues.reserve(queues_.size());
  for (const QueueState& q : queues_) {
    QueueJobsSnapshot qs;
    qs.prefix = parser_.prefixes()[q.prefix_index];
    qs.name = q.name;
    qs.transitions = q.transitions;
    qs.retention = q.retention;
    if (!q.runnable.empty()) qs.oldest_runnable_ms = q.runnable.begin()->first;
    qs.wait_seconds = q.wait.Snap();
    qs.process_seconds = q.process.Snap();
    qs.attempts = q.attempts.Snap();
    s.queues.push_back(std::move(qs));
  }
  const size_t n = std::min(options_.recent_jobs, lru_.size());
  s.recent.reserve(n);
  for (auto it = lru_.begin(); it != lru_.end() && s.recent.size() < n; ++it) {
    const JobRecord& r = *it;
    RecentJobSnapshot j;
    j.prefix = parser_.prefixes()[queues_[r.queue].prefix_index];
    j.queue = queues_[r.queue].name;
    j.id = r.id;
    j.name = r.name;
    j.state = r.state;
    j.added_ms = r.added_ms;
    j.processed_ms = r.processed_ms;
    j.finished_ms = r.finished_ms;
    j.attempts = r.attempts;
    j.failed_reason = r.failed_reason;
    j.updated_unix_ms = r.updated_unix_ms;
    s.recent.push_back(std::move(j));
  }
  s.counters = counters_;
  s.counters.scripts_known = catalog_.size();
  s.counters.scripts_dropped = catalog_.dropped();
  return s;
}

std::vector<std::pair<std::string, std::string>> JobTracker::Queues() const {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(queues_.size());
  for (const QueueState& q : queues_) out.emplace_back(parser_.prefixes()[q.prefix_index], q.name);
  return out;
}

}  // namespace respscope::analytics::jobs
