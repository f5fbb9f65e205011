#include "proxy/resp/reply_scanner.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace respscope::resp {
namespace {

struct Frame {
  char type = 0;
  bool is_null = false, is_error = false, is_push = false;
  uint64_t elements = 0;
  bool has_integer = false;
  int64_t integer = 0;
  std::string error_prefix, error_text, short_string, first_element, raw;
  std::vector<uint8_t> kinds;
  uint64_t wire = 0;
  bool has_last_integer = false;
  int64_t last_integer = 0;
  std::vector<std::pair<uint32_t, std::string>> element_errors;
  bool operator==(const Frame&) const = default;
};

struct Outcome {
  std::vector<Frame> frames;
  bool error = false;
  size_t consumed = 0;
};

Outcome Scan(const std::string& input, const std::vector<size_t>& cuts, size_t capture = 0) {
  ReplyScanner s;
  Outcome out;
  size_t pos = 0;
  std::vector<size_t> bounds = cuts;
  bounds.push_back(input.size());
  if (capture) s.CaptureNextRaw(capture);
  for (size_t end : bounds) {
    std::string chunk = input.substr(pos, end - pos);
    std::string_view view(chunk);
    for (;;) {
      ReplyInfo info;
      size_t before = view.size();
      ScanStatus st = s.Next(&view, &info);
      out.consumed += before - view.size();
      if (st == ScanStatus::kCommand) {
        Frame f{info.type,         info.is_null,   info.is_error,
                info.is_push,      info.elements,  info.has_integer,
                info.integer,      std::string(info.error_prefix),
                std::string(info.error_text),      std::string(info.short_string),
                std::string(info.first_element),   std::string(info.raw),
                {info.element_kind.begin(), info.element_kind.end()},
                info.wire_bytes,   info.has_last_integer,  info.last_integer,
                {}};
        for (const ElementError& e : info.element_errors) {
          f.element_errors.emplace_back(e.index, e.text);
        }
        out.frames.push_back(f);
        if (capture) s.CaptureNextRaw(capture);
        continue;
      }
      if (st == ScanStatus::kError) {
        out.error = true;
        return out;
      }
      EXPECT_TRUE(view.empty());
      break;
    }
    pos = end;
  }
  return out;
}

Outcome ScanEveryWay(const std::string& input, size_t capture = 0) {
  Outcome whole = Scan(input, {}, capture);
  std::vector<size_t> every;
  for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
  Outcome bytes = Scan(input, every, capture);
  EXPECT_EQ(whole.frames, bytes.frames);
  EXPECT_EQ(whole.error, bytes.error);
  std::mt19937 rng(1);
  for (int round = 0; round < 10 && input.size() > 1; ++round) {
    std::vector<size_t> cuts;
    for (size_t i = 1; i < input.size(); ++i) {
      if (rng() % 5 == 0) cuts.push_back(i);
    }
    Outcome r = Scan(input, cuts, capture);
    EXPECT_EQ(whole.frames, r.frames);
    if (!whole.error) {
      EXPECT_EQ(r.consumed, input.size());
    }
  }
  return whole;
}

TEST(ReplyScanner, Resp2Scalars) {
  std::string in = "+OK\r\n-WRONGTYPE Operation against a key\r\n:42\r\n$3\r\nbar\r\n$-1\r\n$0\r\n\r\n";
  Outcome o = ScanEveryWay(in);
  ASSERT_FALSE(o.error);
  ASSERT_EQ(o.frames.size(), 6u);
  EXPECT_EQ(o.frames[0].short_string, "OK");
  EXPECT_TRUE(o.frames[1].is_error);
  EXPECT_EQ(o.frames[1].error_prefix, "WRONGTYPE");
  EXPECT_EQ(o.frames[1].error_text, "WRONGTYPE Operation against a key");
  EXPECT_TRUE(o.frames[2].has_integer);
  EXPECT_EQ(o.frames[2].integer, 42);
  EXPECT_EQ(o.frames[3].short_string, "bar");
  EXPECT_TRUE(o.frames[4].is_null);
  EXPECT_FALSE(o.frames[5].is_null);
  EXPECT_EQ(o.frames[3].wire, 9u);
  EXPECT_EQ(o.consumed, in.size());
}

TEST(ReplyScanner, MgetElementNullness) {
  Outcome o = ScanEveryWay("*4\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n$-1\r\n");
  ASSERT_EQ(o.frames.size(), 1u);
  EXPECT_EQ(o.frames[0].elements, 4u);
  EXPECT_EQ(o.frames[0].kinds, (std::vector<uint8_t>{kElemValue, kElemNull, kElemValue, kElemNull}));
  EXPECT_EQ(o.frames[0].first_element, "a");
}

TEST(ReplyScanner, NestedAndEmptyAggregates) {
  Outcome o = ScanEveryWay("*3\r\n*2\r\n:1\r\n*0\r\n*0\r\n*-1\r\n*0\r\n*-1\r\n");
  ASSERT_EQ(o.frames.size(), 3u);
  EXPECT_EQ(o.frames[0].kinds, (std::vector<uint8_t>{kElemValue, kElemEmpty, kElemNull}));
  EXPECT_EQ(o.frames[1].elements, 0u);
  EXPECT_TRUE(o.frames[2].is_null);
}

TEST(ReplyScanner, ExecWithErrorsAndRaw) {
  std::string in = "*3\r\n+OK\r\n-ERR value is not an integer\r\n:3\r\n";
  Outcome o = ScanEveryWay(in, 1024);
  ASSERT_EQ(o.frames.size(), 1u);
  EXPECT_EQ(o.frames[0].kinds, (std::vector<uint8_t>{kElemValue, kElemError, kElemValue}));
  EXPECT_EQ(o.frames[0].raw, in);
}

TEST(ReplyScanner, Resp3Types) {
  std::string in =
      "%2\r\n+server\r\n+redis\r\n$5\r\nproto\r\n:3\r\n"  // map
      "~2\r\n+a\r\n+b\r\n"                                // set
      "_\r\n"                                             // null
      ",3.14\r\n,inf\r\n#t\r\n(3492890328409238509324850943850943825024385\r\n"
      "=15\r\ntxt:Some string\r\n"
      "!21\r\nSYNTAX invalid syntax\r\n"
      ">3\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n:1\r\n"
      "|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.19\r\n*2\r\n:2039123\r\n:9543892\r\n";
  Outcome o = ScanEveryWay(in);
  ASSERT_FALSE(o.error);
  ASSERT_EQ(o.frames.size(), 11u);
  EXPECT_EQ(o.frames[0].type, '%');
  EXPECT_EQ(o.frames[0].elements, 4u);
  EXPECT_EQ(o.frames[0].first_element, "server");
  EXPECT_EQ(o.frames[1].type, '~');
  EXPECT_TRUE(o.frames[2].is_null);
  EXPECT_EQ(o.frames[7].short_string, "txt:Some string");
  EXPECT_TRUE(o.frames[8].is_error);
  EXPECT_EQ(o.frames[8].error_prefix, "SYNTAX");
  EXPECT_TRUE(o.frames[9].is_push);
  EXPECT_EQ(o.frames[9].first_element, "invalidate");
  // The attribute is folded into the array that follows it.
  EXPECT_EQ(o.frames[10].type, '*');
  EXPECT_EQ(o.frames[10].elements, 2u);
  EXPECT_EQ(o.frames[10].kinds.size(), 2u);
}

TEST(ReplyScanner, LargeBulkCountedNotBuffered) {
  ReplyScanner s;
  std::string head = "$" + std::to_string(64 << 20) + "\r\n";
  std::string_view v(head);
  ReplyInfo info;
  ASSERT_EQ(s.Next(&v, &info), ScanStatus::kNeedMore);
  std::string chunk(1 << 16, 'x');
  for (int i = 0; i < 1024; ++i) {
    std::string_view c(chunk);
    ASSERT_EQ(s.Next(&c, &info), ScanStatus::kNeedMore);
  }
  EXPECT_LT(s.held_bytes(), 4096u);
  std::string tail = "\r\n";
  std::string_view t(tail);
  ASSERT_EQ(s.Next(&t, &info), ScanStatus::kCommand);
  EXPECT_EQ(info.wire_bytes, head.size() + (64u << 20) + 2);
}

TEST(ReplyScanner, RawCaptureTruncates) {
  Outcome o = Scan("$100\r\n" + std::string(100, 'a') + "\r\n", {}, 50);
  ASSERT_EQ(o.frames.size(), 1u);
  EXPECT_TRUE(o.frames[0].raw.empty());
}

TEST(ReplyScanner, MalformedNeverCrashes) {
  for (const char* bad : {"?\r\n", "$-2\r\n", "*-2\r\n", ":abc\r\n", "$?\r\n", "*?\r\n",
                          "$99999999999999999999999\r\n", "_x\r\n", "%-1x\r\n"}) {
    Outcome o = Scan(bad, {});
    EXPECT_TRUE(o.error) << bad;
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  EXPECT_TRUE(Scan(deep + ":1\r\n", {}).error);
}

// Whole scalar frames are reported without the state machine; split ones go through it.
// Both must say the same, odd inputs included.
TEST(ReplyScanner, WholeScalarFramesMatchTheStateMachine) {
  const std::string long_line(300, 'x');
  const std::string body64(64, 'b'), body65(65, 'b');
  for (const std::string& in : std::vector<std::string>{
           "+OK\r\n", "+\r\n", "+OK\rX", "+" + long_line + "\r\n", "-ERR wrong\r\n",
           "-WRONGTYPE Operation against a key\r\n", "-" + long_line + "\r\n", ":0\r\n",
           ":-42\r\n", ":9223372036854775807\r\n", "$-1\r\n", "$0\r\n\r\n", "$3\r\nfoo\r\n",
           "$64\r\n" + body64 + "\r\n", "$65\r\n" + body65 + "\r\n", "$3\r\nfooXY",
           "+OK\r\n:1\r\n$-1\r\n$2\r\nhi\r\n-ERR x\r\n*1\r\n$1\r\na\r\n"}) {
    Outcome o = ScanEveryWay(in);
    EXPECT_FALSE(o.error) << in;
    EXPECT_FALSE(o.frames.empty()) << in;
  }
  for (const std::string& bad : std::vector<std::string>{
           ":01\r\n", ":\r\n", ":x\r\n", "$-2\r\n", "$01\r\nx\r\n", "$?\r\n",
           ":99999999999999999999\r\n", "$" + long_line + "\r\n"}) {
    Outcome o = ScanEveryWay(bad);
    EXPECT_TRUE(o.error) << bad;
  }
  Outcome mixed = Scan("$3\r\nfoo\r\n:7\r\n-ERR no\r\n", {});
  ASSERT_EQ(mixed.frames.size(), 3u);
  EXPECT_EQ(mixed.frames[0].short_string, "foo");
  EXPECT_EQ(mixed.frames[0].wire, 9u);
  EXPECT_EQ(mixed.frames[1].integer, 7);
  EXPECT_TRUE(mixed.frames[1].has_integer);
  EXPECT_EQ(mixed.frames[2].error_prefix, "ERR");
  EXPECT_EQ(mixed.frames[2].error_text, "ERR no");
}

// Whole arrays of bulk strings, integers and simple strings are reported without the state
// machine too; everything else in an array sends it to the state machine. Both must agree.
TEST(ReplyScanner, WholeArraysMatchTheStateMachine) {
  const std::string body64(64, 'b'), body65(65, 'b'), long_line(300, 'x');
  std::string lrange = "*100\r\n";
  for (int i = 0; i < 100; ++i) lrange += "$3\r\nxxx\r\n";
  std::string many = "*5000\r\n";  // more elements than ReplyLimits::kMaxTrackedElements
  for (int i = 0; i < 5000; ++i) many += i % 3 ? ":1\r\n" : "$-1\r\n";
  for (const std::string& in : std::vector<std::string>{
           lrange, many, "*1\r\n$3\r\nfoo\r\n", "*3\r\n$1\r\na\r\n$-1\r\n$0\r\n\r\n",
           "*2\r\n$64\r\n" + body64 + "\r\n$1\r\nz\r\n",
           "*2\r\n$65\r\n" + body65 + "\r\n$1\r\nz\r\n",
           "*3\r\n+subscribe\r\n$2\r\nch\r\n:1\r\n", "*2\r\n:0\r\n:-7\r\n",
           "*2\r\n+\r\n+\r\n", "*1\r\n+" + long_line + "\r\n", "*2\r\n:5\r\n+OK\r\n",
           "*2\r\n$-1\r\n:3\r\n",
           // the state machine's: nested, errors, RESP3 elements, null and empty arrays
           "*2\r\n*1\r\n:1\r\n$1\r\na\r\n", "*2\r\n+OK\r\n-ERR x\r\n", "*1\r\n_\r\n",
           "*2\r\n,1.5\r\n#t\r\n", "*-1\r\n", "*0\r\n", "*1\r\n%1\r\n:1\r\n:2\r\n",
           // a CR not followed by LF, a body without its CRLF (skipped unread, as Redis does)
           "*1\r\n$3\r\nfooXY", "*2\r\n$1\r\na\rX:1\r\n", lrange + "+OK\r\n" + many}) {
    Outcome o = ScanEveryWay(in);
    EXPECT_FALSE(o.error) << in.substr(0, 40);
    EXPECT_FALSE(o.frames.empty()) << in.substr(0, 40);
  }
  for (const std::string& bad : std::vector<std::string>{
           "*1\r\n:01\r\n", "*1\r\n$-2\r\n", "*1\r\n$?\r\n", "*?\r\n", "*01\r\n:1\r\n",
           "*1\r\nX\r\n", "*1\r\n$" + long_line + "\r\n", "*1\r\n:" + long_line + "\r\n",
           "*1\r\n+a\rb\r\n" /* the byte after a CR is skipped: then a CR as a type byte */}) {
    Outcome o = ScanEveryWay(bad);
    EXPECT_TRUE(o.error) << bad.substr(0, 40);
  }
  Outcome o = Scan("*3\r\n$3\r\nfoo\r\n$-1\r\n:0\r\n:42\r\n", {});
  ASSERT_EQ(o.frames.size(), 2u);
  EXPECT_EQ(o.frames[0].type, '*');
  EXPECT_EQ(o.frames[0].elements, 3u);
  EXPECT_EQ(o.frames[0].first_element, "foo");
  EXPECT_EQ(o.frames[0].kinds, (std::vector<uint8_t>{kElemValue, kElemNull, kElemZero}));
  EXPECT_TRUE(o.frames[0].has_last_integer);
  EXPECT_EQ(o.frames[0].last_integer, 0);
  EXPECT_EQ(o.frames[0].wire, 22u);
  EXPECT_EQ(o.frames[1].integer, 42);
  Outcome big = Scan(many, {});
  ASSERT_EQ(big.frames.size(), 1u);
  EXPECT_EQ(big.frames[0].elements, 5000u);
  EXPECT_EQ(big.frames[0].kinds.size(), ReplyLimits::kMaxTrackedElements);
}

// Random RESP3 values generated and scanned back.
std::string RandomValue(std::mt19937& rng, int depth, std::vector<uint8_t>* kinds) {
  int t = rng() % (depth > 4 ? 9 : 14);
  auto word = [&] {
    std::string w(rng() % 20, 'w');
    for (char& c : w) c = static_cast<char>('a' + rng() % 26);
    return w;
  };
  uint8_t kind = kElemValue;
  std::string s;
  switch (t) {
    case 0: s = "+" + word() + "\r\n"; break;
    case 1: s = "-ERR " + word() + "\r\n"; kind = kElemError; break;
    case 2: { int v = static_cast<int>(rng() % 5); s = ":" + std::to_string(v) + "\r\n"; if (!v) kind = kElemZero; break; }
    case 3: { std::string w(rng() % 300, 'x'); for (char& c : w) c = static_cast<char>(rng()); s = "$" + std::to_string(w.size()) + "\r\n" + w + "\r\n"; break; }
    case 4: s = "$-1\r\n"; kind = kElemNull; break;
    case 5: s = "_\r\n"; kind = kElemNull; break;
    case 6: s = ",1.5e10\r\n"; break;
    case 7: s = "#f\r\n"; break;
    case 8: s = "(12345678901234567890123\r\n"; break;
    default: {
      const char types[] = {'*', '%', '~', '|', '*'};
      char ty = types[rng() % 5];
      int n = rng() % 4;
      int elems = (ty == '%' || ty == '|') ? 2 * n : n;
      std::string body;
      for (int i = 0; i < elems; ++i) body += RandomValue(rng, depth + 1, nullptr);
      if (ty == '|') {
        // attribute followed by the real value
        return std::string("|") + std::to_string(n) + "\r\n" + body + RandomValue(rng, depth + 1, kinds);
      }
      s = std::string(1, ty) + std::to_string(n) + "\r\n" + body;
      if (n == 0) kind = kElemEmpty;
    }
  }
  if (kinds) kinds->push_back(kind);
  return s;
}

TEST(ReplyScanner, RandomResp3RoundTrip) {
  std::mt19937 rng(99);
  std::string in;
  std::vector<uint8_t> expected_kinds;  // element kinds of a top-level array we build
  int frames = 0;
  for (int i = 0; i < 200; ++i) {
    in += RandomValue(rng, 0, nullptr);
    ++frames;
  }
  std::string arr = "*8\r\n";
  for (int i = 0; i < 8; ++i) arr += RandomValue(rng, 1, &expected_kinds);
  in += arr;
  ++frames;
  Outcome plain = ScanEveryWay(in);  // no capture: whole scalar frames take the short path
  ASSERT_FALSE(plain.error);
  ASSERT_EQ(plain.frames.size(), static_cast<size_t>(frames));
  Outcome o = ScanEveryWay(in, 1 << 20);
  ASSERT_FALSE(o.error);
  ASSERT_EQ(o.frames.size(), static_cast<size_t>(frames));
  EXPECT_EQ(o.frames.back().kinds, expected_kinds);
  std::string joined;
  for (const Frame& f : o.frames) joined += f.raw;
  EXPECT_EQ(joined, in);
}

}  // namespace
}  // namespace respscope::resp
