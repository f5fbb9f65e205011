// Replays the reference captures (../shared/reference/captures/<run>/proxy.jsonl: every RESP
// frame of real BullMQ / Bull workloads, both directions) through a minimal stand-in for the
// data plane and checks the JobTracker's per-queue transition counts against the ground truth
// of each run's scenario.log.
//
// The stand-in (CaptureReplayer) re-encodes each frame to raw RESP, pairs client commands with
// server replies per connection in order, and builds Observations the way the data plane
// contract (analytics/observation.h) says it will:
//   - script commands (EVAL*, EVALSHA*, SCRIPT LOAD): kObsScript, all args, raw reply;
//   - commands queued in MULTI: one Observation each at EXEC time, kObsInMulti, their own EXEC
//     element as reply_raw and kObsError from that element; +QUEUED replies are consumed;
//   - plain commands: keys only (no args, no reply_raw);
//   - pub/sub: once a connection subscribes, message frames are pushes, not replies;
//     subscribe confirmations answer (p)subscribe one per channel; RESP3 push frames are skipped;
//   - blocking commands simply get their reply later on their own connection; commands still
//     pending when a capture ends (killed workers, BullMQ's blocking socket) are dropped.
// Timestamps: the capture's `t` (ms) becomes start_ns / end_ns.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "analytics/jobs/job_tracker.h"

namespace respscope::analytics::jobs {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

fs::path CapturesDir() {
  const char* env = std::getenv("RESPSCOPE_SHARED_DIR");
  const fs::path shared = (env != nullptr && *env) ? fs::path(env) : fs::path(RESPSCOPE_SHARED_DIR);
  return shared / "reference" / "captures";
}

std::string Base64Decode(std::string_view in) {
  static const auto table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const std::string_view a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < a.size(); ++i) t[static_cast<uint8_t>(a[i])] = static_cast<int>(i);
    return t;
  }();
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = table[static_cast<uint8_t>(c)];
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The capture's typed JSON value -> raw RESP bytes.
void Encode(const json::value& v, std::string* out) {
  const json::object& o = v.as_object();
  const std::string_view t = o.at("t").as_string();
  auto str = [&](std::string_view key) { return std::string(o.at(key).as_string()); };
  auto items = [&](char tag, size_t divisor) {
    const json::array& a = o.at("items").as_array();
    *out += tag + std::to_string(a.size() / divisor) + "\r\n";
    for (const json::value& item : a) Encode(item, out);
  };
  if (t == "array") {
    items('*', 1);
  } else if (t == "map") {
    items('%', 2);
  } else if (t == "set") {
    items('~', 1);
  } else if (t == "push") {
    items('>', 1);
  } else if (t == "bulk") {
    const std::string b = Base64Decode(o.at("b64").as_string());
    *out += "$" + std::to_string(b.size()) + "\r\n" + b + "\r\n";
  } else if (t == "verbatim") {
    const std::string b = Base64Decode(o.at("b64").as_string());
    *out += "=" + std::to_string(b.size()) + "\r\n" + b + "\r\n";
  } else if (t == "int") {
    *out += ":" + str("v") + "\r\n";
  } else if (t == "simple") {
    *out += "+" + str("v") + "\r\n";
  } else if (t == "error") {
    *out += "-" + str("v") + "\r\n";
  } else if (t == "double") {
    *out += "," + str("v") + "\r\n";
  } else if (t == "bool") {
    *out += std::string("#") + (o.at("v").as_bool() ? "t" : "f") + "\r\n";
  } else if (t == "nullbulk") {
    *out += "$-1\r\n";
  } else if (t == "nullarray") {
    *out += "*-1\r\n";
  } else if (t == "null") {
    *out += "_\r\n";
  } else {
    ADD_FAILURE() << "unknown frame type " << t;
  }
}

bool IsError(const json::value& v) { return v.as_object().at("t").as_string() == "error"; }

// First element of an array frame as text ("message", "subscribe", ...), else empty.
std::string FirstBulk(const json::value& v) {
  const json::object& o = v.as_object();
  if (o.at("t").as_string() != "array") return {};
  const json::array& a = o.at("items").as_array();
  if (a.empty() || a[0].as_object().at("t").as_string() != "bulk") return {};
  return Lower(Base64Decode(a[0].as_object().at("b64").as_string()));
}

