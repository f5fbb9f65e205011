#include "proxy/net/poller.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace respscope::net {

namespace asio = boost::asio;

namespace {
int MakeEpoll() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  return fd;
}
}  // namespace

Poller::Poller(asio::io_context& io) : epfd_(MakeEpoll()), desc_(io, epfd_) {}

Poller::~Poller() {
  boost::system::error_code ignored;
  desc_.close(ignored);  // closes epfd_
}

uint64_t Poller::Add(int fd, std::shared_ptr<Pollable> owner, uint32_t tag) {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[index];
  s.owner = std::move(owner);
  s.tag = tag;
  const uint64_t token = (uint64_t{s.generation} << 32) | index;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = token;
  if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int saved = errno;
    s.owner.reset();
    ++s.generation;
    free_.push_back(index);
    errno = saved;
    return 0;
  }
  return token;
}

void Poller::Remove(uint64_t token, int fd) {
  const uint32_t index = static_cast<uint32_t>(token);
  if (token == 0 || index >= slots_.size()) return;
  Slot& s = slots_[index];
  if (s.generation != static_cast<uint32_t>(token >> 32)) return;
  epoll_event ev{};
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, &ev);
  // A dispatch in progress holds its own reference: the owner outlives its current call.
  s.owner.reset();
  ++s.generation;
  free_.push_back(index);
}

void Poller::Start() {
  if (running_) return;
  running_ = true;
  Arm();
}

void Poller::Stop() {
  running_ = false;
  boost::system::error_code ignored;
  desc_.cancel(ignored);
}

void Poller::Arm() {
  desc_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [this](const boost::system::error_code& ec) {
                     if (ec || !running_) return;
                     Dispatch();
                     if (running_) Arm();
                   });
}

void Poller::Dispatch() {
  epoll_event events[256];
  int n = ::epoll_wait(epfd_, events, 256, 0);
  for (int i = 0; i < n; ++i) {
    const uint64_t token = events[i].data.u64;
    const uint32_t index = static_cast<uint32_t>(token);
    if (index >= slots_.size()) continue;
    Slot& s = slots_[index];
    // Removed (or removed and reused) since the event was fetched: not for the current owner.
    if (s.generation != static_cast<uint32_t>(token >> 32) || !s.owner) continue;
    std::shared_ptr<Pollable> owner = s.owner;
    owner->OnPoll(events[i].events, s.tag);
  }
  // More than one batch ready: the re-arm (EPOLL_CTL_MOD of the set in Asio's reactor)
  // reports the set readable again at once.
}

}  // namespace respscope::net
