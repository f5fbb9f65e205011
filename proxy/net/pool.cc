#include "proxy/net/pool.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/net/connection.h"
#include "proxy/net/server.h"

namespace respscope::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr std::chrono::milliseconds kRetryMin{100};
constexpr std::chrono::milliseconds kRetryMax{500};

std::string Bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

struct ConnectState {
  explicit ConnectState(asio::io_context& io) : socket(io), timer(io) {}
  asio::generic::stream_protocol::socket socket;
  asio::steady_timer timer;
  std::function<void(int, std::string)> done;
  bool finished = false;

  void Finish(int fd, std::string error) {
    if (finished) return;
    finished = true;
    timer.cancel();
    done(fd, std::move(error));
  }
};

}  // namespace

const char* PinReasonName(PinReason r) {
  switch (r) {
    case PinReason::kTransaction: return "transaction";
    case PinReason::kBlocking: return "blocking";
    case PinReason::kPubSub: return "pubsub";
    case PinReason::kMonitor: return "monitor";
    case PinReason::kHello: return "hello";
    case PinReason::kAuth: return "auth";
    case PinReason::kSelect: return "select";
    case PinReason::kClient: return "client";
    case PinReason::kReset: return "reset";
    case PinReason::kInline: return "inline";
    case PinReason::kUnknown: return "unknown_command";
    case PinReason::kLargeRequest: return "large_request";
    case PinReason::kOther:
    case PinReason::kCount: break;
  }
  return "other";
}

void PoolStats::RecordWrite(uint32_t commands) {
  write_count.Add(1);
  write_commands.Add(commands);
  size_t b = 0;
  while (b < std::size(kWriteBuckets) && static_cast<int>(commands) > kWriteBuckets[b]) ++b;
  write_buckets[b].Add(1);
}