// Key positions of the plain commands in the captures (the data plane uses the command table).
std::vector<std::string> PlainKeys(const std::vector<std::string>& args, const std::string& cmd) {
  std::vector<std::string> keys;
  if (args.size() < 2) return keys;
  if (cmd == "bzpopmin" || cmd == "bzpopmax" || cmd == "blpop" || cmd == "brpop") {
    keys.assign(args.begin() + 1, args.end() - 1);
  } else if (cmd == "brpoplpush" && args.size() >= 3) {
    keys = {args[1], args[2]};
  } else if (cmd == "xread") {
    for (size_t i = 1; i < args.size(); ++i) {
      if (Lower(args[i]) == "streams") {
        const size_t n = (args.size() - i - 1) / 2;
        keys.assign(args.begin() + static_cast<long>(i) + 1,
                    args.begin() + static_cast<long>(i + 1 + n));
        break;
      }
    }
  } else if (cmd == "hset" || cmd == "hgetall" || cmd == "hget" || cmd == "llen" ||
             cmd == "zcard" || cmd == "lrange" || cmd == "zrange" || cmd == "get" ||
             cmd == "exists" || cmd == "del") {
    keys = {args[1]};
  }
  return keys;
}

bool IsScript(const std::string& cmd, const std::vector<std::string>& args) {
  if (cmd == "eval" || cmd == "evalsha" || cmd == "eval_ro" || cmd == "evalsha_ro" ||
      cmd == "fcall") {
    return true;
  }
  return cmd == "script" && args.size() >= 2 && Lower(args[1]) == "load";
}

class CaptureReplayer {
 public:
  struct Options {
    bool hide_eval_bodies = false;  // as for arguments over the capture limit: empty views
  };
  using Sink = std::function<void(const Observation&)>;

  CaptureReplayer(Options options, Sink sink) : options_(options), sink_(std::move(sink)) {}

