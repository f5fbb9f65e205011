#include "proxy/net/connection.h"

#include "proxy/net/server.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

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
  client_.non_blocking(true, ignored);
  upstream_.non_blocking(true, ignored);
  core_ = std::make_unique<session::SessionCore>(server->table(), thread_->sink(), id_, peer_,
                                                 &server->options().session);
  up_.to_client = false;
  down_.to_client = true;
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
  auto self = shared_from_this();
  auto handler = [self, &d](const error_code& ec) { self->OnReadable(d, ec); };
  if (d.to_client) {
    upstream_.async_wait(asio::socket_base::wait_read, std::move(handler));
  } else {
    client_.async_wait(asio::socket_base::wait_read, std::move(handler));
  }
}

void Connection::OnReadable(Direction& d, const error_code& ec) {
  d.waiting = false;
  if (closed_ || lingering_) return;
  if (ec) {
    if (ec != asio::error::operation_aborted) Close();
    return;
  }
  if (draining_ && !d.to_client) return;
  char* buf = thread_->scratch();
  analytics::ObservationSink* sink = thread_->sink();
  for (int i = 0; i < kReadsPerWake; ++i) {
    error_code rec;
    size_t n = d.to_client ? upstream_.read_some(asio::buffer(buf, ThreadContext::kScratch), rec)
                           : client_.read_some(asio::buffer(buf, ThreadContext::kScratch), rec);
    if (rec == asio::error::would_block || rec == asio::error::try_again) break;
    if (rec || n == 0) {
      OnEof(d);
      return;
    }
    int64_t now = NowNs();
    // Forward first, observe after: analytics never delays the bytes.
    size_t written = 0;
    while (written < n) {
      error_code wec;
      size_t w = d.to_client ? client_.write_some(asio::buffer(buf + written, n - written), wec)
                             : upstream_.write_some(asio::buffer(buf + written, n - written), wec);
      if (wec == asio::error::would_block || wec == asio::error::try_again) break;
      if (wec) {
        Close();
        return;
      }
      written += w;
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
      // The other side is slower: keep the rest, stop reading this side until it is written.
      d.backlog.assign(buf + written, n - written);
      d.writing = true;
      sink->OnEvent(analytics::SessionEvent::kBackpressureStall, id_);
      auto self = shared_from_this();
      auto done = [self, &d](const error_code& ec, size_t) { self->OnWritten(d, ec); };
      if (d.to_client) {
        asio::async_write(client_, asio::buffer(d.backlog), std::move(done));
      } else {
        asio::async_write(upstream_, asio::buffer(d.backlog), std::move(done));
      }
      return;
    }
    if (draining_ && d.to_client && DrainDone()) {
      GracefulClose();
      return;
    }
    // A short read means the socket is drained for now. No need to read again until EAGAIN:
    // Asio's epoll reactor re-arms the descriptor (EPOLL_CTL_MOD) when we wait, which reports
    // data that is already there. This saves one failing recvfrom per wake-up.
    if (n < ThreadContext::kScratch) break;
  }
  ArmRead(d);
}

void Connection::OnWritten(Direction& d, const error_code& ec) {
  d.writing = false;
  if (closed_ || lingering_) return;
  if (ec) {
    Close();
    return;
  }
  d.backlog.clear();
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
  error_code ignored;
  if (d.to_client) {
    // Redis closed (QUIT, a protocol error, a restart): deliver what was read, then close.
    if (!d.writing) Close();
  } else {
    // The client is done sending: pass the half-close on; Redis closes its side in turn, and
    // whatever it still sends reaches the client first.
    upstream_.shutdown(asio::socket_base::shutdown_send, ignored);
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
  error_code ignored;
  upstream_.close(ignored);
  client_.shutdown(asio::socket_base::shutdown_send, ignored);
  DiscardClientInput();
  CloseWhenSent();
}

// Pooled clients notice the FIN only on their next use: do not wait for them to close. Once
// the kernel has sent everything (SIOCOUTQ == 0; our FIN follows it), close for good.
void Connection::CloseWhenSent() {
  int unsent = 0;
  if (::ioctl(client_.native_handle(), SIOCOUTQ, &unsent) == 0 && unsent == 0) {
    Close();
    return;
  }
  auto self = shared_from_this();
  connect_timer_.expires_after(std::chrono::milliseconds(20));
  connect_timer_.async_wait([self](const error_code& ec) {
    if (!ec && !self->closed_) self->CloseWhenSent();
  });
}

void Connection::DiscardClientInput() {
  auto self = shared_from_this();
  client_.async_wait(asio::socket_base::wait_read, [self](const error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      self->Close();
      return;
    }
    char* buf = self->thread_->scratch();
    for (;;) {
      error_code rec;
      size_t n = self->client_.read_some(asio::buffer(buf, ThreadContext::kScratch), rec);
      if (rec == asio::error::would_block || rec == asio::error::try_again) break;
      if (rec || n == 0) {
        self->Close();
        return;
      }
    }
    self->DiscardClientInput();
  });
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  connect_timer_.cancel();
  client_.close(ignored);
  upstream_.close(ignored);
  thread_->sink()->OnEvent(analytics::SessionEvent::kClientClosed, id_);
  thread_->Remove(id_);
  thread_->server()->OnClosed();
}

}  // namespace respscope::net
