#include "analytics/jobs/job_tracker.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <bit>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace respscope::analytics::jobs {
namespace {

// --- a tiny msgpack writer for ARGV ----------------------------------------------------------
std::string MpStr(std::string_view s) {
  std::string out;
  if (s.size() < 32) {
    out.push_back(static_cast<char>(0xa0 | s.size()));
  } else {
    out.push_back(static_cast<char>(0xd9));
    out.push_back(static_cast<char>(s.size()));
  }
  out.append(s);
  return out;
}
std::string MpUint(uint32_t v) {
  std::string out = "\xce";
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}
std::string MpF64(double d) {
  uint64_t u = std::bit_cast<uint64_t>(d);
  std::string out = "\xcb";
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  return out;
}
const std::string kNil = "\xc0";

// --- observations ----------------------------------------------------------------------------
// Owns the strings an Observation points into; the Observation is rebuilt on every get() so
// that copies and moves of an Obs never leave dangling views.
class Obs {
 public:
  Obs(std::vector<std::string> args, std::string reply, uint32_t flags = 0, int64_t t_ms = 1000)
      : args_(std::move(args)), reply_(std::move(reply)), flags_(flags | kObsScript), t_ms_(t_ms) {}
  static Obs Plain(std::vector<std::string> keys) {
    Obs o({}, "");
    o.keys_ = std::move(keys);
    o.flags_ = 0;
    return o;
  }
  const Observation& get() {
    views_.assign(args_.begin(), args_.end());
    key_views_.assign(keys_.begin(), keys_.end());
    obs_ = Observation{};
    obs_.flags = flags_;
    obs_.args = views_;
    obs_.keys = key_views_;
    obs_.reply_raw = reply_;
    obs_.start_ns = obs_.end_ns = t_ms_ * 1'000'000;
    return obs_;
  }
  const std::vector<std::string>& args() const { return args_; }
  void add_flags(uint32_t f) { flags_ |= f; }
  void set_reply(std::string r) { reply_ = std::move(r); }
  const std::string& reply() const { return reply_; }