  void Run(const fs::path& jsonl) {
    std::ifstream in(jsonl);
    ASSERT_TRUE(in) << jsonl;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const json::value frame = json::parse(line);
      const json::object& f = frame.as_object();
      const int64_t conn = f.at("conn").to_number<int64_t>();
      const int64_t t = f.at("t").to_number<int64_t>();
      if (f.at("dir").as_string() == "C") {
        OnClient(conns_[conn], f.at("v"), t);
      } else {
        OnServer(conns_[conn], conn, f.at("v"), t);
      }
      ++frames_;
    }
  }

  size_t frames() const { return frames_; }
  size_t unmatched() const { return unmatched_; }

 private:
  enum class Kind { kPlain, kMulti, kQueued, kExec, kDiscard, kSubscribe };
  struct Command {
    Kind kind = Kind::kPlain;
    std::vector<std::string> args;
    std::string cmd;
    int64_t t = 0;
    size_t replies_left = 1;     // kSubscribe: one confirmation per channel
    std::vector<Command> batch;  // kExec: the queued commands
  };
  struct Conn {
    std::deque<Command> pending;
    bool in_multi = false;
    std::vector<Command> queued;
    bool subscribed = false;
  };

  void OnClient(Conn& c, const json::value& v, int64_t t) {
    Command cmd;
    cmd.t = t;
    for (const json::value& item : v.as_object().at("items").as_array()) {
      cmd.args.push_back(Base64Decode(item.as_object().at("b64").as_string()));
    }
    if (cmd.args.empty()) return;
    cmd.cmd = Lower(cmd.args[0]);
    if (cmd.cmd == "multi") {
      cmd.kind = Kind::kMulti;
      c.in_multi = true;
    } else if (cmd.cmd == "exec") {
      cmd.kind = Kind::kExec;
      cmd.batch = std::move(c.queued);
      c.queued.clear();
      c.in_multi = false;
    } else if (cmd.cmd == "discard") {
      cmd.kind = Kind::kDiscard;
      c.queued.clear();
      c.in_multi = false;
    } else if (c.in_multi) {
      cmd.kind = Kind::kQueued;
      c.queued.push_back(cmd);
    } else if (cmd.cmd == "subscribe" || cmd.cmd == "psubscribe" || cmd.cmd == "ssubscribe") {
      cmd.kind = Kind::kSubscribe;
      cmd.replies_left = cmd.args.size() - 1;
      c.subscribed = true;
    }
    c.pending.push_back(std::move(cmd));
  }

  void OnServer(Conn& c, int64_t conn, const json::value& v, int64_t t) {
    if (v.as_object().at("t").as_string() == "push") return;  // RESP3 out-of-band
    if (c.subscribed) {
      const std::string first = FirstBulk(v);
      if (first == "message" || first == "pmessage" || first == "smessage") return;
      if (first == "subscribe" || first == "psubscribe" || first == "ssubscribe") {
        if (c.pending.empty() || c.pending.front().kind != Kind::kSubscribe) {
          ++unmatched_;
          return;
        }
        if (--c.pending.front().replies_left == 0) c.pending.pop_front();
        return;
      }
    }
    if (c.pending.empty()) {
      ++unmatched_;
      return;
    }
    Command cmd = std::move(c.pending.front());
    c.pending.pop_front();
    switch (cmd.kind) {
      case Kind::kMulti:
      case Kind::kQueued:  // +QUEUED (the real result comes with EXEC)
      case Kind::kDiscard:
      case Kind::kSubscribe:
        return;
      case Kind::kExec: {
        const json::object& o = v.as_object();
        if (o.at("t").as_string() != "array") return;  // aborted (nil) or EXECABORT
        const json::array& elems = o.at("items").as_array();
        for (size_t i = 0; i < cmd.batch.size() && i < elems.size(); ++i) {
          Emit(cmd.batch[i], conn, elems[i], cmd.t, t, kObsInMulti);
        }
        return;
      }
      case Kind::kPlain:
        Emit(cmd, conn, v, cmd.t, t, 0);
        return;
    }
  }

  void Emit(const Command& cmd, int64_t conn, const json::value& reply, int64_t t0, int64_t t1,
            uint32_t flags) {
    Observation obs;
    obs.command = cmd.cmd;
    obs.flags = flags;
    obs.start_ns = t0 * 1'000'000;
    obs.end_ns = t1 * 1'000'000;
    obs.client_id = static_cast<uint64_t>(conn);
    std::string raw;
    Encode(reply, &raw);
    obs.reply_bytes = raw.size();
    const bool error = IsError(reply);
    if (error) {
      obs.flags |= kObsError;
      const std::string_view text = reply.as_object().at("v").as_string();
      error_text_ = std::string(text);
      obs.error_prefix = std::string_view(error_text_).substr(0, error_text_.find(' '));
      obs.error_text = error_text_;
    }
    std::vector<std::string_view> args;
    std::vector<std::string> keys_storage;
    std::vector<std::string_view> keys;
    if (IsScript(cmd.cmd, cmd.args)) {
      obs.flags |= kObsScript;
      for (const std::string& a : cmd.args) args.push_back(a);
      if (options_.hide_eval_bodies && (cmd.cmd == "eval" || cmd.cmd == "eval_ro")) {
        args[1] = std::string_view();
      }
      if (cmd.cmd != "script" && args.size() >= 3) {
        const size_t n = std::min<size_t>(std::stoul(cmd.args[2]), args.size() - 3);
        keys.assign(args.begin() + 3, args.begin() + 3 + static_cast<long>(n));
      }
      obs.reply_raw = raw;
    } else {
      keys_storage = PlainKeys(cmd.args, cmd.cmd);
      for (const std::string& k : keys_storage) keys.push_back(k);
    }
    obs.args = args;
    obs.keys = keys;
    sink_(obs);
  }

  Options options_;
  Sink sink_;
  std::unordered_map<int64_t, Conn> conns_;
  std::string error_text_;
  size_t frames_ = 0;
  size_t unmatched_ = 0;
};

// ------------------------------------------------------------------------------------------

using Counts = std::map<std::string, uint64_t>;  // transition name -> expected count

struct Expected {
  std::string run;
  std::string prefix;
  std::string queue;
  Counts counts;  // transitions not listed must be 0
};

