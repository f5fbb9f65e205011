#include "analytics/jobs/call_interpreter.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstdint>
#include <optional>

#include "analytics/jobs/msgpack.h"

namespace respscope::analytics::jobs {
namespace {

constexpr std::string_view kStalledReason = "job stalled more than allowable limit";

std::optional<int64_t> ToInt(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    // BullMQ sometimes stringifies fractional numbers ("1795418642715.0005" in Bull pub/sub);
    // timestamps in ARGV are integral but accept a fraction defensively.
    double d = 0;
    auto [q, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec2 != std::errc() || q != s.data() + s.size() || !(d > -9.2e18 && d < 9.2e18)) {
      return std::nullopt;
    }
    return static_cast<int64_t>(d);
  }
  return v;
}

// A scalar reply as text (bulk / simple / verbatim).
std::optional<std::string_view> ReplyText(const resp::RespValue& r) {
  if (r.IsString()) return r.str;
  return std::nullopt;
}

std::optional<int64_t> ReplyInt(const resp::RespValue& r) {
  if (r.IsInteger()) return r.integer;
  return std::nullopt;
}

// Status replies of the worker scripts: 0 / a next-job array / [0,0,ttl,delay] mean done;
// negative integers are failure codes.
bool DoneOrNextJob(const resp::RespValue& r) {
  if (r.IsArray()) return true;
  auto v = ReplyInt(r);
  return v && *v >= 0;
}

// Non-error, non-negative: pause (0 or nil), drain (nil), ...
bool NotNegative(const resp::RespValue& r) {
  if (r.IsError()) return false;
  auto v = ReplyInt(r);
  return !v || *v >= 0;
}

class Call {
 public:
  explicit Call(const ScriptCall& c) : c_(c) {}

  std::string_view Arg(size_t one_based) const {
    return one_based >= 1 && one_based <= c_.argv.size() ? c_.argv[one_based - 1]
                                                         : std::string_view{};
  }
  std::optional<int64_t> ArgInt(size_t one_based) const { return ToInt(Arg(one_based)); }
  std::optional<MpValue> ArgMsgpack(size_t one_based) const {
    const std::string_view a = Arg(one_based);
    if (!LooksLikeMsgpack(a)) return std::nullopt;
    return DecodeMsgpack(a);
  }
  // A msgpack field list whose tail may be damaged (see DecodeMsgpackLeading).
  std::optional<MpValue> ArgMsgpackLeading(size_t one_based) const {
    const std::string_view a = Arg(one_based);
    if (!LooksLikeMsgpack(a)) return std::nullopt;
    bool complete = false;
    return DecodeMsgpackLeading(a, &complete);
  }
  // The job id of the first key with the given token (a job key or a sub-key of one).
  std::string_view JobIdFromKeys(KeyToken t) const {
    for (const ParsedKey& k : c_.parsed_keys) {
      if (k.token == t) return k.job_id;
    }
    return {};
  }
  bool HasKeyToken(KeyToken t) const {
    for (const ParsedKey& k : c_.parsed_keys) {
      if (k.token == t) return true;
    }
    return false;
  }
  const resp::RespValue& reply() const { return *c_.reply; }
  const ScriptIdentity& id() const { return c_.identity; }
  bool bull() const { return c_.identity.family == Family::kBull; }

