#include "proxy/net/connection.h"

#include "proxy/net/server.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace respscope::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
std::string EndpointText(const asio::ip::tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  auto addr = ep.address();
  std::string host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return host + ":" + std::to_string(ep.port());
}
}  // namespace

Connection::Connection(ThreadContext* thread, asio::ip::tcp::socket client, uint64_t id)
    : thread_(thread),
      client_(std::move(client)),
      upstream_(thread->io()),
      connect_timer_(thread->io()),
      id_(id) {}

Connection::~Connection() = default;

void Connection::Start() {
  peer_ = EndpointText(client_);
  error_code ec;
  client_.set_option(asio::ip::tcp::no_delay(true), ec);
  thread_->sink()->OnEvent(analytics::SessionEvent::kClientConnected, id_);

  const ServerOptions& opts = thread_->server()->options();
  asio::generic::stream_protocol::endpoint ep;
  if (opts.upstream.unix_socket) {
    ep = asio::local::stream_protocol::endpoint(opts.upstream.path);
  } else {
    asio::ip::address addr = asio::ip::make_address(opts.upstream.host, ec);
    if (ec) {
      FailConnect("bad address " + opts.upstream.host);
      return;
    }
    ep = asio::ip::tcp::endpoint(addr, opts.upstream.port);
  }
  auto self = shared_from_this();
  connect_timer_.expires_after(opts.connect_timeout);
  connect_timer_.async_wait([self](const error_code& ec) {
    if (!ec && !self->connected_ && !self->closed_) {
      error_code ignored;
      self->upstream_.cancel(ignored);
      self->upstream_.close(ignored);
      self->FailConnect("connect timeout");
    }
  });
  upstream_.async_connect(ep, [self](const error_code& ec) { self->OnConnected(ec); });
}

void Connection::OnConnected(const error_code& ec) {
  if (closed_) return;
  if (ec) {
    if (ec != asio::error::operation_aborted) FailConnect(ec.message());
    return;
  }
  connected_ = true;
  connect_timer_.cancel();
  Server* server = thread_->server();
  server->SetUpstreamUp(true);
  error_code ignored;
  if (!server->options().upstream.unix_socket) {
    upstream_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }
  // Both sockets leave Asio's reactor for the thread's poller.
  fd_[kClient] = client_.release(ignored);
  fd_[kUpstream] = upstream_.release(ignored);
  for (int side : {kClient, kUpstream}) {
    if (fd_[side] < 0) {
      Close();
      return;
    }
    int flags = ::fcntl(fd_[side], F_GETFL, 0);
    ::fcntl(fd_[side], F_SETFL, flags | O_NONBLOCK);
  }
  core_ = std::make_unique<session::SessionCore>(server->table(), thread_->sink(), id_, peer_,
                                                 &server->options().session);
  up_.to_client = false;
  down_.to_client = true;
  // Until the first event says otherwise, assume both sockets may hold data and room.
  readable_[kClient] = readable_[kUpstream] = true;
  writable_[kClient] = writable_[kUpstream] = true;
  for (uint32_t side : {kClient, kUpstream}) {
    token_[side] = thread_->poller().Add(fd_[side], shared_from_this(), side);
    if (token_[side] == 0) {
      Close();
      return;
    }
  }
  ArmRead(up_);
  ArmRead(down_);
}

void Connection::FailConnect(const std::string& why) {
  if (closed_ || connected_) return;
  connected_ = false;
  Server* server = thread_->server();
  server->SetUpstreamUp(false);
  thread_->sink()->OnEvent(analytics::SessionEvent::kUpstreamConnectFailed, id_);
  // The application sees one error reply naming respscope and the upstream, then a close.
  auto msg = std::make_shared<std::string>("-ERR respscope: upstream " +
                                           server->options().upstream.display +
                                           " unreachable (" + why + ")\r\n");
  auto self = shared_from_this();
  asio::async_write(client_, asio::buffer(*msg),
                    [self, msg](const error_code&, size_t) { self->Close(); });
}

