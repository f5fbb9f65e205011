// Replays the repository's own recordings of real BullMQ / Bull workloads
// (tests/fixtures/captures/<run>/proxy.jsonl: every RESP frame of every connection, both
// directions, recorded by tests/fixtures/record.py from tests/e2e/bullmq_scenario.js and
// tests/e2e/bull_scenario.js) through a minimal stand-in for the data plane, and checks the
// JobTracker's per-queue transition counts, histograms, job records and audit lines against
// what those workloads do (derived below from the scenario scripts, and checked against the
// bookkeeping each run saved in result.json).
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
//
// A missing recording is a failure, never a skip: the fixtures are part of the repository.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "analytics/jobs/job_tracker.h"

namespace respscope::analytics::jobs {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// tests/fixtures of the source tree (a compile definition: the tests read nothing else).
const fs::path kFixtures = RESPSCOPE_FIXTURES_DIR;
constexpr std::string_view kRegenerate = "regenerate with: python3 tests/fixtures/record.py";

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
  size_t noscript_replies() const { return noscript_replies_; }
  // Lowercase SHA1s of every EVALSHA / EVALSHA_RO sent.
  const std::set<std::string>& evalsha_shas() const { return evalsha_shas_; }

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
    if ((cmd.cmd == "evalsha" || cmd.cmd == "evalsha_ro") && cmd.args.size() >= 2) {
      evalsha_shas_.insert(Lower(cmd.args[1]));
    }
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
      if (error_text_.starts_with("NOSCRIPT")) ++noscript_replies_;
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
  size_t noscript_replies_ = 0;
  std::set<std::string> evalsha_shas_;
};

// ------------------------------------------------------------------------------------------

using Counts = std::map<std::string, uint64_t>;  // transition name -> expected count

struct QueueExpected {
  std::string queue;
  Counts counts;  // transitions not listed must be 0
  // Activations with no wait sample: a flow parent's release from waiting-children happens
  // inside another script (job_tracker.h), so its runnable time is unknown.
  uint64_t not_runnable_activations = 0;
  uint64_t attempts_sum = 0;  // attempts started, summed over the completed and failed jobs
};

struct Expected {
  std::string run;
  std::string prefix;     // of every queue of the run
  std::string lib;        // result.json "lib"
  std::string sha_map;    // tests/fixtures/sha-maps/<sha_map>: every EVALSHA on the wire is in it
  bool noscript = false;  // SCRIPT FLUSH mid-run: -NOSCRIPT replies, each followed by an EVAL
  std::vector<QueueExpected> queues;
};

// Conventions (job_types.h): every add counts `added` plus exactly one of waiting / delayed /
// prioritized / waiting_children; `waiting` also counts immediate retries and stall recoveries,
// but not the automatic delayed -> waiting promotions that happen inside other scripts
// (invisible on the wire); `retried` counts failed attempts re-queued (backoff or immediate).
//
// Queue "mix" of tests/e2e/bullmq_scenario.js run():
const QueueExpected kBullMQMix = {
    "mix",
    {
        // queue.add x30 (12 plain, 4 delayed, 4 prio, 3 flaky-backoff, 2 flaky-now, 2 doomed,
        // unrecoverable, fail-once, to-remove) + a FlowProducer tree of 4 (parent, 3 children).
        {"added", 34},
        // Added to wait: 12 plain, 3 flaky-backoff, 2 flaky-now, 2 doomed, unrecoverable,
        // fail-once, 3 flow children (24) + the 2 flaky-now first attempts, retried at once
        // (no backoff): 26.
        {"waiting", 26},
        // Added delayed: 4 delayed + to-remove (5) + backoffs: flaky-backoff attempts 1 and 2
        // (6), doomed attempt 1 (2): 13.
        {"delayed", 13},
        // {priority: i + 1}
        {"prioritized", 4},
        // The flow parent.
        {"waiting_children", 1},
        // Attempts: plain 12, delayed 4, prio 4, flaky-backoff 3x3, flaky-now 2x2, doomed 2x2,
        // unrecoverable 1, fail-once 1, flow 4: 43.
        {"active", 43},
        // Plain jobs i = 0, 3, 6, 9 call updateProgress twice.
        {"progress", 8},
        // Plain 12, delayed 4, prio 4, flaky-backoff 3, flaky-now 2, flow 4.
        {"completed", 29},
        // Doomed x2 (attempts: 2 exhausted), unrecoverable (UnrecoverableError), fail-once.
        {"failed", 4},
        {"retried", 10},  // the 8 backoffs + the 2 immediate retries
        {"removed", 1},   // to-remove
        {"paused", 1},
        {"resumed", 1},
    },
    1,
    43,  // every attempt of mix belongs to a job that completed or failed
};

