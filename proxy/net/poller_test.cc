#include "proxy/net/poller.h"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace respscope::net {
namespace {

struct Recorder : Pollable {
  std::vector<std::pair<uint32_t, uint32_t>> calls;  // (events, tag)
  std::function<void()> on_call;
  void OnPoll(uint32_t events, uint32_t tag) override {
    calls.emplace_back(events, tag);
    if (on_call) on_call();
  }
};

struct Pair {
  int fd[2];
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd), 0); }
  ~Pair() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
};

void RunFor(boost::asio::io_context& io, int ms) {
  io.restart();
  io.run_for(std::chrono::milliseconds(ms));
}

TEST(Poller, ReportsReadinessOncePerEdge) {
  boost::asio::io_context io;
  Poller poller(io);
  poller.Start();
  Pair p;
  auto r = std::make_shared<Recorder>();
  uint64_t token = poller.Add(p.fd[0], r, 7);
  ASSERT_NE(token, 0u);
  RunFor(io, 50);
  // Registration reports the current state: writable, nothing to read.
  ASSERT_EQ(r->calls.size(), 1u);
  EXPECT_TRUE(r->calls[0].first & EPOLLOUT);
  EXPECT_FALSE(r->calls[0].first & EPOLLIN);
  EXPECT_EQ(r->calls[0].second, 7u);
  // Data arrives: one event; left unread, no further event (edge-triggered).
  ASSERT_EQ(::write(p.fd[1], "abc", 3), 3);
  RunFor(io, 50);
  ASSERT_EQ(r->calls.size(), 2u);
  EXPECT_TRUE(r->calls[1].first & EPOLLIN);
  RunFor(io, 50);
  EXPECT_EQ(r->calls.size(), 2u);
  // More data: a new edge even though the first bytes are still unread.
  ASSERT_EQ(::write(p.fd[1], "d", 1), 1);
  RunFor(io, 50);
  EXPECT_EQ(r->calls.size(), 3u);
  // The peer shuts down: EPOLLRDHUP.
  ::shutdown(p.fd[1], SHUT_WR);
  RunFor(io, 50);
  ASSERT_EQ(r->calls.size(), 4u);
  EXPECT_TRUE(r->calls[3].first & EPOLLRDHUP);
  poller.Remove(token, p.fd[0]);
  EXPECT_EQ(poller.size(), 0u);
  poller.Stop();
}

TEST(Poller, RemovedOwnersGetNoEventsAndMayRemoveThemselves) {
  boost::asio::io_context io;
  Poller poller(io);
  poller.Start();
  Pair a, b;
  auto ra = std::make_shared<Recorder>(), rb = std::make_shared<Recorder>();
  uint64_t ta = poller.Add(a.fd[0], ra, 1);
  uint64_t tb = poller.Add(b.fd[0], rb, 2);
  RunFor(io, 50);
  ra->calls.clear();
  rb->calls.clear();
  // Both become readable in one batch; the first to be called removes the other and itself
  // (as a connection closing both its sockets does): the other's event is dropped, and the
  // owner being called stays alive until its call returns.
  std::weak_ptr<Recorder> weak_a = ra, weak_b = rb;
  auto remove_both = [&] {
    poller.Remove(ta, a.fd[0]);
    poller.Remove(tb, b.fd[0]);
  };
  ra->on_call = remove_both;
  rb->on_call = remove_both;
  ra.reset();
  rb.reset();
  ASSERT_EQ(::write(a.fd[1], "x", 1), 1);
  ASSERT_EQ(::write(b.fd[1], "y", 1), 1);
  RunFor(io, 50);
  EXPECT_TRUE(weak_a.expired());
  EXPECT_TRUE(weak_b.expired());
  EXPECT_EQ(poller.size(), 0u);
  // A slot reused for a new descriptor does not receive the old registration's events.
  Pair c;
  auto rc = std::make_shared<Recorder>();
  uint64_t tc = poller.Add(c.fd[0], rc, 3);
  EXPECT_NE(tc, ta);
  EXPECT_NE(tc, tb);
  RunFor(io, 50);
  ASSERT_EQ(rc->calls.size(), 1u);
  EXPECT_EQ(rc->calls[0].second, 3u);
  poller.Stop();
}

TEST(Poller, AddFailsCleanlyOnABadDescriptor) {
  boost::asio::io_context io;
  Poller poller(io);
  auto r = std::make_shared<Recorder>();
  EXPECT_EQ(poller.Add(-1, r, 0), 0u);
  EXPECT_EQ(poller.size(), 0u);
  EXPECT_EQ(r.use_count(), 1);
}

}  // namespace
}  // namespace respscope::net
