// ReplyRouter: replies cut at their boundaries and handed to their owners in order, whatever
// the reads' split; runs never cross a route boundary; bytes nobody is owed are an error.
#include "proxy/net/reply_router.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace respscope::net {
namespace {

struct Piece {
  int owner;
  std::string bytes;
  uint32_t replies;
};

// Feeds `wire` in chunks of `step` (0: random sizes) and returns the runs delivered.
std::vector<Piece> Route(ReplyRouter<int>& r, std::string_view wire, size_t step, bool* ok,
                         uint32_t seed = 1) {
  std::vector<Piece> out;
  std::mt19937 rng(seed);
  *ok = true;
  size_t pos = 0;
  while (pos < wire.size()) {
    size_t n = step ? step : 1 + rng() % 9;
    n = std::min(n, wire.size() - pos);
    *ok = r.Feed(wire.substr(pos, n), [&](int owner, std::string_view b, uint32_t done) {
      out.push_back({owner, std::string(b), done});
    });
    if (!*ok) break;
    pos += n;
  }
  return out;
}

// Joins the pieces of each route: `routes` is the reply count of each, in order. Fails the
// test when a piece spans two routes or goes to another owner mid-route.
std::vector<Piece> Join(const std::vector<Piece>& pieces, const std::vector<uint32_t>& routes) {
  std::vector<Piece> out;
  size_t route = 0;
  uint32_t done = 0;
  for (const Piece& p : pieces) {
    if (out.size() == route) {
      out.push_back({p.owner, "", 0});
    }
    EXPECT_EQ(out.back().owner, p.owner);
    out.back().bytes += p.bytes;
    out.back().replies += p.replies;
    done += p.replies;
    EXPECT_LE(done, routes[route]) << "a run spans two routes";
    if (done == routes[route]) {
      ++route;
      done = 0;
    }
  }
  return out;
}

TEST(ReplyRouter, RoutesRunsToOwnersInOrderWhateverTheSplit) {
  const std::string wire =
      "+OK\r\n$1\r\nx\r\n"                 // A: 2
      ":1\r\n"                             // B: 1
      "*2\r\n$1\r\na\r\n*1\r\n:5\r\n"      // A: 1 (nested)
      "-ERR no\r\n$-1\r\n";                // C: 2
  for (size_t step : {0, 1, 2, 3, 7, 64}) {
    for (uint32_t seed = 1; seed < (step ? 2u : 40u); ++seed) {
      ReplyRouter<int> r;
      r.Expect(1, 2);
      r.Expect(2, 1);
      r.Expect(1, 1);
      r.Expect(3, 2);
      EXPECT_EQ(r.outstanding(), 6u);
      bool ok = false;
      std::vector<Piece> runs = Join(Route(r, wire, step, &ok, seed), {2, 1, 1, 2});
      ASSERT_TRUE(ok);
      ASSERT_EQ(runs.size(), 4u) << step;
      EXPECT_EQ(runs[0].owner, 1);
      EXPECT_EQ(runs[0].bytes, "+OK\r\n$1\r\nx\r\n");
      EXPECT_EQ(runs[1].owner, 2);
      EXPECT_EQ(runs[1].bytes, ":1\r\n");
      EXPECT_EQ(runs[2].owner, 1);
      EXPECT_EQ(runs[2].bytes, "*2\r\n$1\r\na\r\n*1\r\n:5\r\n");
      EXPECT_EQ(runs[3].owner, 3);
      EXPECT_EQ(runs[3].bytes, "-ERR no\r\n$-1\r\n");
      EXPECT_EQ(r.outstanding(), 0u);
    }
  }
}

TEST(ReplyRouter, CompletedRepliesAreCountedPerPiece) {
  ReplyRouter<int> r;
  r.Expect(1, 3);
  uint32_t total = 0;
  bool ok = r.Feed("+A\r\n$5\r\nhel", [&](int, std::string_view, uint32_t n) { total += n; });
  ASSERT_TRUE(ok);
  EXPECT_EQ(total, 1u);  // "+A" done, the bulk is in progress
  EXPECT_TRUE(r.mid_reply());
  ok = r.Feed("lo\r\n:1\r\n", [&](int, std::string_view, uint32_t n) { total += n; });
  ASSERT_TRUE(ok);
  EXPECT_EQ(total, 3u);
  EXPECT_FALSE(r.mid_reply());
}

TEST(ReplyRouter, MergedRoutesGoTogetherUnmergedOnesApart) {
  ReplyRouter<int> r;
  r.Expect(1, 1);
  r.Expect(1, 1);         // merged: one run of 2
  r.Expect(1, 1, false);  // the owner has something of its own in between
  std::vector<Piece> runs;
  ASSERT_TRUE(r.Feed("+a\r\n+b\r\n+c\r\n", [&](int o, std::string_view b, uint32_t n) {
    runs.push_back({o, std::string(b), n});
  }));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].bytes, "+a\r\n+b\r\n");
  EXPECT_EQ(runs[0].replies, 2u);
  EXPECT_EQ(runs[1].bytes, "+c\r\n");
}

TEST(ReplyRouter, NullOwnerRepliesAreDeliveredToTheNullOwner) {
  ReplyRouter<int> r;
  r.Expect(0, 1);  // respscope's own AUTH
  r.Expect(4, 1);
  std::vector<Piece> runs;
  ASSERT_TRUE(r.Feed("+OK\r\n+PONG\r\n", [&](int o, std::string_view b, uint32_t n) {
    runs.push_back({o, std::string(b), n});
  }));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].owner, 0);
  EXPECT_EQ(runs[1].owner, 4);
}