// Queue "mix" of tests/e2e/bull_scenario.js run(): the same mix without the flow, and a job
// that calls job.discard() (attempts: 3) instead of throwing UnrecoverableError.
const QueueExpected kBullMix = {
    "mix",
    {
        {"added", 30},
        {"waiting", 23},  // 21 added to wait + the 2 flaky-now immediate retries
        {"delayed", 13},  // 5 added delayed + 8 backoffs
        {"prioritized", 4},
        {"active", 39},  // 43 of BullMQ less the 4 flow jobs
        {"progress", 8},
        {"completed", 25},
        {"failed", 4},  // doomed x2, discarded, fail-once
        {"retried", 10},
        {"removed", 1},
        {"paused", 1},
        {"resumed", 1},
    },
    0,
    39,
};

// Queue "stall" of both scripts: one job whose first worker (a child process) is SIGKILLed
// mid-job; the stall checker puts it back in wait, a second worker completes it, and
// sq.clean(0, ..., 'completed') removes it.
const QueueExpected kStall = {
    "stall",
    {{"added", 1},
     {"waiting", 2},  // added + recovered from the stall
     {"active", 2},
     {"stalled", 1},
     {"completed", 1},
     {"cleaned", 1}},
    0,
    2,
};

// Queue "emails" of tests/e2e/bullmq_scenario.js extras().
const QueueExpected kExtras = {
    "emails",
    {
        // A flow parent with two children (one MULTI), prio-change, leftover.
        {"added", 5},
        {"waiting",
         3},  // the two children, leftover
              // prio-change ({priority: 10}; changePriority to 1 stays prioritized: no transition).
        {"prioritized", 1},
        {"waiting_children", 1},  // the flow parent
        {"active", 4},            // children, parent, prio-change: one attempt each
        {"completed", 4},
        {"drained", 1},  // queue.drain(): leftover was waiting, no worker left
        {"paused", 1},   // queue.obliterate() pauses the queue first
        {"obliterated", 1},
    },
    1,
    4,
};

// Queue "stall-fail" of extras(): one job whose worker is SIGKILLed; the next worker runs the
// stall check with maxStalledCount 0, which moves the job back to wait marked to fail (BullMQ
// >= 5.53.2), takes it and fails it ("job stalled more than allowable limit").
const QueueExpected kStallFail = {
    "stall-fail",
    {{"added", 1},
     {"waiting", 2},  // added + moved back by the stall check
     {"active", 2},   // the killed worker, then the one that fails it
     {"stalled", 1},
     {"failed", 1}},
    0,
    2,
};

const Expected kExpected[] = {
    // ioredis 6 (HELLO 3: RESP3 replies): EVAL with the body on each script's first call per
    // socket, EVALSHA after.
    {"bullmq-6.7.0", "bull", "bullmq", "sha-map-bullmq-6.7.0.txt", false, {kBullMQMix, kStall}},
    // BullMQ 5 with its own ioredis 5 (RESP2).
    {"bullmq-5.81.5", "bull", "bullmq5", "sha-map-bullmq-5.81.5.txt", false, {kBullMQMix, kStall}},
    // Bull 4 (ioredis 5, RESP2): events over pub/sub, failures as MULTI [saveStacktrace, ...].
    {"bull-4.16.5", "bull", "bull", "sha-map-bull-4.16.5.txt", false, {kBullMix, kStall}},
    // The bullmq-6.7.0 workload with SCRIPT FLUSH once a third of the jobs had finished: the
    // NOSCRIPT answers change nothing; the EVAL that follows each one counts once.
    {"bullmq-6.7.0-noscript",
     "bull",
     "bullmq",
     "sha-map-bullmq-6.7.0.txt",
     true,
     {kBullMQMix, kStall}},
    // bullmq_scenario.js extras() with the hash-tag prefix "{bq}".
    {"bullmq-6.7.0-extras",
     "{bq}",
     "bullmq",
     "sha-map-bullmq-6.7.0.txt",
     false,
     {kExtras, kStallFail}},
};
// The runs of the mix (queues "mix" and "stall") come first.
constexpr size_t kMixRuns = 4;