void Connection::ArmRead(Direction& d) {
  if (closed_ || d.waiting || d.writing || d.eof) return;
  if (draining_ && !d.to_client) return;
  d.waiting = true;
  if (!readable_[d.from()]) return;  // the poller calls OnPoll when data arrives
  // Data may be waiting already (a wake-up ended before EAGAIN, or a backlog was just
  // written): read it on a later turn of the loop, after other connections had theirs.
  auto self = shared_from_this();
  asio::post(thread_->io(), [self, &d] {
    if (self->closed_ || self->lingering_ || !d.waiting) return;
    d.waiting = false;
    self->OnReadable(d);
  });
}

void Connection::OnPoll(uint32_t events, uint32_t side) {
  if (closed_) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_[side] = true;
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) hup_[side] = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_[side] = true;
  if (lingering_) {
    if (side == kClient && readable_[kClient]) DiscardClientInput();
    return;
  }
  // The direction writing to `side` first: a drained backlog lets its reader go on.
  Direction& writer = side == kClient ? down_ : up_;
  if (writer.writing && writable_[side]) FlushBacklog(writer);
  if (closed_ || lingering_) return;
  Direction& reader = side == kClient ? up_ : down_;
  if (reader.waiting && readable_[side]) {
    reader.waiting = false;
    OnReadable(reader);
  }
}

void Connection::OnReadable(Direction& d) {
  if (closed_ || lingering_) return;
  if (draining_ && !d.to_client) return;
  char* buf = thread_->scratch();
  analytics::ObservationSink* sink = thread_->sink();
  const int from = fd_[d.from()], to = fd_[d.to()];
  for (int i = 0; i < kReadsPerWake; ++i) {
    ssize_t got = ::recv(from, buf, ThreadContext::kScratch, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      readable_[d.from()] = false;
      break;
    }
    if (got <= 0) {
      OnEof(d);
      return;
    }
    const size_t n = static_cast<size_t>(got);
    int64_t now = NowNs();
    // Forward first, observe after: analytics never delays the bytes.
    size_t written = 0;
    while (written < n && writable_[d.to()]) {
      ssize_t w = ::send(to, buf + written, n - written, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        writable_[d.to()] = false;
        break;
      }
      if (w < 0) {
        Close();
        return;
      }
      written += static_cast<size_t>(w);
    }
    std::string_view bytes(buf, n);
    if (d.to_client) {
      core_->OnUpstreamBytes(bytes, now);
      sink->OnBytes(0, n);
    } else {
      core_->OnClientBytes(bytes, now);
      sink->OnBytes(n, 0);
    }
    if (written < n) {
      // The other side is slower: keep the rest, stop reading this side until it is written
      // (OnPoll resumes it when `to` is writable again).
      d.backlog.assign(buf + written, n - written);
      d.backlog_sent = 0;
      d.writing = true;
      sink->OnEvent(analytics::SessionEvent::kBackpressureStall, id_);
      return;
    }
    if (draining_ && d.to_client && DrainDone()) {
      GracefulClose();
      return;
    }
    // A short read means the socket is drained for now: the next data brings an edge.
    // Not so once the peer has shut down: its end of stream brings none.
    if (n < ThreadContext::kScratch && !hup_[d.from()]) {
      readable_[d.from()] = false;
      break;
    }
  }
  ArmRead(d);
}

void Connection::FlushBacklog(Direction& d) {
  const int to = fd_[d.to()];
  while (d.backlog_sent < d.backlog.size()) {
    ssize_t w = ::send(to, d.backlog.data() + d.backlog_sent, d.backlog.size() - d.backlog_sent,
                       MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      writable_[d.to()] = false;
      return;  // OnPoll comes back when there is room
    }
    if (w < 0) {
      Close();
      return;
    }
    d.backlog_sent += static_cast<size_t>(w);
  }
  OnWritten(d);
}