void ConnectUpstream(ThreadContext* thread, std::function<void(int, std::string)> done) {
  const ServerOptions& opts = thread->server()->options();
  const std::shared_ptr<const UpstreamAddress> upstream = thread->server()->upstream();
  auto st = std::make_shared<ConnectState>(thread->io());
  st->done = std::move(done);
  asio::generic::stream_protocol::endpoint ep;
  error_code ec;
  if (!upstream->unavailable.empty()) {
    asio::post(thread->io(), [st, why = upstream->unavailable] { st->Finish(-1, why); });
    return;
  }
  if (upstream->unix_socket) {
    ep = asio::local::stream_protocol::endpoint(upstream->path);
  } else {
    asio::ip::address addr = asio::ip::make_address(upstream->host, ec);
    if (ec) {
      asio::post(thread->io(), [st, host = upstream->host] {
        st->Finish(-1, "bad address " + host);
      });
      return;
    }
    ep = asio::ip::tcp::endpoint(addr, upstream->port);
  }
  st->timer.expires_after(opts.connect_timeout);
  st->timer.async_wait([st](const error_code& ec) {
    if (ec || st->finished) return;
    error_code ignored;
    st->socket.close(ignored);
    st->Finish(-1, "connect timeout");
  });
  const bool tcp = !upstream->unix_socket;
  st->socket.async_connect(ep, [st, tcp](const error_code& ec) {
    if (st->finished) return;
    if (ec) {
      st->Finish(-1, ec.message());
      return;
    }
    error_code ignored;
    int fd = st->socket.release(ignored);
    if (fd < 0) {
      st->Finish(-1, "cannot take the socket");
      return;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    if (tcp) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    st->Finish(fd, {});
  });
}

// ---------------------------------------------------------------------------------------------
// SharedUpstream

SharedUpstream::SharedUpstream(ThreadContext* thread, UpstreamPool* pool)
    : thread_(thread), pool_(pool), retry_(thread->io()) {}

SharedUpstream::~SharedUpstream() {
  if (fd_ >= 0) ::close(fd_);
}

void SharedUpstream::Start() {
  PrepareHandshake();
  Connect();
}

// The handshake goes first, before any client's commands queued while connecting. Called when
// nothing is queued (at start, and when Fail() has emptied everything).
void SharedUpstream::PrepareHandshake() {
  const std::string& auth = pool_->auth_command();
  if (auth.empty()) return;
  out_ = auth;
  router_.Expect(nullptr, 1);
}

void SharedUpstream::Connect() {
  if (closed_ || connecting_ || fd_ >= 0) return;
  connecting_ = true;
  gen_ = thread_->server()->upstream()->generation;
  auto self = shared_from_this();
  ConnectUpstream(thread_, [self](int fd, std::string error) { self->OnConnected(fd, error); });
}

void SharedUpstream::OnUpstreamChanged(uint64_t generation) {
  if (closed_ || gen_ >= generation) return;
  if (fd_ >= 0) {
    Fail("the upstream moved to " + thread_->server()->upstream()->display, false);
  } else if (!connecting_) {
    retry_.cancel();  // waiting out a backoff against the old address: try the new one now
    backoff_ = std::chrono::milliseconds(0);
    Connect();
  }
  // Connecting: OnConnected drops what it reached and starts again.
}

void SharedUpstream::OnConnected(int fd, const std::string& error) {
  connecting_ = false;
  if (closed_) {
    if (fd >= 0) ::close(fd);
    return;
  }
  if (gen_ < thread_->upstream_generation()) {
    if (fd >= 0) ::close(fd);  // reached (or failed to reach) a former master
    Connect();
    return;
  }
  if (fd < 0) {
    Fail(error, /*connect_failed=*/true);
    return;
  }
  fd_ = fd;
  token_ = thread_->poller().Add(fd_, shared_from_this(), 0);
  if (token_ == 0) {
    Fail("cannot watch the socket", true);
    return;
  }
  readable_ = writable_ = true;
  backoff_ = std::chrono::milliseconds(0);
  thread_->server()->SetUpstreamUp(true);
  pool_->stats()->shared.Add(1);
  if (!out_.empty()) ScheduleFlush();
}

void SharedUpstream::Send(const std::shared_ptr<Connection>& client, std::string_view bytes,
                          uint32_t commands, bool merge) {
  out_.append(bytes);
  out_commands_ += commands;
  router_.Expect(client, commands, merge);
  if (fd_ >= 0) {
    ScheduleFlush();
  } else if (!connecting_ && !closed_) {
    // Down and waiting to retry: a client with something to send tries now, as a dedicated
    // client would connect; its commands wait for this attempt (connect_timeout at most).
    retry_.cancel();
    Connect();
  }
}

void SharedUpstream::AddWaiter(const std::shared_ptr<Connection>& client) {
  waiters_.push_back(client);
}

// One flush per turn of the event loop: every client read in this wake-up has appended its
// commands by the time the posted flush runs, so they leave in one send.
void SharedUpstream::ScheduleFlush() {
  if (flush_scheduled_ || !writable_) return;
  flush_scheduled_ = true;
  auto self = shared_from_this();
  asio::post(thread_->io(), [self] {
    self->flush_scheduled_ = false;
    self->Flush();
  });
}

void SharedUpstream::Flush() {
  if (fd_ < 0 || closed_) return;
  while (out_sent_ < out_.size()) {
    ssize_t w = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      writable_ = false;  // OnPoll flushes again on EPOLLOUT
      return;
    }
    if (w < 0) {
      Fail(std::string("write: ") + std::strerror(errno), false);
      return;
    }
    out_sent_ += static_cast<size_t>(w);
  }
  if (out_commands_) pool_->stats()->RecordWrite(out_commands_);
  out_commands_ = 0;
  out_.clear();
  out_sent_ = 0;
  if (out_.capacity() > 4 * ThreadContext::kScratch) std::string().swap(out_);
  if (!waiters_.empty()) {
    std::vector<std::weak_ptr<Connection>> waiters;
    waiters.swap(waiters_);
    for (auto& w : waiters) {
      if (auto c = w.lock()) c->ResumeReading();
    }
  }
}

void SharedUpstream::OnPoll(uint32_t events, uint32_t) {
  if (fd_ < 0) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_ = true;
  if (writable_ && out_sent_ < out_.size()) Flush();
  if (fd_ >= 0 && readable_) OnReadable();
}