fs::path CapturePath(const std::string& run) {
  return kFixtures / "captures" / run / "proxy.jsonl";
}

json::value ReadJson(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "missing " << path << "; " << kRegenerate;
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

// The run's result.json: the scenario's RESULT line (expected, truth, ids, attempts, reasons).
json::object ScenarioResult(const std::string& run) {
  const json::value v = ReadJson(kFixtures / "captures" / run / "result.json");
  return v.is_object() ? v.as_object() : json::object{};
}

struct ReplayResult {
  JobsSnapshot snapshot;
  std::vector<std::string> audit;
  size_t frames = 0;
  size_t unmatched = 0;
  size_t noscript_replies = 0;
  std::set<std::string> evalsha_shas;
};

ReplayResult Replay(const std::string& run, bool hide_bodies,
                    std::vector<std::string> prefixes = {"bull", "{bq}"}) {
  auto stream = std::make_shared<std::ostringstream>();
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*stream);
  sink->set_pattern("%v");
  auto logger = std::make_shared<spdlog::logger>("jobs-audit-test", sink);
  JobTrackerOptions options;
  options.prefixes = std::move(prefixes);
  options.audit_logger = logger;
  ReplayResult result;
  {
    JobTracker tracker(options);
    CaptureReplayer replayer({.hide_eval_bodies = hide_bodies},
                             [&](const Observation& obs) { tracker.Record(obs); });
    const fs::path path = CapturePath(run);
    if (!fs::exists(path)) ADD_FAILURE() << "missing " << path << "; " << kRegenerate;
    replayer.Run(path);
    result.snapshot = tracker.Snapshot();
    result.frames = replayer.frames();
    result.unmatched = replayer.unmatched();
    result.noscript_replies = replayer.noscript_replies();
    result.evalsha_shas = replayer.evalsha_shas();
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

const RecentJobSnapshot* FindJob(const JobsSnapshot& s, std::string_view queue,
                                 std::string_view id) {
  for (const auto& j : s.recent) {
    if (j.queue == queue && j.id == id) return &j;
  }
  return nullptr;
}

uint64_t Count(const QueueExpected& e, const char* transition) {
  const auto it = e.counts.find(transition);
  return it == e.counts.end() ? 0 : it->second;
}

std::vector<std::string> Strings(const json::value& v) {
  std::vector<std::string> out;
  if (!v.is_array()) return out;
  for (const json::value& s : v.as_array()) out.emplace_back(s.as_string());
  return out;
}

class JobsReplay : public ::testing::TestWithParam<std::tuple<size_t, bool>> {};

TEST_P(JobsReplay, TransitionCountsMatchScenario) {
  const auto& [index, hide_bodies] = GetParam();
  const Expected& exp = kExpected[index];
  const ReplayResult r = Replay(exp.run, hide_bodies);
  EXPECT_GT(r.frames, 2 * Count(exp.queues[0], "active")) << exp.run;  // a whole recording
  EXPECT_EQ(r.unmatched, 0u) << "reply pairing lost in the harness";
  ASSERT_EQ(r.snapshot.queues.size(), exp.queues.size());
  uint64_t failed = 0;
  for (const QueueExpected& qe : exp.queues) {
    SCOPED_TRACE(exp.run + " queue " + qe.queue + (hide_bodies ? " (bodies hidden)" : ""));
    const QueueJobsSnapshot* q = FindQueue(r.snapshot, exp.prefix, qe.queue);
    ASSERT_NE(q, nullptr);
    std::ostringstream summary;
    for (size_t i = 0; i < kTransitionCount; ++i) {
      const std::string name(kTransitionNames[i]);
      EXPECT_EQ(q->transitions[i], Count(qe, name.c_str())) << "transition " << name;
      if (q->transitions[i] != 0) summary << name << "=" << q->transitions[i] << " ";
    }
    std::cout << "[ counts   ] " << exp.run << (hide_bodies ? " (no bodies) " : " ") << qe.queue
              << ": " << summary.str() << "\n";
    const JobRetentionCounts& keep = q->retention;
    std::cout << "[ keep     ] adds " << keep.adds_keep_completed << "/" << keep.adds_read
              << " keep completed, " << keep.adds_keep_failed << "/" << keep.adds_read
              << " keep failed; completed " << keep.completed_keep_all << "/"
              << keep.completed_read << ", failed " << keep.failed_keep_all << "/"
              << keep.failed_read << " keep all; oldest runnable " << q->oldest_runnable_ms
              << "\n";
    // The scenarios set neither removeOnComplete nor removeOnFail, and every worker keeps all
    // (keepJobs {count: -1}): every add's options and every finish's keepJobs were read.
    EXPECT_EQ(keep.adds_read, Count(qe, "added"));
    EXPECT_EQ(keep.adds_keep_completed, keep.adds_read);
    EXPECT_EQ(keep.adds_keep_failed, keep.adds_read);
    EXPECT_EQ(keep.completed_read, Count(qe, "completed"));
    EXPECT_EQ(keep.completed_keep_all, keep.completed_read);
    EXPECT_EQ(keep.failed_read, Count(qe, "failed"));
    EXPECT_EQ(keep.failed_keep_all, keep.failed_read);
    // Every job the scenarios add is taken by a worker, removed or drained by the end.
    EXPECT_EQ(q->oldest_runnable_ms, -1);
    const uint64_t finished = Count(qe, "completed") + Count(qe, "failed");
    // One attempts sample per completed or failed job, with the attempts it started.
    EXPECT_EQ(q->attempts.count, finished);
    EXPECT_DOUBLE_EQ(q->attempts.sum, static_cast<double>(qe.attempts_sum));
    // A wait sample per activation whose runnable time is known; a process sample per attempt
    // that ended (completed, failed, or failed and retried): the SIGKILLed attempt never ends.
    EXPECT_EQ(q->wait_seconds.count, Count(qe, "active") - qe.not_runnable_activations);
    EXPECT_EQ(q->process_seconds.count, finished + Count(qe, "retried"));
    failed += Count(qe, "failed");
  }
  // The tracker never lost a call it identified to a parse failure.
  EXPECT_EQ(r.snapshot.counters.calls_unparsed, 0u);
  EXPECT_EQ(r.snapshot.counters.calls_foreign, 0u);
  if (hide_bodies) {
    EXPECT_EQ(r.snapshot.counters.calls_by_body, 0u);
    EXPECT_GT(r.snapshot.counters.calls_by_shape, 0u);
  } else {
    EXPECT_GT(r.snapshot.counters.calls_by_body, 0u);
  }
  if (exp.noscript) {
    // The workers' first calls after SCRIPT FLUSH: each one identified and rejected (changed
    // nothing); ioredis sent it again as EVAL, which counts.
    EXPECT_GT(r.noscript_replies, 0u);
    EXPECT_GE(r.snapshot.counters.calls_rejected, r.noscript_replies);
  } else {
    EXPECT_EQ(r.noscript_replies, 0u);
  }
  // One audit line per final failure.
  EXPECT_EQ(r.audit.size(), failed);
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

// The expectations above are what the scenario scripts were written to do; result.json is what
// each recorded run's own bookkeeping (workers' events, cross-checked by record.py against the
// library's getJobCounts()) counted. They must agree, or the recording is not of the workload
// the expectations describe.
TEST(JobsReplayFixtures, RecordedRunsDidWhatTheScenariosSay) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE(e.run);
    const json::object res = ScenarioResult(e.run);
    ASSERT_TRUE(res.contains("expected")) << kRegenerate;
    EXPECT_EQ(res.at("lib").as_string(), e.lib);
    const std::string version(res.at("version").as_string());
    EXPECT_NE(e.run.find("-" + version), std::string::npos) << version;
    for (const QueueExpected& qe : e.queues) {
      const json::object& got = res.at("expected").at(qe.queue).as_object();
      for (std::string_view name : kTransitionNames) {
        ASSERT_TRUE(got.contains(name)) << name;
        EXPECT_EQ(got.at(name).to_number<uint64_t>(), Count(qe, std::string(name).c_str()))
            << qe.queue << " " << name;
      }
    }
  }
}

// sha-map-<lib>-<version>.txt: "<sha1> <name-numkeys> <size>" per line
// (tests/fixtures/sha_maps.js).
std::set<std::string> ShaMap(const std::string& file) {
  std::set<std::string> out;
  std::ifstream in(kFixtures / "sha-maps" / file);
  std::string sha, name, size;
  while (in >> sha >> name >> size) out.insert(sha);
  return out;
}

TEST(JobsReplayFixtures, EveryEvalshaOnTheWireIsAShippedScript) {
  for (const Expected& e : kExpected) {
    SCOPED_TRACE(e.run);
    const std::set<std::string> shipped = ShaMap(e.sha_map);
    ASSERT_FALSE(shipped.empty()) << e.sha_map;
    const ReplayResult r = Replay(e.run, false);
    EXPECT_FALSE(r.evalsha_shas.empty());
    for (const std::string& sha : r.evalsha_shas) EXPECT_TRUE(shipped.contains(sha)) << sha;
  }
}

class JobsReplayDetails : public ::testing::TestWithParam<size_t> {};

// Each job's final state, attempts and latest failure reason, as the scenario's bookkeeping
// recorded them (result.json ids / attempts / failedReasons, keyed "<queue>/<id>").
TEST_P(JobsReplayDetails, JobRecordsMatchTheScenarioBookkeeping) {
  const Expected& e = kExpected[GetParam()];
  const json::object res = ScenarioResult(e.run);
  ASSERT_TRUE(res.contains("ids")) << kRegenerate;
  const json::object& ids = res.at("ids").as_object();
  const json::object& attempts = res.at("attempts").as_object();
  const json::object& reasons = res.at("failedReasons").as_object();
  const ReplayResult r = Replay(e.run, false);
  auto attempts_of = [&](const std::string& queue, const std::string& id) {
    return attempts.at(queue + "/" + id).to_number<uint32_t>();
  };
  const std::vector<std::string> completed = Strings(ids.at("completed").at("mix"));
  const std::vector<std::string> failed = Strings(ids.at("failed").at("mix"));
  EXPECT_EQ(completed.size(), Count(e.queues[0], "completed"));
  EXPECT_EQ(failed.size(), Count(e.queues[0], "failed"));
  for (const std::string& id : completed) {
    const RecentJobSnapshot* j = FindJob(r.snapshot, "mix", id);
    ASSERT_NE(j, nullptr) << id;
    EXPECT_EQ(j->state, JobState::kCompleted) << id;
    EXPECT_EQ(j->attempts, attempts_of("mix", id)) << id;
    EXPECT_GE(j->finished_ms, j->processed_ms) << id;
  }
  for (const std::string& id : failed) {
    const RecentJobSnapshot* j = FindJob(r.snapshot, "mix", id);
    ASSERT_NE(j, nullptr) << id;
    EXPECT_EQ(j->state, JobState::kFailed) << id;
    EXPECT_EQ(j->attempts, attempts_of("mix", id)) << id;
    EXPECT_EQ(j->failed_reason, reasons.at("mix/" + id).as_string()) << id;
  }
  for (const std::string& id : Strings(ids.at("removed").at("mix"))) {
    const RecentJobSnapshot* j = FindJob(r.snapshot, "mix", id);
    ASSERT_NE(j, nullptr) << id;
    EXPECT_EQ(j->state, JobState::kRemoved);
    EXPECT_EQ(j->name, "to-remove");
  }
  // The flaky-backoff jobs failed attempts 1 and 2, then completed: the latest failure is kept.
  size_t flaky = 0;
  for (const RecentJobSnapshot& j : r.snapshot.recent) {
    if (j.queue != "mix" || j.name != "flaky-backoff") continue;
    ++flaky;
    EXPECT_EQ(j.state, JobState::kCompleted);
    EXPECT_EQ(j.attempts, 3u);
    EXPECT_EQ(j.failed_reason, "flaky (backoff) attempt 2");
  }
  EXPECT_EQ(flaky, 3u);
  // The stalled job: taken by the killed worker, then by the second one.
  const std::string stalled(ids.at("stalled").as_string());
  const RecentJobSnapshot* s = FindJob(r.snapshot, "stall", stalled);
  ASSERT_NE(s, nullptr) << stalled;
  EXPECT_EQ(s->name, "stall-me");
  EXPECT_EQ(s->attempts, 2u);
  if (ids.contains("flowParent")) {
    const RecentJobSnapshot* p = FindJob(r.snapshot, "mix", ids.at("flowParent").as_string());
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->name, "flow-parent");
    EXPECT_EQ(p->state, JobState::kCompleted);
  }
}

