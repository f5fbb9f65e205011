#include "common/descriptors.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace respscope::common {
namespace {

TEST(PlanDescriptors, FitsWhenTheLimitIsHigh) {
  DescriptorBudget b = PlanDescriptors(1048576, 10000, 256, 2);
  EXPECT_EQ(b.max_clients, 10000u);
  EXPECT_FALSE(b.clients_clamped);
  EXPECT_TRUE(b.warnings.empty());
  EXPECT_EQ(b.reserved, kBaseDescriptors + 2 * kDescriptorsPerThread + 256 + 1);
}

TEST(PlanDescriptors, ClampsClientsToWhatIsLeftAfterTheReserve) {
  // 1024 - (64 + 16 + 256 + 1) = 687 left, two per client.
  DescriptorBudget b = PlanDescriptors(1024, 10000, 256, 2);
  EXPECT_TRUE(b.clients_clamped);
  EXPECT_EQ(b.max_clients, 343u);
  ASSERT_EQ(b.warnings.size(), 1u);
  EXPECT_NE(b.warnings[0].find("limits.max_clients 10000"), std::string::npos) << b.warnings[0];
  EXPECT_NE(b.warnings[0].find("at most 343 clients"), std::string::npos) << b.warnings[0];
}

TEST(PlanDescriptors, WarnsWhenTheAdminCapAloneExceedsTheLimit) {
  DescriptorBudget b = PlanDescriptors(300, 10, 100000, 1);
  EXPECT_EQ(b.max_clients, 1u);  // never zero: the listener still answers one client
  ASSERT_EQ(b.warnings.size(), 2u);
  EXPECT_NE(b.warnings[0].find("admin.max_connections 100000"), std::string::npos);
}

TEST(LogThrottle, OneLinePerIntervalAndCountsTheRest) {
  LogThrottle t(std::chrono::seconds(10));
  auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(t.Allow(t0), 0u);
  EXPECT_FALSE(t.Allow(t0 + std::chrono::seconds(1)));
  EXPECT_FALSE(t.Allow(t0 + std::chrono::seconds(9)));
  EXPECT_EQ(t.Allow(t0 + std::chrono::seconds(10)), 2u);
  EXPECT_FALSE(t.Allow(t0 + std::chrono::seconds(11)));
}

TEST(IsOutOfDescriptors, EmfileAndEnfileOnly) {
  EXPECT_TRUE(IsOutOfDescriptors(EMFILE));
  EXPECT_TRUE(IsOutOfDescriptors(ENFILE));
  EXPECT_FALSE(IsOutOfDescriptors(EAGAIN));
  EXPECT_FALSE(IsOutOfDescriptors(ECONNABORTED));
}

// At the descriptor limit accept() fails with EMFILE and leaves the connections pending; Shed()
// frees the spare, closes every pending connection and takes the spare back.
TEST(SpareDescriptor, ShedsPendingConnectionsAtTheLimit) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::vector<int> clients;
  for (int i = 0; i < 3; ++i) {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    clients.push_back(c);
  }

  SpareDescriptor spare;
  ASSERT_TRUE(spare.held());
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(clients.back() + 64);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> filler;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) filler.push_back(fd);
  ASSERT_EQ(errno, EMFILE);

  EXPECT_LT(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC), 0);
  EXPECT_EQ(errno, EMFILE);
  EXPECT_EQ(spare.Shed(listener, 10), 3u);
  EXPECT_TRUE(spare.held());
  EXPECT_EQ(spare.Shed(listener, 10), 0u);  // nothing pending: returns at once

  for (int fd : filler) ::close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  // The shed clients see their connection closed.
  for (int c : clients) {
    char byte;
    EXPECT_EQ(::recv(c, &byte, 1, 0), 0);
    ::close(c);
  }
  ::close(listener);
}

}  // namespace
}  // namespace respscope::common