void Connection::OnWritten(Direction& d) {
  d.writing = false;
  if (closed_ || lingering_) return;
  d.backlog.clear();
  d.backlog_sent = 0;
  if (d.backlog.capacity() > ThreadContext::kScratch) std::string().swap(d.backlog);
  if (d.to_client && draining_ && DrainDone()) {
    GracefulClose();
    return;
  }
  if (d.to_client && up_.eof) {
    Close();
    return;
  }
  if (d.to_client && down_.eof) {
    Close();
    return;
  }
  ArmRead(d);
}

void Connection::OnEof(Direction& d) {
  d.eof = true;
  if (d.to_client) {
    // Redis closed (QUIT, a protocol error, a restart): deliver what was read, then close.
    if (!d.writing) Close();
  } else {
    // The client is done sending: pass the half-close on; Redis closes its side in turn, and
    // whatever it still sends reaches the client first.
    ::shutdown(fd_[kUpstream], SHUT_WR);
    if (!down_.writing && !down_.waiting) ArmRead(down_);
  }
}

bool Connection::DrainDone() const {
  return core_ && core_->observing() && core_->pending() == 0 && !core_->reply_in_progress() &&
         !down_.writing;
}

void Connection::BeginDrain() {
  if (closed_) return;
  draining_ = true;
  if (!connected_) {
    Close();
  } else if (DrainDone()) {
    GracefulClose();
  }
}

// Every reply is with the kernel: send FIN after it (shutdown), and read and drop whatever the
// client still sends until it closes. A plain close() with unread input would make Linux
// answer with a RST and drop replies still queued for a slow reader. Bounded by the drain
// deadline, after which Server::Stop() closes everything.
void Connection::GracefulClose() {
  if (closed_ || lingering_) return;
  lingering_ = true;
  CloseUpstreamFd();
  ::shutdown(fd_[kClient], SHUT_WR);
  DiscardClientInput();
  if (!closed_) CloseWhenSent();
}

void Connection::CloseUpstreamFd() {
  if (fd_[kUpstream] < 0) return;
  thread_->poller().Remove(token_[kUpstream], fd_[kUpstream]);
  ::close(fd_[kUpstream]);
  fd_[kUpstream] = -1;
  token_[kUpstream] = 0;
}

// Pooled clients notice the FIN only on their next use: do not wait for them to close. Once
// the kernel has sent everything (SIOCOUTQ == 0; our FIN follows it), close for good.
void Connection::CloseWhenSent() {
  int unsent = 0;
  if (::ioctl(fd_[kClient], SIOCOUTQ, &unsent) == 0 && unsent == 0) {
    Close();
    return;
  }
  auto self = shared_from_this();
  connect_timer_.expires_after(std::chrono::milliseconds(20));
  connect_timer_.async_wait([self](const error_code& ec) {
    if (!ec && !self->closed_) self->CloseWhenSent();
  });
}

// Reads and drops what the client sends after the FIN, until EAGAIN (OnPoll calls again on
// more) or until it closes.
void Connection::DiscardClientInput() {
  char* buf = thread_->scratch();
  for (;;) {
    ssize_t got = ::recv(fd_[kClient], buf, ThreadContext::kScratch, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      readable_[kClient] = false;
      return;
    }
    if (got <= 0) {
      Close();
      return;
    }
  }
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  connect_timer_.cancel();
  if (fd_[kClient] >= 0) {
    thread_->poller().Remove(token_[kClient], fd_[kClient]);
    ::close(fd_[kClient]);
    fd_[kClient] = -1;
  } else {
    client_.close(ignored);
  }
  CloseUpstreamFd();
  upstream_.close(ignored);
  thread_->sink()->OnEvent(analytics::SessionEvent::kClientClosed, id_);
  thread_->Remove(id_);
  thread_->server()->OnClosed();
}

}  // namespace respscope::net