 private:
  std::vector<std::string> args_;
  std::string reply_;
  std::vector<std::string> keys_;
  uint32_t flags_ = 0;
  int64_t t_ms_ = 0;
  std::vector<std::string_view> views_;
  std::vector<std::string_view> key_views_;
  Observation obs_;
};

std::string Bulk(std::string_view s) {
  std::string out = "$";  // appends, not `"$" + ...`: GCC 12 -Wrestrict false positive
  out += std::to_string(s.size());
  out += "\r\n";
  out += s;
  out += "\r\n";
  return out;
}

std::string Id(std::string_view prefix, int i) {
  std::string out(prefix);
  out += std::to_string(i);
  return out;
}

const std::string kAddBody =
    "--[[\n  Adds a job to the queue by doing the following:\n    KEYS[9] marker key\n]]\n"
    "rcall('XADD', KEYS[8], '*')\n";
const std::string kActiveBody =
    "--[[\n  Move next job to be processed to active, lock it and fetch its data. The job\n"
    "    KEYS[11] marker key\n]]\nrcall('XADD', KEYS[4], '*')\n";
const std::string kFinishBody =
    "--[[\n  Move job from active to a finished status (completed or failed)\n"
    "    KEYS[14] marker\n]]\nrcall('XADD', KEYS[4], '*')\n";

std::vector<std::string> Keys(std::string_view base, std::initializer_list<std::string_view> s) {
  std::vector<std::string> out;
  for (auto x : s) out.push_back(std::string(base) + std::string(x));
  return out;
}

// EVAL <body> <numkeys> keys... argv...
Obs Eval(const std::string& body, const std::vector<std::string>& keys,
         const std::vector<std::string>& argv, std::string reply, int64_t t_ms = 1000,
         uint32_t flags = 0, std::string_view cmd = "EVAL") {
  std::vector<std::string> args = {std::string(cmd), body, std::to_string(keys.size())};
  args.insert(args.end(), keys.begin(), keys.end());
  args.insert(args.end(), argv.begin(), argv.end());
  return Obs(std::move(args), std::move(reply), flags, t_ms);
}

Obs AddJob(std::string_view queue, std::string_view id, int64_t ts_ms, int64_t t_ms = 1000,
           std::string reply = "", std::string extra_opts = "", int extra_entries = 0) {
  const std::string base = "bull:" + std::string(queue) + ":";
  std::string argv1(1, '\x9a');  // fixarray(10)
  argv1 += MpStr(base) + MpStr(id) + MpStr("email") + MpF64(static_cast<double>(ts_ms));
  for (int i = 0; i < 6; ++i) argv1 += kNil;
  std::string opts(1, static_cast<char>(0x81 + extra_entries));  // fixmap
  opts += MpStr("attempts") + MpUint(3) + extra_opts;
  return Eval(kAddBody,
              Keys(base, {"wait", "paused", "meta", "id", "completed", "delayed", "active",
                          "events", "marker"}),
              {argv1, "{}", opts}, reply.empty() ? Bulk(id) : reply, t_ms);
}

Obs Activate(std::string_view queue, std::string_view id, int64_t processed_ms, int64_t created_ms,
             int64_t t_ms = 2000) {
  const std::string base = "bull:" + std::string(queue) + ":";
  const std::string hash = "*8\r\n" + Bulk("name") + Bulk("email") + Bulk("timestamp") +
                           Bulk(std::to_string(created_ms)) + Bulk("processedOn") +
                           Bulk(std::to_string(processed_ms)) + Bulk("ats") + Bulk("1");
  return Eval(kActiveBody,
              Keys(base, {"wait", "active", "prioritized", "events", "stalled", "limiter",
                          "delayed", "paused", "meta", "pc", "marker"}),
              {base, std::to_string(processed_ms), "\x80"},
              "*4\r\n" + hash + Bulk(id) + ":0\r\n:0\r\n", t_ms);
}

Obs Finish(std::string_view queue, std::string_view id, int64_t finished_ms, bool failed,
           std::string_view reason = "", std::string reply = ":0\r\n", int64_t t_ms = 3000,
           std::string worker_opts = "\x80") {
  const std::string base = "bull:" + std::string(queue) + ":";
  const std::string target = failed ? "failed" : "completed";
  return Eval(
      kFinishBody,
      Keys(base, {"wait", "active", "prioritized", "events", "stalled", "limiter", "delayed",
                  "paused", "meta", "pc", target, std::string(id), "metrics:" + target, "marker"}),
      {std::string(id), std::to_string(finished_ms), failed ? "failedReason" : "returnvalue",
       failed ? std::string(reason) : "\"ok\"", target, "0", base, worker_opts, ""},
      std::move(reply), t_ms);
}

uint64_t Count(const JobsSnapshot& s, std::string_view queue, Transition t) {
  for (const auto& q : s.queues) {
    if (q.name == queue) return q.transitions[static_cast<size_t>(t)];
  }
  return 0;
}

struct LogCapture {
  std::shared_ptr<std::ostringstream> stream = std::make_shared<std::ostringstream>();
  std::shared_ptr<spdlog::logger> logger;
  LogCapture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*stream);
    sink->set_pattern("%v");
    logger = std::make_shared<spdlog::logger>("audit-test", sink);
  }
  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    std::istringstream in(stream->str());
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }
};

