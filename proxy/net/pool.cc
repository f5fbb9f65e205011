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

// One connect (and TLS handshake) in flight. The socket stays with Asio until the end so that
// the handshake can wait for readiness with async_wait; the timer bounds connect and handshake
// together.
struct ConnectState {
  explicit ConnectState(asio::io_context& io) : socket(io), timer(io), probe(io) {}
  ~ConnectState() {
    if (ssl != nullptr) SSL_free(ssl);
  }
  asio::generic::stream_protocol::socket socket;
  asio::steady_timer timer;
  asio::steady_timer probe;
  std::function<void(UpstreamIo, UpstreamError)> done;
  bool finished = false;
  bool tcp = true;
  // TLS
  common::UpstreamTls* tls = nullptr;
  std::shared_ptr<const common::TlsContext> context;
  SSL* ssl = nullptr;
  common::TlsHandshakeNotes notes;
  bool handshaking = false;  // from the first handshake step until the handover
  bool awaiting_verdict = false;  // handshake done, the server's verdict on our certificate due

  void Finish(UpstreamIo io, UpstreamError error) {
    if (finished) return;
    finished = true;
    timer.cancel();
    probe.cancel();
    done(std::move(io), std::move(error));
  }
  void FailTls(const common::TlsError& e) {
    if (finished) return;
    tls->RecordFailure(e, "data plane");
    error_code ignored;
    socket.close(ignored);
    Finish(UpstreamIo(), UpstreamError{e.Text(), true});
  }
};

