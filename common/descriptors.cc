#include "common/descriptors.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace respscope::common {

namespace {

// /proc/sys/fs/nr_open: the most RLIMIT_NOFILE may be set to (1048576 by default).
uint64_t KernelNrOpen() {
  std::ifstream in("/proc/sys/fs/nr_open");
  uint64_t v = 0;
  if (in >> v && v > 0) return v;
  return 1024 * 1024;
}

}  // namespace

NoFileLimit RaiseNoFileLimit() {
  NoFileLimit out;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    out.error = std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    return out;
  }
  out.soft_before = out.soft = rl.rlim_cur;
  out.hard = rl.rlim_max;
  rlim_t target = rl.rlim_max;
  if (target == RLIM_INFINITY) target = KernelNrOpen();
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < target) {
    rlimit raised{target, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      out.soft = target;
    } else {
      out.error = std::string("setrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
    }
  }
  return out;
}

DescriptorBudget PlanDescriptors(uint64_t limit, size_t max_clients, size_t admin_max_connections,
                                 int threads) {
  DescriptorBudget b;
  b.limit = limit;
  b.reserved = kBaseDescriptors +
               kDescriptorsPerThread * static_cast<uint64_t>(threads < 1 ? 1 : threads) +
               admin_max_connections + 1;
  uint64_t left = limit > b.reserved ? limit - b.reserved : 0;
  uint64_t fit = left / kDescriptorsPerClient;
  b.max_clients = max_clients;
  std::string limit_text = "the descriptor limit (RLIMIT_NOFILE) is " + std::to_string(limit);
  if (admin_max_connections + kBaseDescriptors >= limit) {
    b.warnings.push_back(limit_text + ", too low for admin.max_connections " +
                         std::to_string(admin_max_connections) +
                         ": a flood of admin connections can exhaust it; lower "
                         "admin.max_connections or raise the limit (ulimit -n, LimitNOFILE=)");
  }
  if (max_clients > fit) {
    b.max_clients = static_cast<size_t>(fit == 0 ? 1 : fit);
    b.clients_clamped = true;
    b.warnings.push_back(
        limit_text + ": limits.max_clients " + std::to_string(max_clients) + " needs " +
        std::to_string(kDescriptorsPerClient * max_clients) + " (" +
        std::to_string(kDescriptorsPerClient) + " per client) besides " +
        std::to_string(b.reserved) + " kept for admin.max_connections " +
        std::to_string(admin_max_connections) + " and respscope itself; at most " +
        std::to_string(b.max_clients) +
        " clients will be accepted. Raise the limit (ulimit -n, systemd LimitNOFILE=, "
        "Docker --ulimit nofile=) or lower limits.max_clients");
  }
  return b;
}

bool IsOutOfDescriptors(int error_value) { return error_value == EMFILE || error_value == ENFILE; }

SpareDescriptor::SpareDescriptor() { Take(); }

SpareDescriptor::~SpareDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

void SpareDescriptor::Take() {
  if (fd_ < 0) fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

size_t SpareDescriptor::Shed(int listen_fd, size_t max) {
  if (fd_ < 0) {
    Take();
    return 0;
  }
  ::close(fd_);
  fd_ = -1;
  size_t shed = 0;
  while (shed < max) {
    // The listener may be in blocking mode at the OS level: ask first, never block.
    pollfd p{listen_fd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) break;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      break;  // EAGAIN: nothing pending; EMFILE: another thread took the number
    }
    ::close(fd);
    ++shed;
  }
  Take();
  return shed;
}

std::optional<uint64_t> LogThrottle::Allow(std::chrono::steady_clock::time_point now) {
  if (last_ && now - *last_ < every_) {
    ++suppressed_;
    return std::nullopt;
  }
  last_ = now;
  uint64_t n = suppressed_;
  suppressed_ = 0;
  return n;
}

}  // namespace respscope::common
