#include "proxy/session/session_core.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace respscope::session {
namespace {

using analytics::Lookup;

struct Seen {
  std::string command;
  uint32_t flags = 0;
  std::vector<std::string> keys;
  std::vector<Lookup> lookups;
  std::string error_prefix;
  std::string raw;
  std::vector<std::string> args;
  std::string client;
};

class RecordingSink : public analytics::ObservationSink {
 public:
  void Record(const analytics::Observation& o) override {
    Seen s;
    s.command = std::string(o.command);
    s.flags = o.flags;
    for (auto k : o.keys) s.keys.emplace_back(k);
    s.lookups.assign(o.lookups.begin(), o.lookups.end());
    s.error_prefix = std::string(o.error_prefix);
    s.raw = std::string(o.reply_raw);
    for (auto a : o.args) s.args.emplace_back(a);
    s.client = std::string(o.client_name);
    seen.push_back(std::move(s));
  }
  void OnEvent(analytics::SessionEvent e, uint64_t) override { events.push_back(e); }
  void OnBytes(uint64_t, uint64_t) override {}
  std::vector<Seen> seen;
  std::vector<analytics::SessionEvent> events;
};

std::string Cmd(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

class SessionTest : public testing::Test {
 protected:
  SessionTest() : core_(commands::CommandTable::BuiltIn(), &sink_, 7, "127.0.0.1:5555") {}

  // Feeds the reply stream in random pieces, so matching never depends on read boundaries.
  void Replies(const std::string& bytes) {
    size_t pos = 0;
    while (pos < bytes.size()) {
      size_t n = 1 + rng_() % 9;
      core_.OnUpstreamBytes(std::string_view(bytes).substr(pos, n), 2000);
      pos += n;
    }
  }
  void Requests(const std::string& bytes) {
    size_t pos = 0;
    while (pos < bytes.size()) {
      size_t n = 1 + rng_() % 13;
      core_.OnClientBytes(std::string_view(bytes).substr(pos, n), 1000);
      pos += n;
    }
  }

  std::mt19937 rng_{3};
  RecordingSink sink_;
  SessionCore core_;
};

TEST_F(SessionTest, PipelinedLookups) {
  Requests(Cmd({"SET", "user:1", "a"}) + Cmd({"GET", "user:1"}) + Cmd({"GET", "user:2"}) +
           Cmd({"MGET", "a", "b", "c"}) + Cmd({"EXISTS", "x", "y"}) + Cmd({"HGETALL", "h"}));
  EXPECT_EQ(core_.pending(), 6u);
  Replies("+OK\r\n$1\r\na\r\n$-1\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n:1\r\n*0\r\n");
  ASSERT_EQ(sink_.seen.size(), 6u);
  EXPECT_EQ(core_.pending(), 0u);
  EXPECT_EQ(sink_.seen[0].command, "set");
  EXPECT_TRUE(sink_.seen[0].lookups.empty());
  EXPECT_TRUE(sink_.seen[0].flags & analytics::kObsWrite);
  EXPECT_EQ(sink_.seen[1].keys, std::vector<std::string>{"user:1"});
  EXPECT_EQ(sink_.seen[1].lookups, std::vector<Lookup>{Lookup::kHit});
  EXPECT_EQ(sink_.seen[2].lookups, std::vector<Lookup>{Lookup::kMiss});
  EXPECT_EQ(sink_.seen[3].lookups, (std::vector<Lookup>{Lookup::kHit, Lookup::kMiss, Lookup::kHit}));
  EXPECT_EQ(sink_.seen[4].lookups, (std::vector<Lookup>{Lookup::kHit, Lookup::kMiss}));
  EXPECT_EQ(sink_.seen[5].lookups, std::vector<Lookup>{Lookup::kMiss});
  EXPECT_EQ(sink_.seen[5].client, "127.0.0.1:5555");
}

TEST_F(SessionTest, ErrorsCarryTheirPrefix) {
  Requests(Cmd({"INCR", "s"}) + Cmd({"NOSUCHCMD"}));
  Replies("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
          "-ERR unknown command 'NOSUCHCMD'\r\n");
  ASSERT_EQ(sink_.seen.size(), 2u);
  EXPECT_TRUE(sink_.seen[0].flags & analytics::kObsError);
  EXPECT_EQ(sink_.seen[0].error_prefix, "WRONGTYPE");
  EXPECT_EQ(sink_.seen[1].command, "other");
}

TEST_F(SessionTest, MultiExecObservesEachQueuedCommand) {
  Requests(Cmd({"MULTI"}) + Cmd({"HGET", "h", "f"}) + Cmd({"HGET", "h", "g"}) +
           Cmd({"INCR", "n"}) + Cmd({"EXEC"}) + Cmd({"GET", "after"}));
  Replies("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$1\r\nv\r\n$-1\r\n:1\r\n$-1\r\n");
  ASSERT_EQ(sink_.seen.size(), 6u);
  EXPECT_EQ(sink_.seen[0].command, "multi");
  EXPECT_EQ(sink_.seen[1].command, "hget");
  EXPECT_TRUE(sink_.seen[1].flags & analytics::kObsInMulti);
  EXPECT_EQ(sink_.seen[1].lookups, std::vector<Lookup>{Lookup::kHit});
  EXPECT_EQ(sink_.seen[2].lookups, std::vector<Lookup>{Lookup::kMiss});
  EXPECT_EQ(sink_.seen[3].command, "incr");
  EXPECT_EQ(sink_.seen[4].command, "exec");
  EXPECT_EQ(sink_.seen[5].lookups, std::vector<Lookup>{Lookup::kMiss});
}

TEST_F(SessionTest, ExecAbortAndWatchFailureRunNothing) {
  Requests(Cmd({"MULTI"}) + Cmd({"GET", "a"}) + Cmd({"BADCMD"}) + Cmd({"EXEC"}) +
           Cmd({"WATCH", "w"}) + Cmd({"MULTI"}) + Cmd({"GET", "b"}) + Cmd({"EXEC"}));
  Replies("+OK\r\n+QUEUED\r\n-ERR unknown command 'BADCMD'\r\n"
          "-EXECABORT Transaction discarded because of previous errors.\r\n"
          "+OK\r\n+OK\r\n+QUEUED\r\n*-1\r\n");
  std::vector<std::string> names;
  for (auto& s : sink_.seen) names.push_back(s.command);
  EXPECT_EQ(names, (std::vector<std::string>{"multi", "other", "exec", "watch", "multi", "exec"}));
  EXPECT_EQ(sink_.seen[2].error_prefix, "EXECABORT");
  EXPECT_EQ(core_.pending(), 0u);
}

TEST_F(SessionTest, Resp2PubSubMode) {
  Requests(Cmd({"SUBSCRIBE", "a", "b"}) + Cmd({"PSUBSCRIBE", "p*"}));
  Replies("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
          "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$2\r\nhi\r\n"
          "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:3\r\n"
          "*4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npx\r\n$1\r\nm\r\n");
  EXPECT_TRUE(core_.subscribed());
  ASSERT_EQ(sink_.seen.size(), 2u);
  Requests(Cmd({"PING"}) + Cmd({"UNSUBSCRIBE"}) + Cmd({"PUNSUBSCRIBE"}));
  Replies("*2\r\n$4\r\npong\r\n$0\r\n\r\n"
          "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n"
          "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$2\r\nhi\r\n"
          "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
          "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n");
  EXPECT_FALSE(core_.subscribed());
  ASSERT_EQ(sink_.seen.size(), 5u);
  EXPECT_EQ(sink_.seen[2].command, "ping");
  EXPECT_EQ(sink_.seen[3].command, "unsubscribe");
  EXPECT_EQ(sink_.seen[4].command, "punsubscribe");
  // Out of subscribed mode an array starting with "message" is an ordinary reply.
  Requests(Cmd({"LRANGE", "l", "0", "-1"}));
  Replies("*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n");
  ASSERT_EQ(sink_.seen.size(), 6u);
  EXPECT_TRUE(core_.observing());
}

TEST_F(SessionTest, Resp3PushFramesInterleave) {
  Requests(Cmd({"HELLO", "3"}));
  Replies("%1\r\n$5\r\nproto\r\n:3\r\n");
  EXPECT_EQ(core_.protocol(), 3);
  Requests(Cmd({"SUBSCRIBE", "c"}) + Cmd({"GET", "k"}) + Cmd({"CLIENT", "TRACKING", "on"}));
  Replies(">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
          ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nx\r\n"
          "_\r\n"
          ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n"
          "+OK\r\n");
  ASSERT_EQ(sink_.seen.size(), 4u);
  EXPECT_EQ(sink_.seen[2].command, "get");
  EXPECT_EQ(sink_.seen[2].lookups, std::vector<Lookup>{Lookup::kMiss});
  EXPECT_EQ(sink_.seen[3].command, "client|tracking");
  EXPECT_TRUE(core_.observing());
}

TEST_F(SessionTest, ClientReplyOffAndSkip) {
  Requests(Cmd({"CLIENT", "REPLY", "SKIP"}) + Cmd({"SET", "a", "1"}) + Cmd({"GET", "a"}) +
           Cmd({"CLIENT", "REPLY", "OFF"}) + Cmd({"SET", "b", "1"}) +
           Cmd({"CLIENT", "REPLY", "ON"}) + Cmd({"GET", "b"}));
  Replies("$1\r\n1\r\n+OK\r\n$1\r\n1\r\n");
  ASSERT_EQ(sink_.seen.size(), 7u);
  // Silenced commands are observed at once (no reply will come); the rest as replies arrive.
  std::vector<std::string> silent, answered;
  for (auto& s : sink_.seen) {
    ((s.flags & analytics::kObsNoReply) ? silent : answered).push_back(s.command);
    if (s.command == "get") EXPECT_EQ(s.lookups, std::vector<Lookup>{Lookup::kHit});
  }
  EXPECT_EQ(silent, (std::vector<std::string>{"client|reply", "set", "client|reply", "set"}));
  EXPECT_EQ(answered, (std::vector<std::string>{"get", "client|reply", "get"}));
  EXPECT_EQ(core_.pending(), 0u);
  EXPECT_TRUE(core_.observing());
}

TEST_F(SessionTest, BlockingCommandsAreFlagged) {
  Requests(Cmd({"BLPOP", "q", "5"}) + Cmd({"XREAD", "COUNT", "1", "STREAMS", "s", "0"}) +
           Cmd({"XREAD", "BLOCK", "100", "STREAMS", "s", "$"}));
  Replies("*-1\r\n*-1\r\n*-1\r\n");
  ASSERT_EQ(sink_.seen.size(), 3u);
  EXPECT_TRUE(sink_.seen[0].flags & analytics::kObsBlocking);
  EXPECT_FALSE(sink_.seen[1].flags & analytics::kObsBlocking);
  EXPECT_TRUE(sink_.seen[2].flags & analytics::kObsBlocking);
  EXPECT_EQ(sink_.seen[2].keys, std::vector<std::string>{"s"});
}

TEST_F(SessionTest, ScriptsCarryArgsAndRawReply) {
  Requests(Cmd({"EVAL", "return {1,'x'}", "1", "bull:q:wait", "a1"}) + Cmd({"MULTI"}) +
           Cmd({"EVALSHA", "abc", "0"}) + Cmd({"EXEC"}));
  std::string reply = "*2\r\n:1\r\n$1\r\nx\r\n";
  Replies(reply + "+OK\r\n+QUEUED\r\n*1\r\n$2\r\nid\r\n");
  ASSERT_EQ(sink_.seen.size(), 4u);
  EXPECT_EQ(sink_.seen[0].args.size(), 5u);
  EXPECT_EQ(sink_.seen[0].keys, std::vector<std::string>{"bull:q:wait"});
  EXPECT_EQ(sink_.seen[0].raw, reply);
  EXPECT_EQ(sink_.seen[2].command, "evalsha");
  EXPECT_EQ(sink_.seen[2].raw, "$2\r\nid\r\n");
}

// A client that shares gets its replies observed from the shared connection's scan
// (OnFramedReply); once it is pinned they come as bytes again. A script whose reply is the
// first to come as bytes (a request too large to share pins its client) still carries it raw.
TEST_F(SessionTest, RawReplyAfterRepliesObservedFromTheSharedScan) {
  Requests(Cmd({"GET", "k"}) + Cmd({"EVAL", "return {1,'x'}", "0"}) + Cmd({"GET", "j"}));
  resp::ReplyScanner shared;
  std::string_view get = "$1\r\nv\r\n";
  resp::ReplyInfo info;
  ASSERT_EQ(shared.Next(&get, &info), resp::ScanStatus::kCommand);
  EXPECT_EQ(core_.RawWanted(), 0u) << "GET's reply is not wanted raw";
  core_.OnFramedReply(info, 2000);
  EXPECT_GT(core_.RawWanted(), 0u) << "the script's reply is";
  const std::string script = "*2\r\n:1\r\n$1\r\nx\r\n";
  Replies(script + "$-1\r\n");
  ASSERT_EQ(sink_.seen.size(), 3u);
  EXPECT_EQ(sink_.seen[0].command, "get");
  EXPECT_EQ(sink_.seen[1].raw, script);
  EXPECT_TRUE(sink_.seen[2].raw.empty()) << "no capture left armed for the next reply";
}

// EXPIRE's error can echo an option unquoted: its arguments come along when options are
// present (and only then), so the error text can be checked against them.
TEST_F(SessionTest, EchoingCommandsCarryArgsOnlyWithOptions) {
  Requests(Cmd({"EXPIRE", "k", "10"}) + Cmd({"EXPIRE", "k", "10", "plumtree"}) +
           Cmd({"SET", "k", "v", "plumtree"}));
  Replies(":1\r\n-ERR Unsupported option plumtree\r\n-ERR syntax error\r\n");
  ASSERT_EQ(sink_.seen.size(), 3u);
  EXPECT_TRUE(sink_.seen[0].args.empty());
  EXPECT_EQ(sink_.seen[1].args, (std::vector<std::string>{"EXPIRE", "k", "10", "plumtree"}));
  EXPECT_EQ(sink_.seen[1].error_prefix, "ERR");
  EXPECT_TRUE(sink_.seen[1].raw.empty()) << "no raw reply capture for echoing commands";
  EXPECT_TRUE(sink_.seen[2].args.empty()) << "SET does not echo its arguments";
}

TEST_F(SessionTest, ClientNameFromSetName) {
  Requests(Cmd({"CLIENT", "SETNAME", "worker-1"}) + Cmd({"GET", "k"}));
  Replies("+OK\r\n$-1\r\n");
  ASSERT_EQ(sink_.seen.size(), 2u);
  EXPECT_EQ(sink_.seen[1].client, "worker-1");
}

TEST_F(SessionTest, MonitorStreamIsForwardedNotObserved) {
  Requests(Cmd({"MONITOR"}));
  Replies("+OK\r\n+1700000000.1 [0 127.0.0.1:1] \"get\" \"k\"\r\n");
  EXPECT_FALSE(core_.observing());
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(SessionTest, UnexpectedReplyStopsObservingOnce) {
  Replies("+OK\r\n+OK\r\n");
  EXPECT_FALSE(core_.observing());
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0], analytics::SessionEvent::kObservationLost);
}

TEST_F(SessionTest, ClientProtocolErrorStopsObserving) {
  Requests("*1\r\nfoo\r\n");
  EXPECT_FALSE(core_.observing());
  ASSERT_EQ(sink_.events.size(), 1u);
  EXPECT_EQ(sink_.events[0], analytics::SessionEvent::kClientProtocolError);
}

TEST_F(SessionTest, LongPipelineKeepsMemoryBounded) {
  // Requests and replies interleaved, never draining fully: the arena must compact.
  std::string req, rep;
  for (int i = 0; i < 20000; ++i) {
    Requests(Cmd({"GET", "key:" + std::to_string(i) + std::string(40, 'k')}));
    if (i > 2) Replies("$-1\r\n");
  }
  Replies("$-1\r\n$-1\r\n$-1\r\n");
  EXPECT_EQ(sink_.seen.size(), 20000u);
  EXPECT_EQ(core_.pending(), 0u);
  EXPECT_TRUE(core_.observing());
}

}  // namespace
}  // namespace respscope::session
