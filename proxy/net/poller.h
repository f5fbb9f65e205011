// Poller: one edge-triggered epoll set per IO thread for the data-plane sockets.
//
// Asio's async_wait re-arms its socket with epoll_ctl(EPOLL_CTL_MOD) before every wait: a third
// of the proxy's system calls at pipeline 16 (two per 16-command batch, next to two recv and
// two send). Here a socket is added once, with EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, and
// the owner remembers in user space whether it is readable or writable (until a read or write
// says otherwise, EAGAIN or a short read). The set's own descriptor is waited on through Asio:
// timers, accepts, connects and posted work keep running on the same io_context, and one wake
// of the thread serves every socket that became ready.
//
// Thread: everything on the owning io_context's thread.
#pragma once

#include <boost/asio.hpp>
#include <cstdint>
#include <memory>
#include <vector>

namespace respscope::net {

class Pollable {
 public:
  virtual ~Pollable() = default;
  // `events`: EPOLL* bits; `tag`: what was given to Poller::Add.
  virtual void OnPoll(uint32_t events, uint32_t tag) = 0;
};

class Poller {
 public:
  explicit Poller(boost::asio::io_context& io);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Watches `fd` for `owner`, which the poller keeps alive until Remove(). Returns a token for
  // Remove(), or 0 (and sets errno) if the descriptor cannot be added.
  uint64_t Add(int fd, std::shared_ptr<Pollable> owner, uint32_t tag);
  // Stops watching; events already fetched for it are dropped. Call before closing `fd`.
  void Remove(uint64_t token, int fd);

  // Room for `sockets` registrations without moving the table (no pages are touched).
  void Reserve(size_t sockets) {
    slots_.reserve(sockets);
    free_.reserve(sockets);
  }
  void Start();
  void Stop();
  size_t size() const { return slots_.size() - free_.size(); }

 private:
  struct Slot {
    std::shared_ptr<Pollable> owner;
    uint32_t generation = 1;
    uint32_t tag = 0;
  };
  void Arm();
  void Dispatch();

  int epfd_;
  boost::asio::posix::stream_descriptor desc_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_;
  bool running_ = false;
};

}  // namespace respscope::net