 private:
  const ScriptCall& c_;
};

JobEvent Ev(Transition t, std::string_view job_id = {}) {
  JobEvent e;
  e.transition = t;
  e.job_id = job_id;
  return e;
}

// "failedReason" from a msgpack field list ["failedReason", r, "stacktrace", s, ...] (BullMQ
// moveToDelayed ARGV[7], retryJob ARGV[6], moveToFinished ARGV[9]) or map.
std::string_view ReasonFromFields(const std::optional<MpValue>& fields) {
  if (!fields) return {};
  if (fields->IsMap()) {
    if (const MpValue* v = fields->Get("failedReason"); v != nullptr)
      return v->AsStr().value_or("");
    return {};
  }
  if (!fields->IsArray()) return {};
  for (size_t k = 0; k + 1 < fields->items.size(); k += 2) {
    if (fields->items[k].AsStr() == std::optional<std::string_view>("failedReason")) {
      return fields->items[k + 1].AsStr().value_or("");
    }
  }
  return {};
}

std::optional<int64_t> JsonInt(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  return std::nullopt;
}

// removeOnComplete / removeOnFail as BullMQ and Bull read them: absent, false (or null) keep
// every finished job; true, a count or {age, count} bound them.
Keep KeepOfJsonOption(const boost::json::value* v) {
  if (v == nullptr || v->is_null() || (v->is_bool() && !v->get_bool())) return Keep::kAll;
  return Keep::kBounded;
}

Keep KeepOfMsgpackOption(const MpValue* v) {
  if (v == nullptr || v->IsNil() || (v->type == MpValue::Type::kBool && !v->boolean)) {
    return Keep::kAll;
  }
  return Keep::kBounded;
}

// A worker's keepJobs ({count, age}, msgpack map): count -1 (or none) and no age keeps all.
Keep KeepOfKeepJobs(const MpValue* keep) {
  if (keep == nullptr || !keep->IsMap()) return Keep::kUnknown;
  const MpValue* age = keep->Get("age");
  if (age != nullptr && !age->IsNil()) return Keep::kBounded;
  const MpValue* count = keep->Get("count");
  if (count == nullptr || count->IsNil()) return Keep::kAll;
  auto n = count->AsInt();
  if (!n) return Keep::kUnknown;
  return *n < 0 ? Keep::kAll : Keep::kBounded;
}

// Reads `delay` and `attempts` from a job's opts JSON (activation hash, Bull add ARGV[5]), and
// its removeOnComplete / removeOnFail when `added` is given.
void ReadOptsJson(std::string_view json, int64_t* delay, int32_t* attempts,
                  JobEvent* added = nullptr) {
  if (json.empty() || json.front() != '{') return;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return;
  const auto& o = v.get_object();
  if (added != nullptr) {
    added->keep_completed = KeepOfJsonOption(o.if_contains("removeOnComplete"));
    added->keep_failed = KeepOfJsonOption(o.if_contains("removeOnFail"));
  }
  if (auto d = JsonInt(o, "delay"); d && delay != nullptr) *delay = *d;
  if (auto a = JsonInt(o, "attempts"); a && attempts != nullptr) {
    *attempts = static_cast<int32_t>(std::clamp<int64_t>(*a, -1, INT32_MAX));
  }
}

void AppendActivation(const Call& call, int64_t fallback_processed_ms,
                      std::vector<JobEvent>* events) {
  JobEvent e;
  if (ReadActivation(call.reply(), fallback_processed_ms, &e)) events->push_back(e);
}

// ------------------------------------------------------------------------------- add scripts

bool AddBullMQ(const Call& call, std::vector<JobEvent>* events) {
  // Reply: the job id; a negative integer on failure (-5 missing parent, ...).
  auto job_id = ReplyText(call.reply());
  if (!job_id || job_id->empty()) return false;
  auto argv1 = call.ArgMsgpack(1);  // [queueKey, customId, name, timestamp, parentKey, ...]
  auto opts = call.ArgMsgpack(3);
  JobEvent added = Ev(Transition::kAdded, *job_id);
  if (argv1 && argv1->IsArray()) {
    if (const MpValue* name = argv1->At(2); name != nullptr)
      added.job_name = name->AsStr().value_or("");
    if (const MpValue* ts = argv1->At(3); ts != nullptr) added.ts_ms = ts->AsInt().value_or(-1);
  }
  int64_t delay = 0;
  if (opts && opts->IsMap()) {
    added.keep_completed = KeepOfMsgpackOption(opts->Get("removeOnComplete"));
    added.keep_failed = KeepOfMsgpackOption(opts->Get("removeOnFail"));
    if (const MpValue* d = opts->Get("delay"); d != nullptr) delay = d->AsInt().value_or(0);
    if (const MpValue* a = opts->Get("attempts"); a != nullptr) {
      added.max_attempts =
          static_cast<int32_t>(std::clamp<int64_t>(a->AsInt().value_or(-1), -1, INT32_MAX));
    }
  }
  events->push_back(added);
  JobEvent where = Ev(Transition::kWaiting, *job_id);
  where.ts_ms = added.ts_ms;
  where.ready_ms = added.ts_ms;
  switch (call.id().op) {
    case ScriptOp::kAddDelayedJob:
      where.transition = Transition::kDelayed;
      if (added.ts_ms >= 0) where.ready_ms = added.ts_ms + std::max<int64_t>(delay, 0);
      break;
    case ScriptOp::kAddPrioritizedJob:
      where.transition = Transition::kPrioritized;
      break;
    case ScriptOp::kAddParentJob:
      where.transition = Transition::kWaitingChildren;
      where.not_runnable = true;
      break;
    default:
      break;
  }
  events->push_back(where);
  return true;
}

bool AddBull(const Call& call, std::vector<JobEvent>* events) {
  // addJob-6 ARGV: [1] prefix, [2] customId, [3] name, [4] data, [5] opts (msgpack string of
  // JSON), [6] timestamp, [7] delay, [8] delayedTimestamp, [9] priority. Reply: the job id.
  auto job_id = ReplyText(call.reply());
  if (!job_id || job_id->empty()) return false;
  JobEvent added = Ev(Transition::kAdded, *job_id);
  added.job_name = call.Arg(3);
  added.ts_ms = call.ArgInt(6).value_or(-1);
  if (auto opts = call.ArgMsgpack(5); opts) {
    ReadOptsJson(opts->AsStr().value_or(""), nullptr, &added.max_attempts, &added);
  }
  events->push_back(added);
  const int64_t delay = call.ArgInt(7).value_or(0);
  const int64_t priority = call.ArgInt(9).value_or(0);
  JobEvent where = Ev(Transition::kWaiting, *job_id);
  where.ts_ms = added.ts_ms;
  where.ready_ms = added.ts_ms;
  if (delay > 0) {
    where.transition = Transition::kDelayed;
    where.ready_ms = call.ArgInt(8).value_or(added.ts_ms >= 0 ? added.ts_ms + delay : -1);
  } else if (priority > 0) {
    where.transition = Transition::kPrioritized;
  }
  events->push_back(where);
  return true;
}

bool AddFromScheduler(const Call& call, std::vector<JobEvent>* events) {
  std::string_view job_id;
  int64_t ts = -1;
  int64_t ready = -1;
  std::string_view name;
  if (call.id().op == ScriptOp::kAddJobScheduler) {
    // Reply {jobId, delay}; ARGV[7] timestamp; ARGV[2] msgpack {name, ...}.
    const resp::RespValue& r = call.reply();
    if (!r.IsArray() || r.items.size() < 2) return false;
    auto id = ReplyText(r.items[0]);
    auto delay = ReplyInt(r.items[1]);
    if (!id || id->empty() || !delay) return false;
    job_id = *id;
    ts = call.ArgInt(7).value_or(-1);
    ready = ts >= 0 ? ts + std::max<int64_t>(*delay, 0) : -1;
    if (auto opts = call.ArgMsgpack(2); opts && opts->IsMap()) {
      if (const MpValue* n = opts->Get("name"); n != nullptr) name = n->AsStr().value_or("");
    }
  } else {
    // updateJobScheduler: reply = next job id `repeat:<scheduler>:<nextMillis>`, delayed by
    // nextMillis - ARGV[5] (clamped at 0, in which case it goes straight to wait).
    auto id = ReplyText(call.reply());
    if (!id || id->empty()) return false;
    job_id = *id;
    ts = call.ArgInt(5).value_or(-1);
    const size_t colon = job_id.rfind(':');
    if (colon != std::string_view::npos) ready = ToInt(job_id.substr(colon + 1)).value_or(-1);
  }
  JobEvent added = Ev(Transition::kAdded, job_id);
  added.job_name = name;
  added.ts_ms = ts;
  events->push_back(added);
  JobEvent where = Ev(Transition::kWaiting, job_id);
  where.ts_ms = ts;
  where.ready_ms = ready >= 0 ? ready : ts;
  if (ready >= 0 && ts >= 0 && ready > ts) where.transition = Transition::kDelayed;
  events->push_back(where);
  return true;
}

// ------------------------------------------------------------------------------- worker path

bool MoveToActive(const Call& call, std::vector<JobEvent>* events) {
  const resp::RespValue& r = call.reply();
  // BullMQ: [hash, id, 0, 0] / [0,0,ttl,delay]; Bull: [hash, id] / nil.
  if (r.IsError()) return false;
  const int64_t ts = call.ArgInt(call.bull() ? 4 : 2).value_or(-1);
  AppendActivation(call, ts, events);
  return true;
}

bool MoveToFinished(const Call& call, std::vector<JobEvent>* events) {
  if (!DoneOrNextJob(call.reply())) return false;
  const std::string_view job_id = call.Arg(1);
  const auto ts = call.ArgInt(2);
  if (job_id.empty()) return false;
  // Target: BullMQ ARGV[5]; Bull has it only as KEYS[2]; the property name is a last resort.
  Transition t = Transition::kCount;
  const std::string_view target = call.Arg(5);
  if (!call.bull() && (target == "completed" || target == "failed")) {
    t = target == "completed" ? Transition::kCompleted : Transition::kFailed;
  } else if (call.HasKeyToken(KeyToken::kCompleted)) {
    t = Transition::kCompleted;
  } else if (call.HasKeyToken(KeyToken::kFailed)) {
    t = Transition::kFailed;
  } else if (call.Arg(3) == "returnvalue") {
    t = Transition::kCompleted;
  } else if (call.Arg(3) == "failedReason") {
    t = Transition::kFailed;
  }
  if (t == Transition::kCount) return false;
  JobEvent e = Ev(t, job_id);
  e.ts_ms = ts.value_or(-1);
  e.ends_attempt = true;
  if (t == Transition::kFailed) e.reason = call.Arg(4);
  // keepJobs: Bull ARGV[6]; BullMQ ARGV[8] opts.keepJobs.
  Keep keep = Keep::kUnknown;
  if (call.bull()) {
    const std::optional<MpValue> keep_jobs = call.ArgMsgpack(6);
    keep = KeepOfKeepJobs(keep_jobs ? &*keep_jobs : nullptr);
  } else if (auto opts = call.ArgMsgpack(8); opts && opts->IsMap()) {
    if (const MpValue* k = opts->Get("keepJobs"); k != nullptr) keep = KeepOfKeepJobs(k);
  }
  (t == Transition::kCompleted ? e.keep_completed : e.keep_failed) = keep;
  if (!call.bull()) {
    if (auto opts = call.ArgMsgpack(8); opts && opts->IsMap()) {
      if (const MpValue* a = opts->Get("attempts"); a != nullptr) {
        e.max_attempts =
            static_cast<int32_t>(std::clamp<int64_t>(a->AsInt().value_or(-1), -1, INT32_MAX));
      }
    }
  }
  events->push_back(e);
  AppendActivation(call, e.ts_ms, events);
  return true;
}

bool MoveToDelayed(const Call& call, std::vector<JobEvent>* events) {
  if (!DoneOrNextJob(call.reply())) return false;
  if (call.bull()) {
    // moveToDelayed-4: [1] score = delayedTimestamp * 4096 + (id & 0xfff), [2] jobId. Bull uses
    // it for retries with backoff only.
    const std::string_view job_id = call.Arg(2);
    const auto score = call.ArgInt(1);
    if (job_id.empty()) return false;
    JobEvent retried = Ev(Transition::kRetried, job_id);
    retried.ends_attempt = true;
    events->push_back(retried);
    JobEvent delayed = Ev(Transition::kDelayed, job_id);
    delayed.ready_ms = score && *score > 0 ? *score / 4096 : -1;
    events->push_back(delayed);
    return true;
  }
  // BullMQ: [2] timestamp, [3] jobId, [5] delay ms, [6] skipAttempt ("1": moveToDelayed by hand
  // or DelayedError, not a failure), [7] msgpack fields (failedReason, stacktrace).
  const std::string_view job_id = call.Arg(3);
  const auto ts = call.ArgInt(2);
  if (job_id.empty() || !ts) return false;
  const int64_t delay = call.ArgInt(5).value_or(0);
  if (call.Arg(6) != "1") {
    JobEvent retried = Ev(Transition::kRetried, job_id);
    retried.ts_ms = *ts;
    retried.ends_attempt = true;
    retried.reason = ReasonFromFields(call.ArgMsgpackLeading(7));
    events->push_back(retried);
  }
  JobEvent delayed = Ev(Transition::kDelayed, job_id);
  delayed.ts_ms = *ts;
  delayed.ready_ms = *ts + std::max<int64_t>(delay, 0);
  events->push_back(delayed);
  AppendActivation(call, *ts, events);
  return true;
}

bool RetryJob(const Call& call, std::vector<JobEvent>* events) {
  if (!DoneOrNextJob(call.reply())) return false;
  JobEvent retried;
  retried.transition = Transition::kRetried;
  retried.ends_attempt = true;
  JobEvent waiting;
  waiting.transition = Transition::kWaiting;
  if (call.bull()) {
    retried.job_id = waiting.job_id = call.Arg(2);  // retryJob-7: [1] push cmd, [2] jobId
  } else {
    // retryJob-11: [2] timestamp, [4] jobId, [6] msgpack fields.
    retried.job_id = waiting.job_id = call.Arg(4);
    const auto ts = call.ArgInt(2);
    retried.ts_ms = waiting.ts_ms = waiting.ready_ms = ts.value_or(-1);
    retried.reason = ReasonFromFields(call.ArgMsgpackLeading(6));
  }
  if (retried.job_id.empty()) return false;
  events->push_back(retried);
  events->push_back(waiting);
  AppendActivation(call, retried.ts_ms, events);
  return true;
}

bool ReprocessJob(const Call& call, std::vector<JobEvent>* events) {
  // job.retry() / reprocess: [1] jobId; reply 1 on success, -1 / -3 failures.
  auto v = ReplyInt(call.reply());
  if (!v || *v != 1) return false;
  const std::string_view job_id = call.Arg(1);
  if (job_id.empty()) return false;
  events->push_back(Ev(Transition::kRetried, job_id));
  events->push_back(Ev(Transition::kWaiting, job_id));
  return true;
}

bool MoveStalled(const Call& call, std::vector<JobEvent>* events) {
  // BullMQ >= 5.53.2: array of the ids moved back to wait (jobs stalled too often get `defa`
  // and are failed by the worker later). Bull and older BullMQ: [failedIds, stalledIds].
  const resp::RespValue& r = call.reply();
  if (!r.IsArray()) return false;
  const int64_t ts = call.ArgInt(3).value_or(-1);
  auto stalled_to_wait = [&](const resp::RespValue& id) {
    auto s = ReplyText(id);
    if (!s || s->empty()) return;
    events->push_back(Ev(Transition::kStalled, *s));
    JobEvent w = Ev(Transition::kWaiting, *s);
    w.ts_ms = w.ready_ms = ts;
    events->push_back(w);
  };
  const bool two_lists = r.items.size() == 2 && r.items[0].IsArray() && r.items[1].IsArray();
  if (!two_lists) {
    for (const resp::RespValue& id : r.items) stalled_to_wait(id);
    return true;
  }
  for (const resp::RespValue& id : r.items[0].items) {
    auto s = ReplyText(id);
    if (!s || s->empty()) continue;
    events->push_back(Ev(Transition::kStalled, *s));
    JobEvent f = Ev(Transition::kFailed, *s);
    f.ts_ms = ts;
    f.reason = kStalledReason;
    events->push_back(f);
  }
  for (const resp::RespValue& id : r.items[1].items) stalled_to_wait(id);
  return true;
}

// ------------------------------------------------------------------------------- the rest

bool Simple(const Call& call, std::vector<JobEvent>* events) {
  const resp::RespValue& r = call.reply();
  switch (call.id().op) {
    case ScriptOp::kMoveJobFromActiveToWait: {
      // [1] jobId; reply: limiter pttl (>= 0) or a negative code.
      auto v = ReplyInt(r);
      if (!v || *v < 0 || call.Arg(1).empty()) return false;
      events->push_back(Ev(Transition::kWaiting, call.Arg(1)));
      return true;
    }
    case ScriptOp::kMoveToWaitingChildren: {
      // [4] jobId; 0 moved, 1 nothing pending (stays active), negative codes.
      auto v = ReplyInt(r);
      if (!v || *v != 0 || call.Arg(4).empty()) return false;
      JobEvent e = Ev(Transition::kWaitingChildren, call.Arg(4));
      e.ts_ms = call.ArgInt(3).value_or(-1);
      e.not_runnable = true;
      events->push_back(e);
      return true;
    }
    case ScriptOp::kPromote: {
      // [2] jobId (BullMQ and Bull); 0 OK, -3 not delayed.
      auto v = ReplyInt(r);
      if (!v || *v != 0 || call.Arg(2).empty()) return false;
      events->push_back(Ev(Transition::kWaiting, call.Arg(2)));
      return true;
    }
    case ScriptOp::kUpdateProgress: {
      // BullMQ [1] jobId; Bull: the id only in KEYS[1]. 0 OK, -1 missing job.
      auto v = ReplyInt(r);
      if (!v || *v != 0) return false;
      std::string_view job_id = call.bull() ? call.JobIdFromKeys(KeyToken::kJob) : call.Arg(1);
      if (job_id.empty()) job_id = call.JobIdFromKeys(KeyToken::kJob);
      if (job_id.empty()) return false;
      events->push_back(Ev(Transition::kProgress, job_id));
      return true;
    }
    case ScriptOp::kRemoveJob: {
      // [1] jobId; 1 removed, 0 not (locked), -8 scheduler job.
      auto v = ReplyInt(r);
      if (!v || *v != 1 || call.Arg(1).empty()) return false;
      events->push_back(Ev(Transition::kRemoved, call.Arg(1)));
      return true;
    }
    case ScriptOp::kCleanJobsInSet: {
      if (!r.IsArray()) return false;
      if (r.items.empty()) return true;
      JobEvent e = Ev(Transition::kCleaned);
      e.count = r.items.size();
      events->push_back(e);
      return true;
    }
    case ScriptOp::kDrain:
      if (!NotNegative(r)) return false;
      events->push_back(Ev(Transition::kDrained));
      return true;
    case ScriptOp::kObliterate: {
      // 0 done; 1 more to do (the client calls again); errors are error replies.
      auto v = ReplyInt(r);
      if (!v || *v != 0) return false;
      events->push_back(Ev(Transition::kObliterated));
      return true;
    }
    case ScriptOp::kPause: {
      if (!NotNegative(r)) return false;
      const std::string_view what = call.Arg(1);
      if (what == "paused") {
        events->push_back(Ev(Transition::kPaused));
      } else if (what == "resumed") {
        events->push_back(Ev(Transition::kResumed));
      } else {
        return false;
      }
      return true;
    }
    case ScriptOp::kSaveStacktrace: {
      // [1] stacktrace, [2] failedReason; Bull sends it in MULTI before moveToDelayed /
      // retryJob, so it carries the reason of a retried attempt.
      if (!NotNegative(r)) return false;
      const std::string_view job_id = call.JobIdFromKeys(KeyToken::kJob);
      if (job_id.empty() || call.Arg(2).empty()) return false;
      JobEvent e = Ev(Transition::kRetried, job_id);
      e.counts = false;
      e.reason = call.Arg(2);
      events->push_back(e);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

bool ReadActivation(const resp::RespValue& reply, int64_t fallback_processed_ms, JobEvent* event) {
  if (!reply.IsArray() || reply.items.size() < 2) return false;
  const resp::RespValue& hash = reply.items[0];
  if (!(hash.IsArray() || hash.IsMap()) || hash.items.size() < 2) return false;
  auto id = ReplyText(reply.items[1]);
  if (!id || id->empty()) return false;
  JobEvent e = Ev(Transition::kActive, *id);
  e.processed_ms = fallback_processed_ms;
  int32_t ats = -1, atm = -1, attempts_made = -1;
  for (size_t k = 0; k + 1 < hash.items.size(); k += 2) {
    auto field = ReplyText(hash.items[k]);
    auto value = ReplyText(hash.items[k + 1]);
    if (!field || !value) continue;
    auto num = [&]() { return ToInt(*value); };
    if (*field == "name") {
      e.job_name = *value;
    } else if (*field == "timestamp") {
      e.created_ms = num().value_or(-1);
    } else if (*field == "processedOn") {
      e.processed_ms = num().value_or(e.processed_ms);
    } else if (*field == "opts") {
      ReadOptsJson(*value, &e.opts_delay_ms, &e.max_attempts);
    } else if (*field == "ats") {
      ats = static_cast<int32_t>(num().value_or(-1));
    } else if (*field == "atm") {
      atm = static_cast<int32_t>(num().value_or(-1));
    } else if (*field == "attemptsMade") {
      attempts_made = static_cast<int32_t>(num().value_or(-1));
    }
  }
  // Attempts started including this one: BullMQ keeps `ats`; older BullMQ only `atm` (made);
  // Bull `attemptsMade` (failed attempts so far).
  if (ats > 0) {
    e.attempts_started = ats;
  } else if (atm >= 0) {
    e.attempts_started = atm + 1;
  } else if (attempts_made >= 0) {
    e.attempts_started = attempts_made + 1;
  }
  *event = e;
  return true;
}

bool InterpretCall(const ScriptCall& sc, std::vector<JobEvent>* events) {
  if (sc.reply == nullptr || sc.reply->IsError()) return false;
  const Call call(sc);
  const size_t before = events->size();
  bool ok = false;
  switch (sc.identity.op) {
    case ScriptOp::kAddStandardJob:
    case ScriptOp::kAddDelayedJob:
    case ScriptOp::kAddPrioritizedJob:
    case ScriptOp::kAddParentJob:
      ok = AddBullMQ(call, events);
      break;
    case ScriptOp::kAddJob:
      ok = AddBull(call, events);
      break;
    case ScriptOp::kAddJobScheduler:
    case ScriptOp::kUpdateJobScheduler:
      ok = AddFromScheduler(call, events);
      break;
    case ScriptOp::kMoveToActive:
      ok = MoveToActive(call, events);
      break;
    case ScriptOp::kMoveToFinished:
      ok = MoveToFinished(call, events);
      break;
    case ScriptOp::kMoveToDelayed:
      ok = MoveToDelayed(call, events);
      break;
    case ScriptOp::kRetryJob:
      ok = RetryJob(call, events);
      break;
    case ScriptOp::kReprocessJob:
      ok = ReprocessJob(call, events);
      break;
    case ScriptOp::kMoveStalledJobsToWait:
      ok = MoveStalled(call, events);
      break;
    case ScriptOp::kOther:
      ok = true;  // known, nothing to count
      break;
    default:
      ok = Simple(call, events);
      break;
  }
  if (!ok) events->resize(before);
  return ok;
}

}  // namespace respscope::analytics::jobs