TEST(JobTracker, RetentionFromJobOptionsAndWorkersKeepJobs) {
  JobTracker tracker;
  const std::string remove_on_complete = MpStr("removeOnComplete") + "\xc3";  // true
  const std::string keep_nothing = MpStr("removeOnFail") + "\xc2";              // false
  tracker.Record(AddJob("mail", "j1", 10'000).get());  // neither option
  tracker.Record(AddJob("mail", "j2", 10'000, 1000, "", remove_on_complete, 1).get());
  tracker.Record(AddJob("mail", "j3", 10'000, 1000, "", remove_on_complete + keep_nothing, 2).get());
  // keepJobs: {count: -1} keeps all, {count: 0} removes, {age: 3600} bounds by age.
  const std::string keep_all = "\x81" + MpStr("keepJobs") + "\x81" + MpStr("count") + "\xff";
  const std::string keep_none =
      "\x81" + MpStr("keepJobs") + "\x81" + MpStr("count") + std::string(1, '\0');
  const std::string keep_age = "\x81" + MpStr("keepJobs") + "\x81" + MpStr("age") + MpUint(3600);
  tracker.Record(Activate("mail", "j1", 11'000, 10'000).get());
  tracker.Record(Finish("mail", "j1", 11'500, false, "", ":0\r\n", 3000, keep_all).get());
  tracker.Record(Activate("mail", "j2", 11'000, 10'000).get());
  tracker.Record(Finish("mail", "j2", 11'500, false, "", ":0\r\n", 3000, keep_none).get());
  tracker.Record(Activate("mail", "j3", 11'000, 10'000).get());
  tracker.Record(Finish("mail", "j3", 11'500, true, "x", ":0\r\n", 3000, keep_age).get());
  const JobRetentionCounts r = tracker.Snapshot().queues.at(0).retention;
  EXPECT_EQ(r.adds_read, 3u);
  EXPECT_EQ(r.adds_keep_completed, 1u);  // j1
  EXPECT_EQ(r.adds_keep_failed, 3u);     // false is no option
  EXPECT_EQ(r.completed_read, 2u);
  EXPECT_EQ(r.completed_keep_all, 1u);
  EXPECT_EQ(r.failed_read, 1u);
  EXPECT_EQ(r.failed_keep_all, 0u);
}

TEST(JobTracker, OldestRunnableJob) {
  JobTracker tracker;
  EXPECT_EQ(tracker.Snapshot().queues.size(), 0u);
  tracker.Record(AddJob("mail", "j1", 10'000).get());
  tracker.Record(AddJob("mail", "j2", 12'000).get());
  tracker.Record(AddJob("mail", "j3", 14'000).get());
  EXPECT_EQ(tracker.Snapshot().queues.at(0).oldest_runnable_ms, 10'000);
  tracker.Record(Activate("mail", "j1", 15'000, 10'000).get());
  EXPECT_EQ(tracker.Snapshot().queues.at(0).oldest_runnable_ms, 12'000);
  tracker.Record(Activate("mail", "j3", 15'000, 14'000).get());
  EXPECT_EQ(tracker.Snapshot().queues.at(0).oldest_runnable_ms, 12'000);
  tracker.Record(Activate("mail", "j2", 15'000, 12'000).get());
  EXPECT_EQ(tracker.Snapshot().queues.at(0).oldest_runnable_ms, -1);
}

TEST(JobTracker, EvictedRecordsLeaveTheRunnableIndex) {
  JobTrackerOptions options;
  options.max_tracked_jobs = 2;
  JobTracker tracker(options);
  tracker.Record(AddJob("mail", "j1", 10'000).get());
  tracker.Record(AddJob("mail", "j2", 12'000).get());
  tracker.Record(AddJob("mail", "j3", 14'000).get());  // evicts j1
  EXPECT_EQ(tracker.Snapshot().queues.at(0).oldest_runnable_ms, 12'000);
}

TEST(JobTracker, LifecycleCountsDurationsAndRecent) {
  LogCapture log;
  JobTrackerOptions options;
  options.audit_logger = log.logger;
  JobTracker tracker(options);
  tracker.Record(AddJob("mail", "j1", 10'000).get());
  tracker.Record(Activate("mail", "j1", 10'250, 10'000).get());
  tracker.Record(Finish("mail", "j1", 10'750, false).get());
  tracker.Record(AddJob("mail", "j2", 20'000).get());
  tracker.Record(Activate("mail", "j2", 21'000, 20'000).get());
  tracker.Record(Finish("mail", "j2", 21'100, true, "smtp down").get());

  const JobsSnapshot s = tracker.Snapshot();
  ASSERT_EQ(s.queues.size(), 1u);
  const auto& q = s.queues[0];
  EXPECT_EQ(q.prefix, "bull");
  EXPECT_EQ(q.name, "mail");
  EXPECT_EQ(Count(s, "mail", Transition::kAdded), 2u);
  EXPECT_EQ(Count(s, "mail", Transition::kWaiting), 2u);
  EXPECT_EQ(Count(s, "mail", Transition::kActive), 2u);
  EXPECT_EQ(Count(s, "mail", Transition::kCompleted), 1u);
  EXPECT_EQ(Count(s, "mail", Transition::kFailed), 1u);
  EXPECT_EQ(q.wait_seconds.count, 2u);
  EXPECT_DOUBLE_EQ(q.wait_seconds.sum, 0.25 + 1.0);
  EXPECT_EQ(q.wait_seconds.counts[5], 1u);  // 0.25 s lands in the (0.1, 0.25] bucket
  EXPECT_EQ(q.process_seconds.count, 2u);
  EXPECT_DOUBLE_EQ(q.process_seconds.sum, 0.5 + 0.1);
  EXPECT_EQ(q.attempts.count, 2u);
  ASSERT_EQ(s.recent.size(), 2u);
  EXPECT_EQ(s.recent[0].id, "j2");  // most recent first
  EXPECT_EQ(s.recent[0].state, JobState::kFailed);
  EXPECT_EQ(s.recent[0].failed_reason, "smtp down");
  EXPECT_EQ(s.recent[0].added_ms, 20'000);
  EXPECT_EQ(s.recent[0].processed_ms, 21'000);
  EXPECT_EQ(s.recent[0].finished_ms, 21'100);
  EXPECT_EQ(s.recent[1].state, JobState::kCompleted);
  EXPECT_EQ(s.counters.calls_by_body, 6u);

  const auto lines = log.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"job_id\":\"j2\""), std::string::npos);
  EXPECT_NE(lines[0].find("\"reason\":\"smtp down\""), std::string::npos);
  EXPECT_NE(lines[0].find("\"duration_ms\":100"), std::string::npos);
  EXPECT_NE(lines[0].find("\"max_attempts\":3"), std::string::npos);
}

TEST(JobTracker, FailureCodesAndErrorsChangeNothing) {
  JobTracker tracker;
  tracker.Record(AddJob("q", "j1", 1).get());
  tracker.Record(Activate("q", "j1", 2, 1).get());
  // -2: lock missing. The job did not complete.
  tracker.Record(Finish("q", "j1", 3, false, "", ":-2\r\n").get());
  // An error reply (e.g. a script error) and an EXEC element error.
  tracker.Record(Finish("q", "j1", 3, false, "", "-ERR boom\r\n").get());
  Obs flagged = Finish("q", "j1", 3, false);
  flagged.add_flags(kObsError);
  tracker.Record(flagged.get());
  // The add of a child whose parent is missing returns -5.
  tracker.Record(AddJob("q", "orphan", 1, 1000, ":-5\r\n").get());
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(Count(s, "q", Transition::kCompleted), 0u);
  EXPECT_EQ(Count(s, "q", Transition::kAdded), 1u);
  EXPECT_EQ(s.counters.calls_rejected, 4u);
}

TEST(JobTracker, EvalshaIdentifiedFromScriptLoadAndByShape) {
  JobTracker tracker;
  const ShaHex sha = Sha1Hex(kAddBody);
  const std::string sha_s(sha.data(), sha.size());
  // SCRIPT LOAD teaches the SHA.
  tracker.Record(Obs({"SCRIPT", "LOAD", kAddBody}, Bulk(sha_s)).get());
  Obs by_sha = AddJob("q", "a", 1);
  std::vector<std::string> args = {"evalsha", sha_s};
  args.insert(args.end(), by_sha.args().begin() + 2, by_sha.args().end());
  tracker.Record(Obs(args, Bulk("a")).get());
  // A SHA never seen: identified by its KEYS.
  args[1] = std::string(40, 'f');
  tracker.Record(Obs(args, Bulk("b")).get());
  // An unknown script stays plain EVALSHA traffic.
  tracker.Record(Obs({"EVALSHA", std::string(40, 'e'), "1", "user:1", "x"}, ":1\r\n").get());
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(Count(s, "q", Transition::kAdded), 2u);
  EXPECT_EQ(s.counters.calls_by_body, 1u);
  EXPECT_EQ(s.counters.calls_by_shape, 1u);
  EXPECT_EQ(s.counters.calls_unknown, 1u);
  EXPECT_EQ(s.counters.scripts_known, 2u);  // the loaded SHA + the shape-remembered one
}

TEST(JobTracker, TruncatedRepliesAreCountedNotGuessed) {
  JobTracker tracker;
  Obs o = Activate("q", "j", 2, 1);
  o.add_flags(kObsReplyTruncated);
  o.set_reply("");
  tracker.Record(o.get());
  Obs cut = Activate("q", "j", 2, 1);
  cut.set_reply(cut.reply().substr(0, 20));
  tracker.Record(cut.get());
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(Count(s, "q", Transition::kActive), 0u);
  EXPECT_EQ(s.counters.calls_unparsed, 2u);
}

TEST(JobTracker, PlainCommandsDiscoverQueuesByQueueLevelKeys) {
  JobTrackerOptions options;
  options.prefixes = {"bull", "app:{jobs}"};
  JobTracker tracker(options);
  tracker.Record(Obs::Plain({"bull:mail:meta"}).get());            // Queue: HSET meta
  tracker.Record(Obs::Plain({"app:{jobs}:render:marker"}).get());  // Worker: BZPOPMIN
  tracker.Record(Obs::Plain({"bull:mail:job-1"}).get());           // getJob: a job key
  tracker.Record(Obs::Plain({"cache:user:1"}).get());              // not ours
  tracker.Record(Obs::Plain({"bull:other:events"}).get());         // QueueEvents XREAD
  const auto queues = tracker.Queues();
  ASSERT_EQ(queues.size(), 3u);
  EXPECT_EQ(queues[0], (std::pair<std::string, std::string>{"bull", "mail"}));
  EXPECT_EQ(queues[1], (std::pair<std::string, std::string>{"app:{jobs}", "render"}));
  EXPECT_EQ(queues[2], (std::pair<std::string, std::string>{"bull", "other"}));
}

TEST(JobTracker, QueueLimitCountsOverflow) {
  JobTrackerOptions options;
  options.max_queues = 2;
  JobTracker tracker(options);
  for (const char* q : {"a", "b", "c", "d"}) tracker.Record(AddJob(q, "1", 1).get());
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(s.queues.size(), 2u);
  EXPECT_EQ(s.counters.queues_overflow, 4u);  // 2 calls x (added + waiting)
}

TEST(JobTracker, JobRecordsAndRecentListAreBounded) {
  JobTrackerOptions options;
  options.max_tracked_jobs = 5;
  options.recent_jobs = 3;
  JobTracker tracker(options);
  for (int i = 0; i < 8; ++i) tracker.Record(AddJob("q", Id("j", i), i).get());
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(s.counters.jobs_evicted, 3u);
  ASSERT_EQ(s.recent.size(), 3u);
  EXPECT_EQ(s.recent[0].id, "j7");
  EXPECT_EQ(Count(s, "q", Transition::kAdded), 8u);  // counters are not bounded by records
}

TEST(JobTracker, SanitiserAppliesToStoredAndLoggedReasons) {
  LogCapture log;
  JobTrackerOptions options;
  options.audit_logger = log.logger;
  options.sanitise_text = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) {
      if (c >= '0' && c <= '9') c = '#';
    }
    return out;
  };
  JobTracker tracker(options);
  tracker.Record(Activate("q", "j", 2, 1).get());
  tracker.Record(Finish("q", "j", 3, true, "card 4111111111111111 declined").get());
  const JobsSnapshot s = tracker.Snapshot();
  ASSERT_EQ(s.recent.size(), 1u);
  EXPECT_EQ(s.recent[0].failed_reason, "card ################ declined");
  const auto lines = log.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].find("4111"), std::string::npos);
}

TEST(JobTracker, DefaultSanitiserTruncatesOnUtf8Boundary) {
  EXPECT_EQ(DefaultSanitiseText("short"), "short");
  const std::string long_ascii(300, 'x');
  EXPECT_EQ(DefaultSanitiseText(long_ascii).size(), 256u);
  std::string euros;
  for (int i = 0; i < 100; ++i) euros += "\xe2\x82\xac";  // 3-byte sequences: 255 fits, 258 not
  EXPECT_EQ(DefaultSanitiseText(euros).size(), 255u);
}

TEST(JobTracker, AuditLinesAreRateLimited) {
  LogCapture log;
  JobTrackerOptions options;
  options.audit_logger = log.logger;
  options.audit_burst = 2;
  options.audit_lines_per_second = 0;
  JobTracker tracker(options);
  for (int i = 0; i < 5; ++i) {
    tracker.Record(Finish("q", Id("j", i), 3, true, "x").get());
  }
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(Count(s, "q", Transition::kFailed), 5u);
  EXPECT_EQ(s.counters.audit_lines, 2u);
  EXPECT_EQ(s.counters.audit_lines_dropped, 3u);
  EXPECT_EQ(log.Lines().size(), 2u);
}

TEST(JobTracker, RespectsHiddenBodiesAndForeignCommands) {
  JobTracker tracker;
  // EVAL with the body over the capture limit (empty view): identified by shape.
  Obs o = AddJob("q", "j", 1);
  std::vector<std::string> args = o.args();
  args[1].clear();
  tracker.Record(Obs(args, Bulk("j")).get());
  // FCALL is not ours; malformed numkeys is ignored.
  tracker.Record(Obs({"FCALL", "fn", "0"}, ":1\r\n").get());
  tracker.Record(Obs({"EVALSHA", std::string(40, 'a'), "-1"}, ":1\r\n").get());
  tracker.Record(Obs({"EVALSHA", std::string(40, 'a'), "99", "bull:q:wait"}, ":1\r\n").get());
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(Count(s, "q", Transition::kAdded), 1u);
  EXPECT_EQ(s.counters.calls_by_shape, 1u);
}

TEST(JobTracker, ConcurrentRecordersAndSnapshots) {
  JobTracker tracker;
  constexpr int kThreads = 4;
  constexpr int kJobs = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&tracker, t] {
      for (int i = 0; i < kJobs; ++i) {
        const std::string id = std::to_string(t) + "-" + std::to_string(i);
        tracker.Record(AddJob("q", id, i).get());
        tracker.Record(Activate("q", id, i + 5, i).get());
        tracker.Record(Finish("q", id, i + 9, false).get());
      }
    });
  }
  threads.emplace_back([&tracker] {
    for (int i = 0; i < 50; ++i) (void)tracker.Snapshot();
  });
  for (auto& th : threads) th.join();
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_EQ(Count(s, "q", Transition::kAdded), uint64_t{kThreads * kJobs});
  EXPECT_EQ(Count(s, "q", Transition::kCompleted), uint64_t{kThreads * kJobs});
  EXPECT_EQ(s.queues[0].process_seconds.count, uint64_t{kThreads * kJobs});
}

}  // namespace
}  // namespace respscope::analytics::jobs