// Ground truth, hand-derived from each run's scenario.log (what the workload did) and checked
// against decoded.txt for the calls a proxy can see. Notation: "sl:" quotes scenario.log.
//
// Conventions (job_types.h): every add counts `added` plus exactly one of waiting / delayed /
// prioritized / waiting_children; `waiting` also counts promote, immediate retries, manual
// retries (reprocess) and stall recoveries, but not the automatic delayed -> waiting promotions
// that happen inside other scripts (invisible on the wire); `retried` counts failed attempts
// re-queued (backoff or immediate) and manual retries; `drained` counts queue.drain() calls.
const Expected kExpected[] = {
    // BullMQ 6.7.0, RESP3 (HELLO 3), queue "orders".
    {"bullmq-6.7.0",
     "bull",
     "orders",
     {
         // sl "PHASE add jobs": job-normal (added before QueueEvents started reading, so absent
         // from its log, but "processing job-normal"), then 8 `QueueEvents added` in that phase
         // (delayed, prio, flaky, doomed, remove, lifo, unrec, bulk1, bulk2: 9 with normal),
         // job-promote (PHASE remove...), job-stall (PHASE stalled scenario): 12.
         {"added", 12},
         // Added to wait: normal, flaky, doomed, remove, lifo, unrec, bulk1, bulk2, stall (9)
         // + "waiting job-promote prev=delayed" (promote) + "waiting job-doomed prev=active"
         // (retry at once) + "waiting job-doomed prev=failed" (manual retry) + "waiting
         // job-stall prev=active" (stalled): 13. The two "prev=delayed" promotions of
         // job-flaky and job-delayed happen inside moveToActive: not counted.
         {"waiting", 13},
         // sl "delayed job-delayed", "delayed job-promote" (added delayed), "delayed job-flaky"
         // (backoff after "worker failed job-flaky flaky failure #1").
         {"delayed", 3},
         {"prioritized", 1},  // job-prio ({"priority":5}; counts "prioritized":1)
         {"active", 15},      // 15 x "QueueEvents active"
         {"progress", 2},     // 2 x "QueueEvents progress"
         {"completed", 10},   // 10 x "QueueEvents completed"
         {"failed", 2},       // "failed job-unrec unrecoverable!", "failed job-doomed ..."
         // job-flaky (backoff), job-doomed attempt 0 (immediate), job-doomed manual retry
         // (sl "PHASE manual retry of failed job").
         {"retried", 3},
         {"stalled", 1},  // "QueueEvents stalled {"jobId":"job-stall"}"
         {"removed", 1},  // "removed job-remove"
         {"paused", 1},   // "QueueEvents paused"
         {"resumed", 1},  // "QueueEvents resumed"
         {"cleaned", 9},  // "QueueEvents cleaned {"count":"9"}"
     }},
    // BullMQ 5.81.5, RESP2: the same workload and the same scenario.log lines.
    {"bullmq-5.81.5",
     "bull",
     "orders",
     {{"added", 12},
      {"waiting", 13},
      {"delayed", 3},
      {"prioritized", 1},
      {"active", 15},
      {"progress", 2},
      {"completed", 10},
      {"failed", 2},
      {"retried", 3},
      {"stalled", 1},
      {"removed", 1},
      {"paused", 1},
      {"resumed", 1},
      {"cleaned", 9}}},
    // Bull 4.16.5, RESP2, pub/sub events, failure paths in MULTI.
    {"bull-4.16.5",
     "bull",
     "orders",
     {
         // normal, delayed, prio, flaky, doomed, remove, lifo, promote, bulk1, bulk2 (addBulk in
         // MULTI), "11" (auto id), job-stall: 12.
         {"added", 12},
         // 9 added to wait (all but delayed, promote, prio) + promote + retryJob(job-doomed
         // attempt 0) + reprocess(job-doomed) + stalled(job-stall): 13.
         {"waiting", 13},
         {"delayed", 3},      // job-delayed, job-promote, job-flaky backoff (moveToDelayed)
         {"prioritized", 1},  // job-prio
         {"active", 15},      // 15 x "global:active"
         {"progress", 2},     // 2 x "global:progress"
         {"completed", 11},   // 11 x "global:completed"
         {"failed", 1},       // "global:failed job-doomed"
         {"retried", 3},      // job-flaky (backoff), job-doomed (immediate), manual retry
         {"stalled", 1},      // "global:stalled job-stall"
         {"removed", 1},      // job-remove
         {"paused", 1},
         {"resumed", 1},
         // sl "cleaned [10 ids]". The 5 "global:drained" lines are "queue ran empty" events,
         // not queue.drain(): drained stays 0.
         {"cleaned", 10},
     }},
    // BullMQ 6.7.0, prefix {bq}, queue "emails": flow in MULTI, changePriority, job scheduler,
    // rate limiter, drain, obliterate.
    {"bullmq-6.7.0-extras",
     "{bq}",
     "emails",
     {
         // flow-parent, flow-child1, flow-child2 (PHASE flow, one MULTI), prio-change,
         // repeat:every-700ms:...953 (addJobScheduler) and ...353 (updateJobScheduler, "tick"
         // x2), leftover (added before drain): 7.
         {"added", 7},
         {"waiting", 4},           // child1, child2, first tick (delay 0), leftover
         {"delayed", 1},           // second tick, 376 ms in the future
         {"prioritized", 1},       // prio-change (priority 10, changed to 1: no transition)
         {"waiting_children", 1},  // flow-parent
         {"active", 6},            // 6 x "processing"
         {"completed", 6},         // 6 x "completed"
         {"drained", 1},           // "PHASE drain + obliterate"
         {"paused", 1},            // obliterate needs a paused queue
         {"obliterated", 1},
     }},
    // BullMQ 6.7.0 with SCRIPT FLUSH mid-run ("flushed script cache"): EVAL, EVALSHA, EVALSHA
    // -> NOSCRIPT (changed nothing) -> EVAL, EVALSHA: four jobs {"i":1..4} on queue "ns".
    {"bullmq-6.7.0-noscript", "bull", "ns", {{"added", 4}, {"waiting", 4}}},
    // BullMQ 6.7.0, maxStalledCount 0: sl "child took job-stall-fail", "killed child",
    // "worker failed job-stall-fail job stalled more than allowable limit", "state failed".
    {"bullmq-6.7.0-stall-fail",
     "bull",
     "orders",
     {{"added", 1}, {"waiting", 2}, {"active", 2}, {"stalled", 1}, {"failed", 1}}},
};

