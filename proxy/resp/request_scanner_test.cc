#include "proxy/resp/request_scanner.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace respscope::resp {
namespace {

struct Cmd {
  std::vector<std::string> args;  // captured text, "<len:N>" when not captured
  uint64_t argc = 0;
  uint64_t wire = 0;
  bool operator==(const Cmd&) const = default;
};

void PrintTo(const Cmd& c, std::ostream* os) {
  *os << "{argc=" << c.argc << " wire=" << c.wire;
  for (const auto& a : c.args) *os << " [" << a << "]";
  *os << "}";
}

struct Outcome {
  std::vector<Cmd> cmds;
  bool error = false;
  std::string message;
  size_t consumed = 0;
};

Outcome Scan(const std::string& input, const std::vector<size_t>& cuts,
             RequestScanner* scanner = nullptr) {
  RequestScanner local;
  RequestScanner& s = scanner ? *scanner : local;
  Outcome out;
  size_t pos = 0;
  std::vector<size_t> bounds = cuts;
  bounds.push_back(input.size());
  for (size_t end : bounds) {
    // Each chunk is copied so that views into an old chunk would point at garbage.
    std::string chunk = input.substr(pos, end - pos);
    std::string_view view(chunk);
    for (;;) {
      Request req;
      size_t before = view.size();
      ScanStatus st = s.Next(&view, &req);
      out.consumed += before - view.size();
      if (st == ScanStatus::kCommand) {
        Cmd c;
        c.argc = req.argc;
        c.wire = req.wire_bytes;
        for (size_t i = 0; i < req.args.size(); ++i) {
          // An argument not held whole (a value streamed through) shows as its length.
          c.args.push_back(req.args[i].size() == req.lengths[i]
                               ? std::string(req.args[i])
                               : "<len:" + std::to_string(req.lengths[i]) + ">");
        }
        out.cmds.push_back(std::move(c));
        continue;
      }
      if (st == ScanStatus::kError) {
        out.error = true;
        out.message = s.error();
        return out;
      }
      EXPECT_TRUE(view.empty());
      break;
    }
    pos = end;
  }
  return out;
}

// Scans whole, byte by byte and at random split points; all three must agree.
Outcome ScanEveryWay(const std::string& input, CapturePolicy policy = nullptr) {
  auto scan = [&](const std::vector<size_t>& cuts) {
    RequestScanner s;
    if (policy) s.SetCapturePolicy(policy, nullptr);
    return Scan(input, cuts, &s);
  };
  Outcome whole = scan({});
  std::vector<size_t> every;
  for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
  Outcome bytes = scan(every);
  EXPECT_EQ(whole.cmds, bytes.cmds) << "byte-at-a-time differs";
  EXPECT_EQ(whole.error, bytes.error);
  EXPECT_EQ(whole.message, bytes.message);
  std::mt19937 rng(42);
  for (int round = 0; round < 20 && input.size() > 1; ++round) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i) {
      if (rng() % 7 == 0) cuts.push_back(i);
    }
    Outcome r = scan(cuts);
    EXPECT_EQ(whole.cmds, r.cmds) << "random split differs, round " << round;
    EXPECT_EQ(whole.error, r.error);
    if (!whole.error) {
      EXPECT_EQ(r.consumed, input.size());
    }
  }
  return whole;
}