TEST(ReplyRouter, BytesNobodyIsOwedOrNotRespAreAnError) {
  {
    ReplyRouter<int> r;
    EXPECT_FALSE(r.Feed("+OK\r\n", [](int, std::string_view, uint32_t) {}));
  }
  {
    ReplyRouter<int> r;
    r.Expect(1, 1);
    int calls = 0;
    EXPECT_FALSE(r.Feed("+OK\r\n+EXTRA\r\n", [&](int, std::string_view, uint32_t) { ++calls; }));
    EXPECT_EQ(calls, 1);  // what was owed was delivered first
  }
  {
    ReplyRouter<int> r;
    r.Expect(1, 1);
    EXPECT_FALSE(r.Feed("?what\r\n", [](int, std::string_view, uint32_t) {}));
  }
}

TEST(ReplyRouter, FramesNestingFarDeeperThanTheObservers) {
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  ReplyRouter<int> r;
  r.Expect(1, 2);
  std::string got;
  uint32_t done = 0;
  ASSERT_TRUE(r.Feed(deep + "+OK\r\n", [&](int, std::string_view b, uint32_t n) {
    got += b;
    done += n;
  }));
  EXPECT_EQ(done, 2u);
  EXPECT_EQ(got, deep + "+OK\r\n");
}

TEST(ReplyRouter, ClearForgetsRoutesAndPartialReplies) {
  ReplyRouter<int> r;
  r.Expect(1, 2);
  r.Expect(2, 1);
  ASSERT_TRUE(r.Feed("$10\r\nabc", [](int, std::string_view, uint32_t) {}));
  std::vector<int> owners;
  r.ForEachOwner([&](int o) { owners.push_back(o); });
  EXPECT_EQ(owners, (std::vector<int>{1, 2}));
  r.Clear();
  EXPECT_EQ(r.outstanding(), 0u);
  EXPECT_FALSE(r.mid_reply());
  r.Expect(3, 1);
  int owner = 0;
  ASSERT_TRUE(r.Feed("+OK\r\n", [&](int o, std::string_view, uint32_t) { owner = o; }));
  EXPECT_EQ(owner, 3);
}

TEST(ReplyRouter, RingGrowsPastItsFirstSizeInOrder) {
  ReplyRouter<int> r;
  std::string wire;
  for (int i = 1; i <= 1000; ++i) {
    r.Expect(i, 1);
    wire += ":" + std::to_string(i) + "\r\n";
  }
  int expect = 1;
  bool in_order = true;
  ASSERT_TRUE(r.Feed(wire, [&](int o, std::string_view b, uint32_t) {
    in_order &= o == expect && b == ":" + std::to_string(expect) + "\r\n";
    ++expect;
  }));
  EXPECT_TRUE(in_order);
  EXPECT_EQ(expect, 1001);
}

// The scan that cuts replies also observes them: each owner gets every reply it completes once,
// with what the scanner saw, before the run holding it; a raw capture asked for before a reply
// starts holds exactly that reply, whatever the reads' split.
TEST(ReplyRouter, ObservesEachReplyOnceAndCapturesRawOnRequest) {
  const std::string script = "*2\r\n$3\r\nabc\r\n:7\r\n";
  const std::string wire = "$3\r\nfoo\r\n" + script + "-ERR no\r\n:5\r\n";
  for (size_t step : {size_t{0}, size_t{1}, size_t{3}, wire.size()}) {
    ReplyRouter<int> r;
    r.Expect(1, 2);  // GET, then a script (wants its raw reply)
    r.Expect(2, 2);
    struct Seen {
      int owner;
      char type;
      std::string short_string, error_prefix, raw;
      int64_t integer;
    };
    std::vector<Seen> seen;
    size_t delivered = 0;  // replies completed by the runs delivered so far
    int replies_of_1 = 0;
    std::mt19937 rng(3);
    size_t pos = 0;
    while (pos < wire.size()) {
      size_t n = std::min(step ? step : 1 + rng() % 7, wire.size() - pos);
      ASSERT_TRUE(r.Feed(
          std::string_view(wire).substr(pos, n),
          [&](int, std::string_view, uint32_t done) {
            delivered += done;
            EXPECT_GE(seen.size(), delivered) << "a reply delivered before it was observed";
          },
          [&](int owner) { return owner == 1 && replies_of_1 == 1 ? size_t{1024} : size_t{0}; },
          [&](int owner, const resp::ReplyInfo& info) {
            if (owner == 1) ++replies_of_1;
            seen.push_back({owner, info.type, std::string(info.short_string),
                            std::string(info.error_prefix), std::string(info.raw),
                            info.integer});
          }));
      pos += n;
    }
    ASSERT_EQ(seen.size(), 4u) << "step " << step;
    EXPECT_EQ(seen[0].owner, 1);
    EXPECT_EQ(seen[0].short_string, "foo");
    EXPECT_EQ(seen[0].raw, "");
    EXPECT_EQ(seen[1].type, '*');
    EXPECT_EQ(seen[1].raw, script) << "step " << step;
    EXPECT_EQ(seen[2].owner, 2);
    EXPECT_EQ(seen[2].error_prefix, "ERR");
    EXPECT_EQ(seen[2].raw, "");
    EXPECT_EQ(seen[3].integer, 5);
    EXPECT_EQ(seen[3].raw, "");
    EXPECT_EQ(r.outstanding(), 0u);
    EXPECT_EQ(delivered, 4u);
  }
}

}  // namespace
}  // namespace respscope::net