struct ReplayResult {
  JobsSnapshot snapshot;
  std::vector<std::string> audit;
  size_t unmatched = 0;
};

ReplayResult Replay(const std::string& run, bool hide_bodies) {
  auto stream = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*stream);
  sink->set_pattern("%v");
  auto logger = std::make_shared<spdlog::logger>("jobs-audit-test", sink);
  JobTrackerOptions options;
  options.prefixes = {"bull", "{bq}"};
  options.audit_logger = logger;
  ReplayResult result;
  {
    JobTracker tracker(options);
    CaptureReplayer replayer({.hide_eval_bodies = hide_bodies},
                             [&](const Observation& obs) { tracker.Record(obs); });
    replayer.Run(CapturesDir() / run / "proxy.jsonl");
    result.snapshot = tracker.Snapshot();
    result.unmatched = replayer.unmatched();
  }
  logger->flush();
  std::istringstream lines(stream->str());
  for (std::string l; std::getline(lines, l);) {
    if (!l.empty()) result.audit.push_back(l);
  }
  return result;
}

const QueueJobsSnapshot* FindQueue(const JobsSnapshot& s, std::string_view prefix,
                                   std::string_view name) {
  for (const auto& q : s.queues) {
    if (q.prefix == prefix && q.name == name) return &q;
  }
  return nullptr;
}

const RecentJobSnapshot* FindJob(const JobsSnapshot& s, std::string_view id) {
  for (const auto& j : s.recent) {
    if (j.id == id) return &j;
  }
  return nullptr;
}

uint64_t Finished(const Expected& e) {
  uint64_t n = 0;
  for (const char* t : {"completed", "failed"}) {
    if (auto it = e.counts.find(t); it != e.counts.end()) n += it->second;
  }
  return n;
}