std::string Multibulk(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

TEST(RequestScanner, PipelinedMultibulk) {
  std::string in = Multibulk({"GET", "user:1"}) + Multibulk({"SET", "k", "v"}) +
                   Multibulk({"MGET", "a", "b", "c"});
  Outcome o = ScanEveryWay(in);
  ASSERT_FALSE(o.error) << o.message;
  ASSERT_EQ(o.cmds.size(), 3u);
  EXPECT_EQ(o.cmds[0].args, (std::vector<std::string>{"GET", "user:1"}));
  EXPECT_EQ(o.cmds[0].wire, Multibulk({"GET", "user:1"}).size());
  EXPECT_EQ(o.cmds[2].argc, 4u);
  EXPECT_EQ(o.consumed, in.size());
}

TEST(RequestScanner, EmptyAndBinaryArguments) {
  std::string bin("a\r\nb\0c", 6);
  Outcome o = ScanEveryWay(Multibulk({"SET", "", bin}));
  ASSERT_EQ(o.cmds.size(), 1u);
  EXPECT_EQ(o.cmds[0].args[1], "");
  EXPECT_EQ(o.cmds[0].args[2], bin);
}

TEST(RequestScanner, EmptyMultibulkIsSkippedLikeRedis) {
  Outcome o = ScanEveryWay("*0\r\n*-1\r\n" + Multibulk({"PING"}));
  ASSERT_FALSE(o.error);
  ASSERT_EQ(o.cmds.size(), 1u);
  EXPECT_EQ(o.cmds[0].args[0], "PING");
}

TEST(RequestScanner, InlineCommands) {
  Outcome o = ScanEveryWay(
      "PING\r\nset k \"a b\\x41\\n\"\n\r\n  \r\nget 'it\\'s'\r\n" + Multibulk({"GET", "x"}));
  ASSERT_FALSE(o.error) << o.message;
  ASSERT_EQ(o.cmds.size(), 4u);
  EXPECT_EQ(o.cmds[0].args, (std::vector<std::string>{"PING"}));
  EXPECT_EQ(o.cmds[1].args, (std::vector<std::string>{"set", "k", "a bA\n"}));
  EXPECT_EQ(o.cmds[2].args, (std::vector<std::string>{"get", "it's"}));
  EXPECT_EQ(o.cmds[3].args, (std::vector<std::string>{"GET", "x"}));
}

TEST(RequestScanner, LargeArgumentIsCountedNotBuffered) {
  RequestScanner s;
  std::string head = "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(64 << 20) + "\r\n";
  std::string_view v(head);
  Request req;
  ASSERT_EQ(s.Next(&v, &req), ScanStatus::kNeedMore);
  std::string chunk(1 << 16, 'x');
  for (int i = 0; i < 1024; ++i) {
    std::string_view c(chunk);
    ASSERT_EQ(s.Next(&c, &req), ScanStatus::kNeedMore);
    ASSERT_LT(s.held_bytes(), 8192u);
  }
  std::string tail = "\r\n";
  std::string_view t(tail);
  ASSERT_EQ(s.Next(&t, &req), ScanStatus::kCommand);
  EXPECT_EQ(req.args[1], "big");
  EXPECT_TRUE(req.args[2].empty());
  EXPECT_EQ(req.lengths[2], uint64_t{64} << 20);
  EXPECT_EQ(req.wire_bytes, head.size() + (64u << 20) + 2);
}

size_t ScriptPolicy(void*, std::string_view name) {
  return (name == "EVAL" || name == "eval") ? 1 << 20 : 16;
}

TEST(RequestScanner, CapturePolicyPerCommand) {
  std::string body(5000, 'b');
  std::string in = Multibulk({"EVAL", body, "0"}) + Multibulk({"SET", "k", std::string(100, 'v')});
  for (size_t cut : {size_t{0}, size_t{30}, size_t{2000}, in.size() - 5}) {
    RequestScanner s;
    s.SetCapturePolicy(&ScriptPolicy, nullptr);
    Outcome o = Scan(in, cut ? std::vector<size_t>{cut} : std::vector<size_t>{}, &s);
    ASSERT_EQ(o.cmds.size(), 2u);
    EXPECT_EQ(o.cmds[0].args[1], body) << "cut " << cut;
    EXPECT_EQ(o.cmds[1].args[2], "<len:100>") << "cut " << cut;
  }
}

// Whole commands are scanned without the state machine; split ones go through it. Both must
// say the same, odd inputs and capture policies included.
TEST(RequestScanner, WholeCommandsMatchTheStateMachine) {
  const std::string body(5000, 'b');
  const std::string long_name(1500, 'N');
  for (const std::string& in : std::vector<std::string>{
           Multibulk({"GET", "k"}), Multibulk({"PING"}) + "*0\r\n" + Multibulk({"GET", ""}),
           "*1\r\n$4\r\nPINGXY", "*1\rX$4\rXPING\r\n", Multibulk({"EVAL", body, "0"}),
           Multibulk({"SET", "k", std::string(2000, 'v')}), Multibulk({long_name, "k"}),
           Multibulk({"eval", "return 1", "0"}) + Multibulk({"GET", "k"}).substr(0, 10)}) {
    Outcome o = ScanEveryWay(in, &ScriptPolicy);
    EXPECT_FALSE(o.error) << in;
    EXPECT_FALSE(o.cmds.empty()) << in;
    EXPECT_EQ(ScanEveryWay(in).cmds, Scan(in, {}).cmds);
  }
  RequestScanner s;
  s.SetCapturePolicy(&ScriptPolicy, nullptr);
  Outcome o = Scan(Multibulk({"EVAL", body, "0"}) + Multibulk({"SET", "k", body}), {}, &s);
  ASSERT_EQ(o.cmds.size(), 2u);
  EXPECT_EQ(o.cmds[0].args[1], body);
  EXPECT_EQ(o.cmds[0].wire, Multibulk({"EVAL", body, "0"}).size());
  EXPECT_EQ(o.cmds[1].args[2], "<len:5000>");
}

TEST(RequestScanner, ManyArgumentsBeyondTracking) {
  std::vector<std::string> args{"DEL"};
  for (int i = 0; i < 5000; ++i) args.push_back("k" + std::to_string(i));
  Outcome o = Scan(Multibulk(args), {});
  ASSERT_EQ(o.cmds.size(), 1u);
  EXPECT_EQ(o.cmds[0].argc, 5001u);
  EXPECT_EQ(o.cmds[0].args.size(), RequestLimits::kMaxTrackedArgs);
}

struct Negative {
  const char* input;
  const char* error;
};

class RequestScannerNegative : public testing::TestWithParam<Negative> {};

TEST_P(RequestScannerNegative, RejectsLikeRedis) {
  Outcome o = ScanEveryWay(GetParam().input);
  EXPECT_TRUE(o.error);
  EXPECT_EQ(o.message, GetParam().error);
}

// The cases of Redis's tests/unit/protocol.tcl, plus overflow in every length field.
INSTANTIATE_TEST_SUITE_P(
    Vectors, RequestScannerNegative,
    testing::Values(
        Negative{"*3000000000\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*20000000000000000000\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*abc\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*01\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*+1\r\n", "Protocol error: invalid multibulk length"},
        Negative{"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"},
        Negative{"*1\r\n$-10\r\n", "Protocol error: invalid bulk length"},
        Negative{"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"},
        Negative{"*1\r\n$2000000000\r\n", "Protocol error: invalid bulk length"},
        Negative{"*1\r\n$99999999999999999999\r\n", "Protocol error: invalid bulk length"},
        Negative{"*1\r\n$\r\n", "Protocol error: invalid bulk length"},
        Negative{"*1\r\n$1x\r\n", "Protocol error: invalid bulk length"},
        Negative{"set a \"b\r\n", "Protocol error: unbalanced quotes in request"},
        Negative{"set a \"b\"c\r\n", "Protocol error: unbalanced quotes in request"},
        Negative{"set a 'b\r\n", "Protocol error: unbalanced quotes in request"}));

TEST(RequestScanner, TooBigInline) {
  std::string in(70000, 'a');
  Outcome o = ScanEveryWay(in);
  EXPECT_TRUE(o.error);
  EXPECT_EQ(o.message, "Protocol error: too big inline request");
}

TEST(RequestScanner, TooBigCountLine) {
  std::string in = "*" + std::string(70000, '1');
  Outcome o = Scan(in, {});
  EXPECT_TRUE(o.error);
  EXPECT_EQ(o.message, "Protocol error: too big mbulk count string");
}

TEST(RequestScanner, RandomCommandsRoundTrip) {
  std::mt19937 rng(7);
  std::string in;
  std::vector<std::vector<std::string>> sent;
  for (int i = 0; i < 300; ++i) {
    std::vector<std::string> args{"CMD" + std::to_string(i)};
    int n = rng() % 6;
    for (int j = 0; j < n; ++j) {
      std::string a(rng() % 40, 'a');
      for (char& c : a) c = static_cast<char>(rng());
      args.push_back(a);
    }
    sent.push_back(args);
    in += Multibulk(args);
  }
  Outcome o = ScanEveryWay(in);
  ASSERT_EQ(o.cmds.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_EQ(o.cmds[i].args, sent[i]);
}

}  // namespace
}  // namespace respscope::resp