// One audit line per final failure, with the job, its attempts and the reason the worker threw.
TEST_P(JobsReplayDetails, AuditLinesForFinalFailures) {
  const Expected& e = kExpected[GetParam()];
  const json::object res = ScenarioResult(e.run);
  ASSERT_TRUE(res.contains("ids")) << kRegenerate;
  const std::vector<std::string> failed = Strings(res.at("ids").at("failed").at("mix"));
  const ReplayResult r = Replay(e.run, false);
  ASSERT_EQ(r.audit.size(), failed.size());
  std::set<std::string> seen;
  for (const std::string& line : r.audit) {
    const json::object a = json::parse(line).as_object();
    const std::string id(a.at("job_id").as_string());
    seen.insert(id);
    SCOPED_TRACE(line);
    EXPECT_EQ(a.at("event").as_string(), "job_failed");
    EXPECT_EQ(a.at("prefix").as_string(), "bull");
    EXPECT_EQ(a.at("queue").as_string(), "mix");
    EXPECT_EQ(a.at("reason").as_string(), res.at("failedReasons").at("mix/" + id).as_string());
    EXPECT_EQ(a.at("attempt").to_number<int64_t>(),
              res.at("attempts").at("mix/" + id).to_number<int64_t>());
    const std::string_view name = a.at("name").as_string();
    // Options of the failing jobs in the scenario scripts.
    if (name == "doomed") {
      EXPECT_EQ(a.at("max_attempts").to_number<int64_t>(), 2);
      EXPECT_EQ(a.at("attempt").to_number<int64_t>(), 2);
    } else if (name == "unrecoverable" || name == "discarded") {
      EXPECT_EQ(a.at("max_attempts").to_number<int64_t>(), 3);
      EXPECT_EQ(a.at("attempt").to_number<int64_t>(), 1);
    } else {
      EXPECT_EQ(name, "fail-once");
      EXPECT_EQ(a.at("reason").as_string(), "single attempt failure");
      EXPECT_EQ(a.at("attempt").to_number<int64_t>(), 1);
    }
    EXPECT_TRUE(a.at("duration_ms").is_int64());
  }
  EXPECT_EQ(seen, std::set<std::string>(failed.begin(), failed.end()));
}