class JobsReplay : public ::testing::TestWithParam<std::tuple<size_t, bool>> {
 protected:
  void SetUp() override {
    if (!fs::exists(CapturesDir())) {
      GTEST_SKIP() << "no reference captures at " << CapturesDir();
    }
  }
};

TEST_P(JobsReplay, TransitionCountsMatchScenario) {
  const auto& [index, hide_bodies] = GetParam();
  const Expected& exp = kExpected[index];
  const ReplayResult r = Replay(exp.run, hide_bodies);
  EXPECT_EQ(r.unmatched, 0u) << "reply pairing lost in the harness";
  ASSERT_EQ(r.snapshot.queues.size(), 1u) << "exactly one queue in every capture";
  const QueueJobsSnapshot* q = FindQueue(r.snapshot, exp.prefix, exp.queue);
  ASSERT_NE(q, nullptr) << exp.prefix << ":" << exp.queue;
  std::ostringstream summary;
  for (size_t i = 0; i < kTransitionCount; ++i) {
    const std::string name(kTransitionNames[i]);
    const auto it = exp.counts.find(name);
    const uint64_t want = it == exp.counts.end() ? 0 : it->second;
    EXPECT_EQ(q->transitions[i], want)
        << exp.run << " transition " << name << (hide_bodies ? " (bodies hidden)" : "");
    if (q->transitions[i] != 0) summary << name << "=" << q->transitions[i] << " ";
  }
  std::cout << "[ counts   ] " << exp.run << (hide_bodies ? " (no bodies)" : "") << ": "
            << summary.str() << "\n";
  // Every final state has an attempts sample; completed + failed jobs.
  EXPECT_EQ(q->attempts.count, Finished(exp));
  // The tracker never lost a call it identified to a parse failure.
  EXPECT_EQ(r.snapshot.counters.calls_unparsed, 0u);
  EXPECT_EQ(r.snapshot.counters.calls_foreign, 0u);
  if (hide_bodies) {
    EXPECT_EQ(r.snapshot.counters.calls_by_body, 0u);
    EXPECT_GT(r.snapshot.counters.calls_by_shape, 0u);
  } else {
    EXPECT_GT(r.snapshot.counters.calls_by_body, 0u);
  }
  // One audit line per final failure.
  EXPECT_EQ(r.audit.size(), q->transitions[static_cast<size_t>(Transition::kFailed)]);
}

INSTANTIATE_TEST_SUITE_P(AllCaptures, JobsReplay,
                         ::testing::Combine(::testing::Range<size_t>(0, std::size(kExpected)),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<size_t, bool>>& info) {
                           std::string name = kExpected[std::get<0>(info.param)].run;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name + (std::get<1>(info.param) ? "_NoBodies" : "_Bodies");
                         });

class JobsReplayDetails : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(CapturesDir())) GTEST_SKIP() << "no reference captures at " << CapturesDir();
  }
};

uint64_t CountAbove(const HistogramSnapshot& h, double bound) {
  uint64_t n = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (i == kJobDurationBucketsSeconds.size() || kJobDurationBucketsSeconds[i] > bound) {
      n += h.counts[i];
    }
  }
  return n;
}