void SharedUpstream::OnReadable() {
  char* buf = thread_->scratch();
  // Bounded work per wake-up, as for a client connection.
  for (int i = 0; i < Connection::kReadsPerWake; ++i) {
    ssize_t got = ::recv(fd_, buf, ThreadContext::kScratch, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      readable_ = false;
      return;
    }
    if (got <= 0) {
      Fail(got == 0 ? "closed by the upstream" : std::string("read: ") + std::strerror(errno),
           false);
      return;
    }
    bool auth_refused = false;
    bool ok = router_.Feed(std::string_view(buf, static_cast<size_t>(got)),
                           [&](const std::shared_ptr<Connection>& owner, std::string_view bytes,
                               uint32_t replies) {
                             if (owner) {
                               owner->DeliverShared(bytes, replies);
                             } else if (replies > 0) {
                               // The handshake's AUTH reply.
                               if (!bytes.empty() && bytes[0] == '-') auth_refused = true;
                             } else if (!bytes.empty() && bytes[0] == '-') {
                               auth_refused = true;
                             }
                           });
    if (auth_refused) {
      spdlog::error("upstream refused the URL's credentials on a shared connection; clients "
                    "that share are closed until it accepts them");
      Fail("the upstream refused the URL's credentials", true);
      return;
    }
    if (!ok) {
      Fail("reply out of step (unexpected or malformed bytes)", false);
      return;
    }
    if (static_cast<size_t>(got) < ThreadContext::kScratch) {
      readable_ = false;
      return;
    }
  }
  // More may be waiting: continue after the other connections of this thread had a turn.
  auto self = shared_from_this();
  asio::post(thread_->io(), [self] {
    if (self->fd_ >= 0 && self->readable_) self->OnReadable();
  });
}

void SharedUpstream::Fail(const std::string& why, bool connect_failed) {
  std::vector<std::shared_ptr<Connection>> owed;
  router_.ForEachOwner([&](const std::shared_ptr<Connection>& c) {
    if (c && (owed.empty() || owed.back() != c)) owed.push_back(c);
  });
  router_.Clear();
  out_.clear();
  out_sent_ = 0;
  out_commands_ = 0;
  if (fd_ >= 0) {
    thread_->poller().Remove(token_, fd_);
    ::close(fd_);
    fd_ = -1;
    token_ = 0;
    pool_->stats()->shared.Add(-1);
    if (!owed.empty()) pool_->stats()->shared_drops.Add(1);
  }
  if (connect_failed) thread_->server()->SetUpstreamUp(false);
  if (!owed.empty() || !connect_failed) {
    spdlog::warn("shared upstream connection lost ({}); {} client(s) with replies in flight "
                 "closed",
                 why, owed.size());
  }
  for (auto& c : owed) c->OnSharedLost(why, connect_failed);
  std::vector<std::weak_ptr<Connection>> waiters;
  waiters.swap(waiters_);
  for (auto& w : waiters) {
    if (auto c = w.lock()) c->ResumeReading();
  }
  if (closed_) return;
  PrepareHandshake();
  backoff_ = std::clamp(backoff_ * 2, kRetryMin, kRetryMax);
  if (!connect_failed) backoff_ = std::chrono::milliseconds(0);  // reconnect at once
  auto self = shared_from_this();
  retry_.expires_after(backoff_);
  retry_.async_wait([self](const error_code& ec) {
    if (!ec && !self->closed_) self->Connect();
  });
}

void SharedUpstream::Close() {
  if (closed_) return;
  closed_ = true;
  retry_.cancel();
  if (fd_ >= 0) {
    thread_->poller().Remove(token_, fd_);
    ::close(fd_);
    fd_ = -1;
    pool_->stats()->shared.Add(-1);
  }
  router_.Clear();
  waiters_.clear();
}

// ---------------------------------------------------------------------------------------------
// UpstreamPool

UpstreamPool::UpstreamPool(ThreadContext* thread, PoolOptions options, PoolStats* stats)
    : thread_(thread), options_(std::move(options)), stats_(stats), retry_(thread->io()) {
  if (!options_.password.empty()) {
    if (options_.username.empty()) {
      auth_command_ = "*2\r\n$4\r\nAUTH\r\n" + Bulk(options_.password);
    } else {
      auth_command_ = "*3\r\n$4\r\nAUTH\r\n" + Bulk(options_.username) + Bulk(options_.password);
    }
  }
  if (options_.shared_connections < 1) options_.shared_connections = 1;
}

UpstreamPool::~UpstreamPool() {
  for (Spare& s : spares_) {
    if (s.fd >= 0) ::close(s.fd);
  }
}

void UpstreamPool::Start() {
  for (uint32_t i = 0; i < options_.shared_connections; ++i) {
    shared_.push_back(std::make_shared<SharedUpstream>(thread_, this));
    shared_.back()->Start();
  }
  FillSpares();
}

void UpstreamPool::Stop() {
  stopped_ = true;
  retry_.cancel();
  for (auto& s : shared_) s->Close();
  for (Spare& s : spares_) {
    thread_->poller().Remove(s.token, s.fd);
    ::close(s.fd);
    stats_->spare.Add(-1);
  }
  spares_.clear();
  waiting_.clear();
}