uint64_t CountAbove(const HistogramSnapshot& h, double bound) {
  uint64_t n = 0;
  for (size_t i = 0; i < h.counts.size(); ++i) {
    if (i == kJobDurationBucketsSeconds.size() || kJobDurationBucketsSeconds[i] > bound) {
      n += h.counts[i];
    }
  }
  return n;
}

// Wait is runnable -> active: a delay (the delayed jobs' 700-1150 ms, the 250 / 100 ms
// backoffs) is not wait time, and the workers of "mix" (concurrency 4, a few ms per job) pick
// every job up soon after it becomes runnable. Processing is active -> finished: the jobs sleep
// 5-25 ms.
TEST_P(JobsReplayDetails, DelaysAreNotWaitTime) {
  const Expected& e = kExpected[GetParam()];
  for (bool hide : {false, true}) {
    const ReplayResult r = Replay(e.run, hide);
    const QueueJobsSnapshot* q = FindQueue(r.snapshot, "bull", "mix");
    ASSERT_NE(q, nullptr);
    EXPECT_GT(q->wait_seconds.count, 0u);
    EXPECT_EQ(CountAbove(q->wait_seconds, 0.5), 0u);
    EXPECT_EQ(CountAbove(q->process_seconds, 0.25), 0u);
  }
}