TEST_F(JobsReplayDetails, BullMQDurationsAttemptsRecentJobsAndAudit) {
  for (const char* run : {"bullmq-6.7.0", "bullmq-5.81.5"}) {
    SCOPED_TRACE(run);
    const ReplayResult r = Replay(run, false);
    const QueueJobsSnapshot* q = FindQueue(r.snapshot, "bull", "orders");
    ASSERT_NE(q, nullptr);
    // Every activation has a wait sample: from the add (ARGV timestamp + delay), from the
    // backoff (moveToDelayed timestamp + delay), from retryJob / the stall check (ARGV
    // timestamps), or on respscope's clock (promote, job.retry()).
    EXPECT_EQ(q->wait_seconds.count, 15u);
    // The delayed jobs' delays (1.5 s, 60 s before promote) are not wait time: every job of this
    // workload was picked up within a second of becoming runnable.
    EXPECT_EQ(CountAbove(q->wait_seconds, 1.0), 0u);
    // 10 completed + 2 failed + 2 failed attempts re-queued (job-flaky, job-doomed).
    EXPECT_EQ(q->process_seconds.count, 14u);
    EXPECT_EQ(CountAbove(q->process_seconds, 0.5), 0u);  // jobs sleep ~100-200 ms
    // Attempts of the 12 finished jobs: job-doomed 2 (failed) then 3 (completed after
    // job.retry()), job-flaky 2, job-stall 2 (stalled once), the others 1.
    EXPECT_EQ(q->attempts.count, 12u);
    EXPECT_DOUBLE_EQ(q->attempts.sum, 17);

    const RecentJobSnapshot* doomed = FindJob(r.snapshot, "job-doomed");
    ASSERT_NE(doomed, nullptr);
    EXPECT_EQ(doomed->state, JobState::kCompleted);
    EXPECT_EQ(doomed->attempts, 3u);  // sl "worker2 processing job-doomed attemptsStarted 3"
    EXPECT_EQ(doomed->name, "doomed");
    EXPECT_EQ(doomed->failed_reason, "doomed to fail, attempt 1");
    const RecentJobSnapshot* flaky = FindJob(r.snapshot, "job-flaky");
    ASSERT_NE(flaky, nullptr);
    EXPECT_EQ(flaky->attempts, 2u);
    EXPECT_EQ(flaky->failed_reason, "flaky failure #1");  // from moveToDelayed's fields
    const RecentJobSnapshot* stall = FindJob(r.snapshot, "job-stall");
    ASSERT_NE(stall, nullptr);
    EXPECT_EQ(stall->attempts, 2u);  // sl "worker2 processing job-stall attemptsStarted 2"
    EXPECT_EQ(FindJob(r.snapshot, "job-remove")->state, JobState::kRemoved);
    EXPECT_EQ(FindJob(r.snapshot, "job-unrec")->state, JobState::kFailed);
    EXPECT_GT(FindJob(r.snapshot, "job-lifo")->processed_ms,
              FindJob(r.snapshot, "job-lifo")->added_ms);

    ASSERT_EQ(r.audit.size(), 2u);
    const json::object unrec = json::parse(r.audit[0]).as_object();
    EXPECT_EQ(unrec.at("event").as_string(), "job_failed");
    EXPECT_EQ(unrec.at("queue").as_string(), "orders");
    EXPECT_EQ(unrec.at("job_id").as_string(), "job-unrec");
    EXPECT_EQ(unrec.at("name").as_string(), "unrec");
    EXPECT_EQ(unrec.at("attempt").to_number<int64_t>(), 1);
    EXPECT_EQ(unrec.at("max_attempts").to_number<int64_t>(), 3);
    EXPECT_EQ(unrec.at("reason").as_string(), "unrecoverable!");
    EXPECT_TRUE(unrec.at("duration_ms").is_int64());
    const json::object doomed_line = json::parse(r.audit[1]).as_object();
    EXPECT_EQ(doomed_line.at("job_id").as_string(), "job-doomed");
    EXPECT_EQ(doomed_line.at("attempt").to_number<int64_t>(), 2);
    EXPECT_EQ(doomed_line.at("reason").as_string(), "doomed to fail, attempt 1");
  }
}

TEST_F(JobsReplayDetails, HiddenBodiesGiveTheSameResult) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE(e.run);
    const ReplayResult a = Replay(e.run, false);
    const ReplayResult b = Replay(e.run, true);
    ASSERT_EQ(a.snapshot.queues.size(), b.snapshot.queues.size());
    for (size_t i = 0; i < a.snapshot.queues.size(); ++i) {
      const auto& qa = a.snapshot.queues[i];
      const auto& qb = b.snapshot.queues[i];
      EXPECT_EQ(qa.transitions, qb.transitions);
      EXPECT_EQ(qa.wait_seconds.counts, qb.wait_seconds.counts);
      EXPECT_EQ(qa.process_seconds.counts, qb.process_seconds.counts);
      EXPECT_EQ(qa.attempts.counts, qb.attempts.counts);
    }
    EXPECT_EQ(a.audit, b.audit);
    EXPECT_EQ(a.snapshot.recent.size(), b.snapshot.recent.size());
  }
}

