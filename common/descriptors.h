// File descriptors: the process limit, the budget it leaves the listeners, and the spare
// descriptor that keeps an accept loop from spinning when the limit is reached.
//
// Why: a listener that gets EMFILE from accept() leaves the connection in the kernel's backlog,
// so the listening socket stays readable and the next accept() fails the same way at once: one
// thread at 100% CPU, and the waiting client never hears anything. The classic cure (libuv,
// libev's documentation): hold one spare descriptor on /dev/null; on EMFILE close it, accept and
// close the pending connections (their clients see a prompt close, not a hang), and take the
// spare back. The listener then backs off briefly instead of retrying at once.
//
// Thread: RaiseNoFileLimit() and PlanDescriptors() are plain functions. A SpareDescriptor is
// used by the one thread that runs its listener's accept loop. LogThrottle is single-threaded.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace respscope::common {

// RLIMIT_NOFILE before and after RaiseNoFileLimit().
struct NoFileLimit {
  uint64_t soft_before = 0;
  uint64_t soft = 0;  // in force now
  uint64_t hard = 0;
  std::string error;  // getrlimit/setrlimit failure, empty when none
};

// Raises the soft limit to the hard limit (what `ulimit -n` allows without privileges), as
// servers that hold many sockets do. A hard limit of RLIM_INFINITY is capped at the kernel's
// nr_open (setrlimit refuses more). Never lowers the limit.
NoFileLimit RaiseNoFileLimit();

// Descriptors the process needs besides client connections and admin connections: stdio, the
// listeners and their spares, an epoll set, eventfd and timerfd per io_context (one per IO
// thread, the admin server's, the signal set's), the side channel, log files, /proc reads.
// Generous on purpose: running short costs far more than a few unused descriptors.
inline constexpr uint64_t kBaseDescriptors = 64;
inline constexpr uint64_t kDescriptorsPerThread = 8;
// A data-plane client holds two: its own socket and its upstream connection.
inline constexpr uint64_t kDescriptorsPerClient = 2;

struct DescriptorBudget {
  uint64_t limit = 0;      // RLIMIT_NOFILE soft
  uint64_t reserved = 0;   // base + threads + admin connections (+1 for the admin accept)
  size_t max_clients = 0;  // data-plane clients that fit: min(configured, what is left / 2)
  bool clients_clamped = false;
  std::vector<std::string> warnings;  // one log line each
};

// Checks limits.max_clients and admin.max_connections against `limit` and says what fits. The
// admin connections and the process's own descriptors are kept out of the data plane's share,
// so that a flood of data-plane clients can never take the descriptors /healthz needs.
DescriptorBudget PlanDescriptors(uint64_t limit, size_t max_clients, size_t admin_max_connections,
                                 int threads);

// True for the errno values that mean "no descriptor to give": EMFILE (this process) and
// ENFILE (the whole system).
bool IsOutOfDescriptors(int error_value);

// One spare descriptor (/dev/null, close-on-exec), owned: closed by the destructor.
class SpareDescriptor {
 public:
  SpareDescriptor();
  ~SpareDescriptor();
  SpareDescriptor(const SpareDescriptor&) = delete;
  SpareDescriptor& operator=(const SpareDescriptor&) = delete;

  // Call when accept() on `listen_fd` failed for want of descriptors: releases the spare,
  // accepts and closes up to `max` pending connections (never blocks: it polls first), and
  // takes the spare back. Returns how many connections were shed. With no spare held (another
  // thread took the freed number) it only tries to take it back, and sheds nothing.
  size_t Shed(int listen_fd, size_t max);
  bool held() const { return fd_ >= 0; }

 private:
  void Take();
  int fd_ = -1;
};

// At most one line per `every`: Allow() returns the number of lines suppressed since the last
// allowed one, or nullopt when this one must be suppressed too.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::steady_clock::duration every) : every_(every) {}
  std::optional<uint64_t> Allow(
      std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  std::chrono::steady_clock::duration every_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  uint64_t suppressed_ = 0;
};

}  // namespace respscope::common