// Without bodies (every call identified by its KEYS) the tracker reaches the same state.
TEST(JobsReplayFixtures, HiddenBodiesGiveTheSameResult) {
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

INSTANTIATE_TEST_SUITE_P(AllCaptures, JobsReplayDetails, ::testing::Range<size_t>(0, kMixRuns),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           std::string name = kExpected[info.param].run;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

TEST(JobsReplayPrefixes, UnconfiguredPrefixIsIgnored) {
  // With only "other" configured, the recorded bull:* keys are someone else's; with only
  // "bull", the extras run's {bq}:* keys are.
  for (const auto& [run, prefix] :
       {std::pair{"bullmq-6.7.0", "other"}, std::pair{"bullmq-6.7.0-extras", "bull"}}) {
    SCOPED_TRACE(run);
    const ReplayResult r = Replay(run, false, {prefix});
    EXPECT_TRUE(r.snapshot.queues.empty());
    EXPECT_GT(r.snapshot.counters.calls_foreign, 0u);
    EXPECT_TRUE(r.audit.empty());
  }
}

// The flow parent of the extras run completes after its children; drain and obliterate are
// queue-level: they leave the job records alone. The job stalled too often fails.
TEST(JobsReplayExtras, FlowParentStalledTooOftenAndHashTagPrefix) {
  const json::object res = ScenarioResult("bullmq-6.7.0-extras");
  ASSERT_TRUE(res.contains("ids")) << kRegenerate;
  const ReplayResult r = Replay("bullmq-6.7.0-extras", false);
  const QueueJobsSnapshot* q = FindQueue(r.snapshot, "{bq}", "emails");
  ASSERT_NE(q, nullptr);
  const std::string parent_id(res.at("ids").at("flowParent").as_string());
  const RecentJobSnapshot* parent = FindJob(r.snapshot, "emails", parent_id);
  ASSERT_NE(parent, nullptr);
  EXPECT_EQ(parent->prefix, "{bq}");
  EXPECT_EQ(parent->name, "flow-parent");
  EXPECT_EQ(parent->state, JobState::kCompleted);
  for (const std::string& id : Strings(res.at("ids").at("completed").at("emails"))) {
    const RecentJobSnapshot* j = FindJob(r.snapshot, "emails", id);
    ASSERT_NE(j, nullptr) << id;
    EXPECT_EQ(j->state, JobState::kCompleted) << id;
    EXPECT_EQ(j->attempts, 1u) << id;
  }
  // Stalled too often: failed, with the reason the stall check gives and both attempts.
  const std::string stalled(res.at("ids").at("stalled").as_string());
  const RecentJobSnapshot* s = FindJob(r.snapshot, "stall-fail", stalled);
  ASSERT_NE(s, nullptr) << stalled;
  EXPECT_EQ(s->state, JobState::kFailed);
  EXPECT_EQ(s->failed_reason, res.at("failedReasons").at("stall-fail/" + stalled).as_string());
  EXPECT_EQ(s->failed_reason, "job stalled more than allowable limit");
  EXPECT_EQ(s->attempts, 2u);
  ASSERT_EQ(r.audit.size(), 1u);
  EXPECT_NE(r.audit[0].find("\"job_id\":\"" + stalled + "\""), std::string::npos) << r.audit[0];
  size_t leftover = 0;
  for (const RecentJobSnapshot& j : r.snapshot.recent) {
    if (j.name != "leftover") continue;
    ++leftover;
    EXPECT_EQ(j.state, JobState::kWaiting);
  }
  EXPECT_EQ(leftover, 1u);
}

}  // namespace
}  // namespace respscope::analytics::jobs