TEST_F(JobsReplayDetails, BullReasonsComeFromSaveStacktraceInMulti) {
  const ReplayResult r = Replay("bull-4.16.5", false);
  const RecentJobSnapshot* flaky = FindJob(r.snapshot, "job-flaky");
  ASSERT_NE(flaky, nullptr);
  EXPECT_EQ(flaky->failed_reason, "flaky failure #1");
  EXPECT_EQ(flaky->attempts, 2u);
  const RecentJobSnapshot* auto_id = FindJob(r.snapshot, "11");
  ASSERT_NE(auto_id, nullptr);
  EXPECT_EQ(auto_id->name, "auto-id");
  EXPECT_EQ(auto_id->state, JobState::kCompleted);
  const QueueJobsSnapshot* q = FindQueue(r.snapshot, "bull", "orders");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->wait_seconds.count, 15u);
  EXPECT_EQ(q->process_seconds.count, 14u);
  EXPECT_EQ(CountAbove(q->wait_seconds, 1.0), 0u);
}

TEST_F(JobsReplayDetails, NoscriptChangesNothingAndTheEvalThatFollowsCounts) {
  for (bool hide : {false, true}) {
    const ReplayResult r = Replay("bullmq-6.7.0-noscript", hide);
    EXPECT_EQ(r.snapshot.counters.calls_rejected, 1u);  // the EVALSHA answered -NOSCRIPT
    for (const char* id : {"1", "2", "3", "4"}) {
      const RecentJobSnapshot* j = FindJob(r.snapshot, id);
      ASSERT_NE(j, nullptr) << id;
      EXPECT_EQ(j->state, JobState::kWaiting);
      EXPECT_EQ(j->name, "a");
    }
  }
}

TEST_F(JobsReplayDetails, StalledTooOftenFails) {
  const ReplayResult r = Replay("bullmq-6.7.0-stall-fail", false);
  const RecentJobSnapshot* j = FindJob(r.snapshot, "job-stall-fail");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->state,
            JobState::kFailed);  // sl "state failed job stalled more than allowable limit"
  EXPECT_EQ(j->failed_reason, "job stalled more than allowable limit");
  EXPECT_EQ(j->attempts, 2u);
  ASSERT_EQ(r.audit.size(), 1u);
  EXPECT_NE(r.audit[0].find("\"job_id\":\"job-stall-fail\""), std::string::npos);
}

TEST_F(JobsReplayDetails, ExtrasFlowsSchedulersAndHashTagPrefix) {
  const ReplayResult r = Replay("bullmq-6.7.0-extras", false);
  const QueueJobsSnapshot* q = FindQueue(r.snapshot, "{bq}", "emails");
  ASSERT_NE(q, nullptr);
  // The flow parent waited for its children, not in the wait list: no wait sample.
  EXPECT_EQ(q->wait_seconds.count, 5u);
  EXPECT_EQ(q->process_seconds.count, 6u);
  const RecentJobSnapshot* parent = FindJob(r.snapshot, "flow-parent");
  ASSERT_NE(parent, nullptr);
  EXPECT_EQ(parent->state, JobState::kCompleted);
  const RecentJobSnapshot* tick2 = FindJob(r.snapshot, "repeat:every-700ms:1795418751353");
  ASSERT_NE(tick2, nullptr);
  EXPECT_EQ(tick2->state, JobState::kCompleted);
  EXPECT_EQ(FindJob(r.snapshot, "repeat:every-700ms:1795418749953")->name, "tick");
  EXPECT_EQ(FindJob(r.snapshot, "leftover")->state, JobState::kWaiting);
}

TEST_F(JobsReplayDetails, UnconfiguredPrefixIsIgnored) {
  // Without "{bq}" configured, the extras run is someone else's keys.
  JobTrackerOptions options;  // prefixes {"bull"}
  JobTracker tracker(options);
  CaptureReplayer replayer({}, [&](const Observation& obs) { tracker.Record(obs); });
  replayer.Run(CapturesDir() / "bullmq-6.7.0-extras" / "proxy.jsonl");
  const JobsSnapshot s = tracker.Snapshot();
  EXPECT_TRUE(s.queues.empty());
  EXPECT_GT(s.counters.calls_foreign, 0u);
}

}  // namespace
}  // namespace respscope::analytics::jobs