// Hands the connected (and handshaken) descriptor over.
void Handover(const std::shared_ptr<ConnectState>& st) {
  if (st->finished) return;
  error_code ignored;
  int fd = st->socket.release(ignored);
  if (fd < 0) {
    st->Finish(UpstreamIo(), UpstreamError{"cannot take the socket", false});
    return;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
  SSL* ssl = st->ssl;
  st->ssl = nullptr;
  st->Finish(UpstreamIo(fd, ssl), {});
}

// TLS 1.3: a server that refuses the client's certificate (or its absence) says so after the
// client's side of the handshake has completed. When the server asked for a certificate, wait
// for its first flight after the handshake: session tickets mean accepted (Redis and Valkey
// send them at once), an alert means refused, and the client gets the handshake error instead
// of a closed connection. The wait is bounded by the connect timer (limits.connect_timeout, see
// Connect), so a busy server's late verdict is still read as one; a server seen to send nothing
// after an accepted handshake is waited for only briefly from then on.
constexpr std::chrono::milliseconds kSilentServerVerdictWait{250};

void AwaitCertVerdict(const std::shared_ptr<ConnectState>& st) {
  st->awaiting_verdict = true;
  if (st->tls->silent_after_handshake()) {
    st->probe.expires_after(kSilentServerVerdictWait);
    st->probe.async_wait([st](const error_code& ec) {
      if (!ec) Handover(st);  // nothing said: accepted (a server without tickets)
    });
  }
  st->socket.async_wait(asio::socket_base::wait_read, [st](const error_code& ec) {
    if (ec || st->finished) return;
    common::ClearTlsErrors();
    char c;
    int r = SSL_peek(st->ssl, &c, 1);
    int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(st->ssl, r);
    if (r > 0 || e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      Handover(st);
      return;
    }
    st->FailTls(common::ClassifyTlsError(st->ssl, e, st->notes,
                                         st->context->has_client_cert()));
  });
}

void HandshakeStep(const std::shared_ptr<ConnectState>& st) {
  if (st->finished) return;
  common::ClearTlsErrors();
  const int r = SSL_do_handshake(st->ssl);
  if (r == 1) {
    if (st->notes.cert_requested && SSL_version(st->ssl) == TLS1_3_VERSION) {
      AwaitCertVerdict(st);
    } else {
      Handover(st);
    }
    return;
  }
  const int e = SSL_get_error(st->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    auto wait = e == SSL_ERROR_WANT_READ ? asio::socket_base::wait_read
                                         : asio::socket_base::wait_write;
    st->socket.async_wait(wait, [st](const error_code& ec) {
      if (ec == asio::error::operation_aborted || st->finished) return;
      HandshakeStep(st);  // an error on the socket shows in the next SSL call
    });
    return;
  }
  st->FailTls(common::ClassifyTlsError(st->ssl, e, st->notes, st->context->has_client_cert()));
}

void StartHandshake(const std::shared_ptr<ConnectState>& st) {
  st->context = st->tls->context();
  st->ssl = st->context->NewSsl(&st->notes);
  const int fd = st->socket.native_handle();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
  if (st->ssl == nullptr || SSL_set_fd(st->ssl, fd) != 1) {
    st->FailTls(common::TlsError{common::TlsFailure::kOther, "cannot create a TLS session"});
    return;
  }
  st->handshaking = true;
  HandshakeStep(st);
}

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

std::string UpstreamErrorReply(const UpstreamAddress& upstream, const UpstreamError& error) {
  if (error.tls) {
    return "-ERR upstream TLS handshake failed: " + error.why + " (respscope, upstream " +
           upstream.display + ")\r\n";
  }
  return "-ERR respscope: upstream " + upstream.display + " unreachable (" + error.why + ")\r\n";
}

void ConnectUpstream(ThreadContext* thread,
                     std::function<void(UpstreamIo, UpstreamError)> done) {
  const ServerOptions& opts = thread->server()->options();
  const std::shared_ptr<const UpstreamAddress> upstream = thread->server()->upstream();
  auto st = std::make_shared<ConnectState>(thread->io());
  // Every failed attempt is one respscope_upstream_connect_errors_total: the shared
  // connection's retries and the spares' count as much as a dedicated client's connect.
  st->done = [thread, done = std::move(done)](UpstreamIo io, UpstreamError error) {
    if (!io.valid()) thread->sink()->OnEvent(analytics::SessionEvent::kUpstreamConnectFailed, 0);
    done(std::move(io), std::move(error));
  };
  st->tls = opts.tls.get();
  asio::generic::stream_protocol::endpoint ep;
  error_code ec;
  if (!upstream->unavailable.empty()) {
    asio::post(thread->io(), [st, why = upstream->unavailable] {
      st->Finish(UpstreamIo(), UpstreamError{why, false});
    });
    return;
  }
  if (upstream->unix_socket) {
    ep = asio::local::stream_protocol::endpoint(upstream->path);
  } else {
    asio::ip::address addr = asio::ip::make_address(upstream->host, ec);
    if (ec) {
      asio::post(thread->io(), [st, host = upstream->host] {
        st->Finish(UpstreamIo(), UpstreamError{"bad address " + host, false});
      });
      return;
    }
    ep = asio::ip::tcp::endpoint(addr, upstream->port);
  }
  st->timer.expires_after(opts.connect_timeout);
  st->timer.async_wait([st](const error_code& ec) {
    if (ec || st->finished) return;
    if (st->awaiting_verdict) {  // nothing after the handshake: accepted, without tickets
      st->tls->NoteSilentAfterHandshake();
      Handover(st);
      return;
    }
    if (st->handshaking) {
      st->FailTls(common::TlsError{common::TlsFailure::kTimeout,
                                   "no TLS handshake within limits.connect_timeout"});
      return;
    }
    error_code ignored;
    st->socket.close(ignored);
    st->Finish(UpstreamIo(), UpstreamError{"connect timeout", false});
  });
  st->tcp = !upstream->unix_socket;
  st->socket.async_connect(ep, [st](const error_code& ec) {
    if (st->finished) return;
    if (ec) {
      st->Finish(UpstreamIo(), UpstreamError{ec.message(), false});
      return;
    }
    if (st->tcp) {
      int one = 1;
      ::setsockopt(st->socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (st->tls != nullptr) {
      StartHandshake(st);
    } else {
      Handover(st);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// SharedUpstream

SharedUpstream::SharedUpstream(ThreadContext* thread, UpstreamPool* pool)
    : thread_(thread), pool_(pool), retry_(thread->io()) {}

SharedUpstream::~SharedUpstream() = default;

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
  if (closed_ || connecting_ || io_.valid()) return;
  connecting_ = true;
  gen_ = thread_->server()->upstream()->generation;
  auto self = shared_from_this();
  ConnectUpstream(thread_, [self](UpstreamIo io, UpstreamError error) {
    self->OnConnected(std::move(io), error);
  });
}

void SharedUpstream::OnUpstreamChanged(uint64_t generation) {
  if (closed_ || gen_ >= generation) return;
  if (io_.valid()) {
    Fail({"the upstream moved to " + thread_->server()->upstream()->display, false}, false);
  } else if (!connecting_) {
    retry_.cancel();  // waiting out a backoff against the old address: try the new one now
    backoff_ = std::chrono::milliseconds(0);
    Connect();
  }
  // Connecting: OnConnected drops what it reached and starts again.
}

void SharedUpstream::OnConnected(UpstreamIo io, const UpstreamError& error) {
  connecting_ = false;
  if (closed_) return;  // io closes itself
  if (gen_ < thread_->upstream_generation()) {
    io.Close();  // reached (or failed to reach) a former master
    Connect();
    return;
  }
  if (!io.valid()) {
    Fail(error, /*connect_failed=*/true);
    return;
  }
  io_ = std::move(io);
  token_ = thread_->poller().Add(io_.fd(), shared_from_this(), 0);
  if (token_ == 0) {
    io_.Close();
    Fail({"cannot watch the socket", false}, true);
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
  if (io_.valid()) {
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
  if (!io_.valid() || closed_) return;
  while (out_sent_ < out_.size()) {
    IoStatus st;
    size_t w = io_.Write(out_.data() + out_sent_, out_.size() - out_sent_, &st);
    if (st == IoStatus::kAgain) {
      writable_ = false;  // OnPoll flushes again on EPOLLOUT
      return;
    }
    if (st != IoStatus::kOk) {
      Fail({"write: " + io_.last_error(), false}, false);
      return;
    }
    out_sent_ += w;
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
  if (!io_.valid()) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_ = true;
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_ = true;
  // TLS reads may wait for room and writes for data (upstream_io.h): any edge retries both.
  if (io_.tls()) readable_ = writable_ = true;
  if (writable_ && out_sent_ < out_.size()) Flush();
  if (io_.valid() && readable_) OnReadable();
}

void SharedUpstream::OnReadable() {
  char* buf = thread_->scratch();
  // Bounded work per wake-up, as for a client connection.
  for (int i = 0; i < Connection::kReadsPerWake; ++i) {
    IoStatus st;
    const size_t got = io_.Read(buf, ThreadContext::kScratch, &st);
    if (st == IoStatus::kAgain) {
      readable_ = false;
      return;
    }
    if (st != IoStatus::kOk) {
      Fail({st == IoStatus::kEof ? "closed by the upstream" : "read: " + io_.last_error(), false},
           false);
      return;
    }
    bool auth_refused = false;
    const int64_t now = NowNs();
    bool ok = router_.Feed(std::string_view(buf, got),
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
                           },
                           [](const std::shared_ptr<Connection>& owner) {
                             return owner ? owner->RawWanted() : 0;
                           },
                           [now](const std::shared_ptr<Connection>& owner,
                                 const resp::ReplyInfo& reply) {
                             if (owner) owner->ObserveShared(reply, now);
                           });
    if (auth_refused) {
      spdlog::error("upstream refused the URL's credentials on a shared connection; clients "
                    "that share are closed until it accepts them");
      Fail({"the upstream refused the URL's credentials", false}, true);
      return;
    }
    if (!ok) {
      Fail({"reply out of step (unexpected or malformed bytes)", false}, false);
      return;
    }
    if (got < ThreadContext::kScratch && io_.short_read_drains()) {
      readable_ = false;
      return;
    }
  }
  // More may be waiting: continue after the other connections of this thread had a turn.
  auto self = shared_from_this();
  asio::post(thread_->io(), [self] {
    if (self->io_.valid() && self->readable_) self->OnReadable();
  });
}

void SharedUpstream::Fail(const UpstreamError& error, bool connect_failed) {
  const std::string& why = error.why;
  std::vector<std::shared_ptr<Connection>> owed;
  router_.ForEachOwner([&](const std::shared_ptr<Connection>& c) {
    if (c && (owed.empty() || owed.back() != c)) owed.push_back(c);
  });
  router_.Clear();
  out_.clear();
  out_sent_ = 0;
  out_commands_ = 0;
  if (io_.valid()) {
    thread_->poller().Remove(token_, io_.fd());
    io_.Close();
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
  for (auto& c : owed) c->OnSharedLost(error, connect_failed);
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
  if (io_.valid()) {
    thread_->poller().Remove(token_, io_.fd());
    io_.Close();
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

UpstreamPool::~UpstreamPool() = default;

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
    thread_->poller().Remove(s.token, s.io.fd());
    s.io.Close();
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
    Spare s = std::move(spares_.back());
    spares_.pop_back();
    thread_->poller().Remove(s.token, s.io.fd());
    stats_->spare.Add(-1);
    HandTo(client, std::move(s.io));
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
  ConnectUpstream(thread_, [self, gen](UpstreamIo io, UpstreamError error) {
    self->OnSpareConnected(std::move(io), error, gen);
  });
}

void UpstreamPool::OnUpstreamChanged(uint64_t generation) {
  for (auto& s : shared_) s->OnUpstreamChanged(generation);
  for (size_t i = spares_.size(); i-- > 0;) {
    if (spares_[i].gen >= generation) continue;
    thread_->poller().Remove(spares_[i].token, spares_[i].io.fd());
    spares_.erase(spares_.begin() + static_cast<long>(i));  // its UpstreamIo closes
    stats_->spare.Add(-1);
  }
  retry_.cancel();
  FillSpares();
}

void UpstreamPool::HandTo(const std::shared_ptr<Connection>& client, UpstreamIo io) {
  stats_->pinned.Add(1);
  client->OnPrivateUpstream(std::move(io), {});
}

void UpstreamPool::FillSpares() {
  if (stopped_) return;
  while (spares_.size() + connecting_ < options_.spare_connections + waiting_.size()) {
    ConnectSpare();
  }
}

void UpstreamPool::OnSpareConnected(UpstreamIo io, const UpstreamError& error, uint64_t gen) {
  --connecting_;
  if (stopped_) return;  // io closes itself
  if (gen < thread_->upstream_generation()) {
    io.Close();  // a former master's: connect to the current one instead
    FillSpares();
    return;
  }
  if (!io.valid()) {
    // Clients waiting for a private connection get what a dedicated client gets.
    while (!waiting_.empty()) {
      auto c = waiting_.front().lock();
      waiting_.pop_front();
      if (c) c->OnPrivateUpstream(UpstreamIo(), error);
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
      HandTo(c, std::move(io));
      FillSpares();
      return;
    }
  }
  Spare s;
  s.gen = gen;
  s.tag = next_tag_++;
  s.token = thread_->poller().Add(io.fd(), shared_from_this(), s.tag);
  if (s.token == 0) return;  // io closes itself
  s.io = std::move(io);
  spares_.push_back(std::move(s));
  stats_->spare.Add(1);
}

// A spare says something only when it is closed (Redis's `timeout`, a restart): replace it.
// Over TLS it also receives the server's post-handshake messages (TLS 1.3 session tickets):
// those are read, and the spare stays as long as they bring no application byte nor an end.
void UpstreamPool::OnPoll(uint32_t events, uint32_t tag) {
  if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) return;
  for (size_t i = 0; i < spares_.size(); ++i) {
    if (spares_[i].tag != tag) continue;
    if (spares_[i].io.tls() && !(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      IoStatus st;
      spares_[i].io.Read(thread_->scratch(), ThreadContext::kScratch, &st);
      if (st == IoStatus::kAgain) return;
    }
    thread_->poller().Remove(spares_[i].token, spares_[i].io.fd());
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