SharedUpstream* UpstreamPool::Assign() {
  SharedUpstream* s = shared_[next_shared_].get();
  next_shared_ = (next_shared_ + 1) % shared_.size();
  return s;
}

bool UpstreamPool::MatchesCredentials(std::string_view user, std::string_view password) const {
  if (options_.password.empty()) return false;
  const std::string_view want_user = options_.username.empty() ? "default" : options_.username;
  return user == want_user && password == options_.password;
}

void UpstreamPool::RequestPrivate(const std::shared_ptr<Connection>& client) {
  if (!spares_.empty()) {
    Spare s = spares_.back();
    spares_.pop_back();
    thread_->poller().Remove(s.token, s.fd);
    stats_->spare.Add(-1);
    HandTo(client, s.fd);
    FillSpares();
    return;
  }
  stats_->spare_misses.Add(1);
  waiting_.push_back(client);
  FillSpares();
  if (connecting_ == 0) {
    // No spare wanted (spare_connections: 0): connect one for this client.
    ConnectSpare();
  }
}

void UpstreamPool::ConnectSpare() {
  ++connecting_;
  uint64_t gen = thread_->server()->upstream()->generation;
  auto self = shared_from_this();
  ConnectUpstream(thread_, [self, gen](int fd, std::string error) {
    self->OnSpareConnected(fd, error, gen);
  });
}

void UpstreamPool::OnUpstreamChanged(uint64_t generation) {
  for (auto& s : shared_) s->OnUpstreamChanged(generation);
  for (size_t i = spares_.size(); i-- > 0;) {
    if (spares_[i].gen >= generation) continue;
    thread_->poller().Remove(spares_[i].token, spares_[i].fd);
    ::close(spares_[i].fd);
    spares_.erase(spares_.begin() + static_cast<long>(i));
    stats_->spare.Add(-1);
  }
  retry_.cancel();
  FillSpares();
}

void UpstreamPool::HandTo(const std::shared_ptr<Connection>& client, int fd) {
  stats_->pinned.Add(1);
  client->OnPrivateUpstream(fd, {});
}

void UpstreamPool::FillSpares() {
  if (stopped_) return;
  while (spares_.size() + connecting_ < options_.spare_connections + waiting_.size()) {
    ConnectSpare();
  }
}

void UpstreamPool::OnSpareConnected(int fd, const std::string& error, uint64_t gen) {
  --connecting_;
  if (stopped_) {
    if (fd >= 0) ::close(fd);
    return;
  }
  if (gen < thread_->upstream_generation()) {
    if (fd >= 0) ::close(fd);  // a former master's: connect to the current one instead
    FillSpares();
    return;
  }
  if (fd < 0) {
    // Clients waiting for a private connection get what a dedicated client gets.
    while (!waiting_.empty()) {
      auto c = waiting_.front().lock();
      waiting_.pop_front();
      if (c) c->OnPrivateUpstream(-1, error);
    }
    auto self = shared_from_this();
    retry_.expires_after(kRetryMax);
    retry_.async_wait([self](const error_code& ec) {
      if (!ec) self->FillSpares();
    });
    return;
  }
  while (!waiting_.empty()) {
    auto c = waiting_.front().lock();
    waiting_.pop_front();
    if (c) {
      HandTo(c, fd);
      FillSpares();
      return;
    }
  }
  Spare s;
  s.fd = fd;
  s.gen = gen;
  s.tag = next_tag_++;
  s.token = thread_->poller().Add(fd, shared_from_this(), s.tag);
  if (s.token == 0) {
    ::close(fd);
    return;
  }
  spares_.push_back(s);
  stats_->spare.Add(1);
}

// A spare says something only when it is closed (Redis's `timeout`, a restart): replace it.
void UpstreamPool::OnPoll(uint32_t events, uint32_t tag) {
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  for (size_t i = 0; i < spares_.size(); ++i) {
    if (spares_[i].tag != tag) continue;
    thread_->poller().Remove(spares_[i].token, spares_[i].fd);
    ::close(spares_[i].fd);
    spares_.erase(spares_.begin() + static_cast<long>(i));
    stats_->spare.Add(-1);
    auto self = shared_from_this();
    retry_.expires_after(kRetryMin);
    retry_.async_wait([self](const error_code& ec) {
      if (!ec) self->FillSpares();
    });
    return;
  }
}

}  // namespace respscope::net
