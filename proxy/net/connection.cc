#include "proxy/net/connection.h"

#include "proxy/net/server.h"
#include "proxy/resp/resp_util.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace respscope::net {

namespace asio = boost::asio;
using boost::system::error_code;

Connection::Connection(ThreadContext* thread, asio::generic::stream_protocol::socket client,
                       uint64_t id, ClientKind kind)
    : thread_(thread),
      client_(std::move(client)),
      kind_(kind),
      connect_timer_(thread->io()),
      id_(id) {}

Connection::~Connection() = default;

void Connection::Start() {
  peer_ = ClientPeerName(client_, kind_ == ClientKind::kUnix);
  error_code ec;
  if (kind_ == ClientKind::kTcp) client_.set_option(asio::ip::tcp::no_delay(true), ec);
  thread_->sink()->OnEvent(analytics::SessionEvent::kClientConnected, id_);
  if (thread_->pool()) {
    StartShared();
    return;
  }

  // Connect (and, for rediss://, the TLS handshake) within limits.connect_timeout, to the
  // upstream address of now (Sentinel may move it: OnUpstreamChanged closes this connection).
  upstream_gen_ = thread_->server()->upstream()->generation;
  auto self = shared_from_this();
  ConnectUpstream(thread_, [self](UpstreamIo io, UpstreamError error) {
    self->OnConnected(std::move(io), error);
  });
}

void Connection::OnConnected(UpstreamIo io, const UpstreamError& error) {
  if (closed_) return;  // io closes itself
  if (!io.valid()) {
    FailConnect(error);
    return;
  }
  if (upstream_gen_ < thread_->upstream_generation()) {
    Close();  // connected to a master that was replaced meanwhile
    return;
  }
  connected_ = true;
  Server* server = thread_->server();
  server->SetUpstreamUp(true);
  error_code ignored;
  // Both sockets leave Asio's reactor for the thread's poller (the upstream's already has).
  fd_[kClient] = client_.release(ignored);
  upstream_ = std::move(io);
  fd_[kUpstream] = upstream_.fd();
  if (fd_[kClient] < 0) {
    Close();
    return;
  }
  ::fcntl(fd_[kClient], F_SETFL, ::fcntl(fd_[kClient], F_GETFL, 0) | O_NONBLOCK);
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

void Connection::FailConnect(const UpstreamError& error) {
  if (closed_ || connected_) return;
  connected_ = false;
  Server* server = thread_->server();
  server->SetUpstreamUp(false);
  // The application sees one error reply naming respscope and the upstream, then a close.
  auto msg = std::make_shared<std::string>(UpstreamErrorReply(*server->upstream(), error));
  auto self = shared_from_this();
  asio::async_write(client_, asio::buffer(*msg),
                    [self, msg](const error_code&, size_t) { self->Close(); });
}

void Connection::ArmRead(Direction& d) {
  if (closed_ || d.waiting || d.writing || d.eof) return;
  if (draining_ && !d.to_client) return;
  if (SharedMode()) {
    // Only the client is read: not while its replies back up (a client that does not read
    // gets no more work done), not while the shared connection is congested, not once a pin
    // holds its bytes.
    if (d.to_client || mode_ != Mode::kShared || client_done_ || down_.writing ||
        !deferred_.empty()) {
      return;
    }
    if (shared_->congested()) {
      shared_->AddWaiter(shared_from_this());
      return;
    }
  }
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
  // TLS reads may wait for room and writes for data (upstream_io.h): any edge retries both.
  if (side == kUpstream && upstream_.tls()) readable_[side] = writable_[side] = true;
  if (lingering_) {
    if (side == kClient && readable_[kClient]) DiscardClientInput();
    return;
  }
  if (SharedMode()) {
    if (side != kClient) return;
    if (down_.writing && writable_[kClient]) FlushBacklog(down_);
    if (closed_ || lingering_) return;
    if (up_.waiting && readable_[kClient]) {
      up_.waiting = false;
      ReadClientShared();
    }
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
  if (SharedMode()) {
    ReadClientShared();
    return;
  }
  char* buf = thread_->scratch();
  analytics::ObservationSink* sink = thread_->sink();
  const int from = d.from(), to = d.to();
  const size_t read_size = thread_->read_size();
  // A short read means drained on a plain socket, not on a TLS one (upstream_io.h).
  const bool drains = from == kClient || upstream_.short_read_drains();
  for (int i = 0; i < kReadsPerWake; ++i) {
    IoStatus st;
    const size_t got = Recv(from, buf, read_size, &st);
    if (st == IoStatus::kAgain) {
      readable_[from] = false;
      break;
    }
    if (st != IoStatus::kOk) {
      OnEof(d);
      return;
    }
    ++reads_;
    const bool short_read = drains && got < read_size;
    std::string_view bytes(buf, got);
    if (d.to_client && swallow_ > 0) {
      SwallowReplay(&bytes);
      if (closed_) return;
      if (bytes.empty()) {
        if (short_read && !hup_[d.from()]) {
          readable_[d.from()] = false;
          break;
        }
        continue;
      }
    }
    const char* data = bytes.data();
    const size_t n = bytes.size();
    int64_t now = NowNs();
    // Forward first, observe after: analytics never delays the bytes.
    size_t written = 0;
    while (written < n && writable_[to]) {
      IoStatus ws;
      const size_t w = Send(to, data + written, n - written, &ws);
      if (ws == IoStatus::kAgain) {
        writable_[to] = false;
        break;
      }
      if (ws != IoStatus::kOk) {
        Close();
        return;
      }
      written += w;
    }
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
      d.backlog.assign(data + written, n - written);
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
    if (short_read && !hup_[d.from()]) {
      readable_[d.from()] = false;
      break;
    }
  }
  ArmRead(d);
}

void Connection::FlushBacklog(Direction& d) {
  const int to = d.to();
  while (d.backlog_sent < d.backlog.size()) {
    IoStatus st;
    const size_t w = Send(to, d.backlog.data() + d.backlog_sent,
                          d.backlog.size() - d.backlog_sent, &st);
    if (st == IoStatus::kAgain) {
      writable_[to] = false;
      return;  // OnPoll comes back when there is room
    }
    if (st != IoStatus::kOk) {
      Close();
      return;
    }
    d.backlog_sent += w;
  }
  OnWritten(d);
}

size_t Connection::Recv(int side, char* buf, size_t n, IoStatus* status) {
  if (side == kUpstream) return upstream_.Read(buf, n, status);
  return PlainRead(fd_[kClient], buf, n, status);
}

size_t Connection::Send(int side, const char* buf, size_t n, IoStatus* status) {
  if (side == kUpstream) return upstream_.Write(buf, n, status);
  return PlainWrite(fd_[kClient], buf, n, status);
}

void Connection::OnWritten(Direction& d) {
  d.writing = false;
  if (closed_ || lingering_) return;
  d.backlog.clear();
  d.backlog_sent = 0;
  if (d.backlog.capacity() > ThreadContext::kScratch) std::string().swap(d.backlog);
  if (SharedMode()) {
    // The client took its buffered replies: read it again, or close as it asked.
    AfterOwedChange();
    if (!closed_ && !lingering_) ArmRead(up_);
    return;
  }
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
    upstream_.ShutdownWrite();
    if (!down_.writing && !down_.waiting) ArmRead(down_);
  }
}

bool Connection::DrainDone() const {
  if (SharedMode()) {
    return owed_.empty() && deferred_.empty() && !down_.writing && mode_ != Mode::kSwitching;
  }
  return core_ && core_->observing() && core_->pending() == 0 && !core_->reply_in_progress() &&
         !down_.writing;
}

void Connection::DrainSweep(int64_t now_ns, int64_t quiet_ns) {
  if (closed_ || lingering_ || draining_) return;
  const bool idle = connected_ && DrainDone() && (!SharedMode() || held_.empty()) &&
                    reads_ == drain_seen_reads_;
  if (!idle || drain_idle_since_ < 0) {
    drain_seen_reads_ = reads_;
    drain_idle_since_ = now_ns;
    return;
  }
  if (now_ns - drain_idle_since_ >= quiet_ns) {
    draining_ = true;  // no reading from here on
    GracefulClose();
  }
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
  upstream_.Close();
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
  upstream_.Close();
  private_.Close();
  if (pinned_) thread_->pool_stats()->pinned.Add(-1);
  owed_.clear();
  held_.clear();
  thread_->sink()->OnEvent(analytics::SessionEvent::kClientClosed, id_);
  thread_->Remove(id_);
  thread_->server()->OnClosed();
}

// ---------------------------------------------------------------------------------------------
// Shared mode (upstream_pooling: auto): see pool.h.

namespace {

constexpr std::string_view kOk = "+OK\r\n";

bool AuthMatches(const UpstreamPool& pool, const resp::Request& req) {
  // Only fully captured arguments can match (an argument over the capture limit is empty).
  for (size_t i = 1; i < req.args.size(); ++i) {
    if (req.args[i].size() != req.lengths[i]) return false;
  }
  if (req.argc == 2 && req.args.size() == 2) return pool.MatchesCredentials("default", req.args[1]);
  if (req.argc == 3 && req.args.size() == 3) return pool.MatchesCredentials(req.args[1], req.args[2]);
  return false;
}

// CLIENT SETINFO LIB-NAME|LIB-VER value, with a value Redis 7.2 accepts ('!' to '~').
bool PlainSetInfo(const resp::Request& req) {
  if (req.argc != 4 || req.args.size() != 4 || req.args[3].size() != req.lengths[3]) return false;
  if (!resp::EqualsLower(req.args[2], "lib-name") && !resp::EqualsLower(req.args[2], "lib-ver")) {
    return false;
  }
  for (char c : req.args[3]) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

PinReason ReasonOf(const commands::CommandInfo& info) {
  using commands::SessionRole;
  switch (info.role) {
    case SessionRole::kMulti:
    case SessionRole::kWatch: return PinReason::kTransaction;
    case SessionRole::kSubscribe:
    case SessionRole::kPSubscribe:
    case SessionRole::kSSubscribe:
    case SessionRole::kUnsubscribe:
    case SessionRole::kPUnsubscribe:
    case SessionRole::kSUnsubscribe: return PinReason::kPubSub;
    case SessionRole::kMonitor: return PinReason::kMonitor;
    case SessionRole::kHello: return PinReason::kHello;
    case SessionRole::kReset: return PinReason::kReset;
    case SessionRole::kClientSetName:
    case SessionRole::kClientReply: return PinReason::kClient;
    default: break;
  }
  if (info.name.starts_with("client")) return PinReason::kClient;
  if (info.flags & commands::kFlagBlocking) return PinReason::kBlocking;
  return PinReason::kOther;
}

}  // namespace

void Connection::StartShared() {
  Server* server = thread_->server();
  UpstreamPool* pool = thread_->pool();
  error_code ignored;
  fd_[kClient] = client_.release(ignored);
  if (fd_[kClient] < 0) {
    Close();
    return;
  }
  ::fcntl(fd_[kClient], F_SETFL, ::fcntl(fd_[kClient], F_GETFL, 0) | O_NONBLOCK);
  core_ = std::make_unique<session::SessionCore>(server->table(), thread_->sink(), id_, peer_,
                                                 &server->options().session);
  core_->UseCapturePolicy(&framer_);
  core_->SetUpstreamMode(analytics::kObsShared, nullptr);
  mode_ = Mode::kShared;
  connected_ = true;  // nothing of its own to connect
  shared_ = pool->Assign();
  // With credentials in the URL the shared connections are authenticated: a client shares
  // only once it has said AUTH with exactly those credentials.
  authed_ = !pool->has_credentials();
  up_.to_client = false;
  down_.to_client = true;
  readable_[kClient] = writable_[kClient] = true;
  token_[kClient] = thread_->poller().Add(fd_[kClient], shared_from_this(), kClient);
  if (token_[kClient] == 0) {
    Close();
    return;
  }
  ArmRead(up_);
}

void Connection::ReadClientShared() {
  char* buf = thread_->scratch();
  analytics::ObservationSink* sink = thread_->sink();
  for (int i = 0; i < kReadsPerWake; ++i) {
    if (closed_ || lingering_ || mode_ != Mode::kShared || client_done_ || draining_) return;
    ssize_t got = ::recv(fd_[kClient], buf, ThreadContext::kScratch, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      readable_[kClient] = false;
      break;
    }
    if (got <= 0) {
      // The client is done sending: deliver what it is owed, then close.
      client_done_ = true;
      held_.clear();
      AfterOwedChange();
      return;
    }
    ++reads_;
    const size_t n = static_cast<size_t>(got);
    std::string_view bytes(buf, n);
    sink->OnBytes(n, 0);  // observed as framed, in RouteClientBytes
    if (!RouteClientBytes(bytes)) return;
    if (n < ThreadContext::kScratch && !hup_[kClient]) {
      readable_[kClient] = false;
      break;
    }
  }
  ArmRead(up_);
}

bool Connection::RouteClientBytes(std::string_view chunk) {
  const PoolOptions& po = thread_->pool()->options();
  const std::shared_ptr<Connection> self = shared_from_this();
  const char* const chunk_end = chunk.data() + chunk.size();
  std::string_view in = chunk;
  // Consecutive shareable commands of this read leave as one run: one copy, one route.
  const char* run_begin = in.data();
  uint32_t run_commands = 0;
  auto flush_run = [&](const char* end) {
    if (run_commands == 0) return;
    shared_->Send(self, std::string_view(run_begin, static_cast<size_t>(end - run_begin)),
                  run_commands, OwesRouted());
    Owe(run_commands);
    run_commands = 0;
  };
  resp::Request req;
  const int64_t now = NowNs();
  while (!in.empty()) {
    if (routed_outstanding_ + run_commands >= kMaxRoutedPerClient) {
      flush_run(in.data());
      deferred_.assign(in);
      return false;
    }
    const char* cmd_begin = in.data();
    const resp::ScanStatus st = framer_.Next(&in, &req);
    if (st == resp::ScanStatus::kNeedMore) {
      flush_run(cmd_begin);
      held_.append(cmd_begin, static_cast<size_t>(chunk_end - cmd_begin));
      if (held_.size() > po.max_shared_request) {
        BeginPin(PinReason::kLargeRequest);
        return false;
      }
      // Before AUTH, Redis refuses long commands as soon as their headers say so
      // ("unauthenticated multibulk length"): only an AUTH with the URL's credentials can still
      // be answered here, so anything longer goes to Redis at once.
      if (!authed_ && (framer_.declared_args() > 3 ||
                       held_.size() + framer_.body_remaining() >
                           thread_->pool()->auth_command().size() + 16)) {
        BeginPin(PinReason::kAuth);
        return false;
      }
      return true;
    }
    if (st == resp::ScanStatus::kError) {
      // Redis answers a protocol error and closes; nothing of it reaches a shared connection.
      flush_run(cmd_begin);
      held_.clear();
      thread_->sink()->OnEvent(analytics::SessionEvent::kClientProtocolError, id_);
      core_->OnClientProtocolError();
      QueueLocal("-ERR " + framer_.error() + "\r\n", /*close_after=*/true);
      return false;
    }
    PinReason reason = PinReason::kOther;
    std::string local;
    bool close_after = false;
    bool replay = false;
    Verdict v = Verdict::kPin;
    const commands::CommandInfo& info = core_->Resolve(req);
    if (held_.size() + static_cast<size_t>(in.data() - cmd_begin) > po.max_shared_request) {
      reason = PinReason::kLargeRequest;
    } else {
      v = Decide(req, info, &reason, &local, &close_after, &replay);
    }
    // Observed now unless pinned (BeginPin hands the held bytes over), before a local reply.
    if (v != Verdict::kPin) core_->OnFramedRequest(req, info, now);
    const std::string_view rest(cmd_begin, static_cast<size_t>(in.data() - cmd_begin));
    if (v == Verdict::kShare) {
      if (held_.empty()) {
        ++run_commands;
        continue;
      }
      // Began in an earlier read (only the first command of a read can have).
      held_.append(rest);
      shared_->Send(self, held_, 1, OwesRouted());
      Owe(1);
      held_.clear();
      run_begin = in.data();
      continue;
    }
    flush_run(cmd_begin);
    if (v == Verdict::kLocal) {
      if (replay) {
        replay_.append(held_);
        replay_.append(rest);
        ++replay_commands_;
      }
      held_.clear();
      run_begin = in.data();
      QueueLocal(std::move(local), close_after);
      if (close_after || closed_) return false;
      continue;
    }
    // Pin: this command and everything after it wait for the switch.
    held_.append(cmd_begin, static_cast<size_t>(chunk_end - cmd_begin));
    BeginPin(reason);
    return false;
  }
  flush_run(in.data());
  return true;
}

Connection::Verdict Connection::Decide(const resp::Request& req,
                                       const commands::CommandInfo& info, PinReason* reason,
                                       std::string* local, bool* close_after, bool* replay) {
  if (req.inline_form || req.args.empty()) {
    *reason = PinReason::kInline;
    return Verdict::kPin;
  }
  const commands::CommandTable& table = *thread_->server()->table();
  if (info.id == 0) {
    *reason = PinReason::kUnknown;
    return Verdict::kPin;
  }
  if (info.has_subcommands && req.argc > 1) {
    // A subcommand the table does not know. A table read from the upstream knows all of its
    // server's: Redis refuses the command and nothing changes, so it may share.
    if (table.from_upstream()) return Verdict::kShare;
    *reason = PinReason::kUnknown;
    return Verdict::kPin;
  }
  if ((info.flags & commands::kFlagBlocking) && table.IsBlockingCall(info, req.args)) {
    *reason = PinReason::kBlocking;
    return Verdict::kPin;
  }
  UpstreamPool& pool = *thread_->pool();
  if (info.pool == commands::PoolRule::kHello) {
    // HELLO [2 [AUTH user pass]]: the reply names the server (its `id` field is the shared
    // connection's); the state stays RESP2, database 0, the pool's user.
    const bool plain = req.argc == 1 || (req.argc == 2 && req.args.size() == 2 &&
                                         req.args[1] == "2");
    const bool pool_auth = req.argc == 5 && req.args.size() == 5 && req.args[1] == "2" &&
                           resp::EqualsLower(req.args[2], "auth") &&
                           req.args[3].size() == req.lengths[3] &&
                           req.args[4].size() == req.lengths[4] &&
                           pool.MatchesCredentials(req.args[3], req.args[4]);
    if ((plain && authed_) || pool_auth) {
      authed_ = true;
      return Verdict::kShare;
    }
    *reason = PinReason::kHello;
    return Verdict::kPin;
  }
  if (!authed_) {
    // Not yet the pool's user: only AUTH with the URL's credentials shares; anything else goes
    // to a connection of its own, where Redis answers it (NOAUTH, or as the default user).
    if (info.pool == commands::PoolRule::kAuth && AuthMatches(pool, req)) {
      authed_ = true;
      *local = kOk;
      return Verdict::kLocal;
    }
    *reason = PinReason::kAuth;
    return Verdict::kPin;
  }
  switch (info.pool) {
    case commands::PoolRule::kShare:
      return Verdict::kShare;
    case commands::PoolRule::kAuth:
      if (AuthMatches(pool, req)) {
        *local = kOk;
        return Verdict::kLocal;
      }
      *reason = PinReason::kAuth;
      return Verdict::kPin;
    case commands::PoolRule::kSelect:
      if (req.argc == 2 && req.args.size() == 2 && req.args[1] == "0") {
        *local = kOk;
        return Verdict::kLocal;
      }
      *reason = PinReason::kSelect;
      return Verdict::kPin;
    case commands::PoolRule::kSetInfo:
      // Only a server that lists CLIENT SETINFO (7.2+) answers +OK; with the built-in table
      // respscope cannot know, and lets Redis answer.
      if (table.from_upstream() && PlainSetInfo(req)) {
        *local = kOk;
        *replay = true;
        return Verdict::kLocal;
      }
      *reason = PinReason::kClient;
      return Verdict::kPin;
    case commands::PoolRule::kQuit:
      *local = kOk;
      *close_after = true;
      return Verdict::kLocal;
    case commands::PoolRule::kHello:  // decided above
    case commands::PoolRule::kPin:
      break;
  }
  *reason = ReasonOf(info);
  return Verdict::kPin;
}

void Connection::Owe(uint32_t routed) {
  routed_outstanding_ += routed;
  if (!owed_.empty() && owed_.back().routed > 0) {
    owed_.back().routed += routed;
    return;
  }
  owed_.push_back(Owed{routed, {}});
}

void Connection::QueueLocal(std::string bytes, bool close_after) {
  if (close_after) client_done_ = true;
  owed_.push_back(Owed{0, std::move(bytes)});
  FlushLocal();
  AfterOwedChange();
}

// Sends the locally answered replies at the front of owed_ (their turn has come).
void Connection::FlushLocal() {
  while (!owed_.empty() && owed_.front().routed == 0) {
    Owed e = std::move(owed_.front());
    owed_.pop_front();
    SendToClient(e.local);
    if (closed_) return;
  }
}

void Connection::DeliverShared(std::string_view bytes, uint32_t replies) {
  if (closed_ || lingering_) return;  // closed with replies in flight: read and dropped
  SendToClient(bytes, /*observe=*/false);
  if (closed_ || replies == 0) return;
  routed_outstanding_ -= std::min(routed_outstanding_, replies);
  if (!deferred_.empty() && routed_outstanding_ <= kMaxRoutedPerClient / 2) {
    // Frame what waited, on a later turn (not inside the shared connection's delivery).
    auto self = shared_from_this();
    asio::post(thread_->io(), [self] { self->ResumeDeferred(); });
  }
  // owed_.front() is the run these replies belong to (the router delivers in order).
  while (replies > 0 && !owed_.empty()) {
    Owed& front = owed_.front();
    const uint32_t take = std::min(replies, front.routed);
    front.routed -= take;
    replies -= take;
    if (front.routed == 0) owed_.pop_front();
    FlushLocal();
    if (closed_) return;
  }
  AfterOwedChange();
}

void Connection::ResumeDeferred() {
  if (closed_ || lingering_ || mode_ != Mode::kShared || deferred_.empty()) return;
  if (routed_outstanding_ > kMaxRoutedPerClient / 2) return;  // a later delivery resumes it
  std::string pending = std::move(deferred_);
  deferred_.clear();
  if (RouteClientBytes(pending)) ArmRead(up_);
  AfterOwedChange();
}

void Connection::AfterOwedChange() {
  if (closed_ || lingering_ || !owed_.empty() || !deferred_.empty()) return;
  if (client_done_ || draining_) {
    if (!down_.writing && mode_ != Mode::kSwitching) GracefulClose();
    return;
  }
  if (mode_ == Mode::kSwitching) TrySwitch();
}

void Connection::SendToClient(std::string_view bytes, bool observe) {
  if (bytes.empty()) return;
  if (observe) core_->OnUpstreamBytes(bytes, NowNs());
  thread_->sink()->OnBytes(0, bytes.size());
  if (down_.writing) {
    const size_t pending = down_.backlog.size() - down_.backlog_sent;
    if (pending + bytes.size() > thread_->pool()->options().max_client_buffer) {
      // The client stopped reading: never let it hold the shared connection's replies.
      thread_->pool_stats()->slow_client_closes.Add(1);
      if (thread_->pool_stats()->slow_client_closes.Load() % 100 == 1) {
        spdlog::warn("client {} closed: {} bytes of replies buffered (limits."
                     "max_inflight_bytes_per_client)",
                     peer_, pending + bytes.size());
      }
      Close();
      return;
    }
    down_.backlog.append(bytes);
    return;
  }
  size_t written = 0;
  while (written < bytes.size() && writable_[kClient]) {
    ssize_t w = ::send(fd_[kClient], bytes.data() + written, bytes.size() - written,
                       MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      writable_[kClient] = false;
      break;
    }
    if (w < 0) {
      Close();
      return;
    }
    written += static_cast<size_t>(w);
  }
  if (written < bytes.size()) {
    down_.backlog.assign(bytes.data() + written, bytes.size() - written);
    down_.backlog_sent = 0;
    down_.writing = true;
    thread_->sink()->OnEvent(analytics::SessionEvent::kBackpressureStall, id_);
  }
}

void Connection::BeginPin(PinReason reason) {
  // From the pinned command on, the session observes the client's bytes as they come (dedicated
  // mode); those read so far wait in held_.
  core_->SetUpstreamMode(analytics::kObsPinned, PinReasonName(reason));
  core_->OnClientBytes(held_, NowNs());
  mode_ = Mode::kSwitching;
  up_.waiting = false;
  thread_->pool_stats()->pins[static_cast<size_t>(reason)].Add(1);
  thread_->pool()->RequestPrivate(shared_from_this());
}

void Connection::OnPrivateUpstream(UpstreamIo io, const UpstreamError& error) {
  if (closed_ || lingering_) return;  // io closes itself
  if (!io.valid()) {
    // What a dedicated client gets when the upstream cannot be reached, in its turn.
    held_.clear();
    mode_ = Mode::kShared;
    QueueLocal(UpstreamErrorReply(*thread_->server()->upstream(), error),
               /*close_after=*/true);
    return;
  }
  private_ = std::move(io);
  upstream_gen_ = thread_->upstream_generation();
  TrySwitch();
}

// The pinned command goes out only after every reply owed on the shared connection has been
// delivered: the client sees its replies in its own order, and anything it sends from now on
// reaches Redis after everything it sent before (no other client's command can overtake it on
// the private connection, and the shared one has already answered).
void Connection::TrySwitch() {
  if (closed_ || lingering_ || mode_ != Mode::kSwitching || !owed_.empty() || !private_.valid()) {
    return;
  }
  UpstreamPool& pool = *thread_->pool();
  upstream_ = std::move(private_);
  fd_[kUpstream] = upstream_.fd();
  token_[kUpstream] = thread_->poller().Add(fd_[kUpstream], shared_from_this(), kUpstream);
  if (token_[kUpstream] == 0) {
    Close();
    return;
  }
  mode_ = Mode::kDedicated;
  pinned_ = true;
  // The private connection starts in the default state: bring it to the client's (its AUTH
  // and CLIENT SETINFO, answered by respscope so far), dropping those replies.
  std::string prefix;
  swallow_ = 0;
  if (pool.has_credentials() && authed_) {
    prefix = pool.auth_command();
    ++swallow_;
  }
  prefix.append(replay_);
  swallow_ += replay_commands_;
  std::string().swap(replay_);
  replay_commands_ = 0;
  readable_[kUpstream] = writable_[kUpstream] = true;
  up_.backlog = std::move(prefix);
  up_.backlog.append(held_);
  up_.backlog_sent = 0;
  std::string().swap(held_);
  if (!up_.backlog.empty()) {
    up_.writing = true;
    FlushBacklog(up_);
  } else {
    ArmRead(up_);
  }
  if (!closed_) ArmRead(down_);
}

void Connection::SwallowReplay(std::string_view* bytes) {
  resp::ReplyInfo info;
  while (swallow_ > 0 && !bytes->empty()) {
    resp::ScanStatus st = swallow_scanner_.Next(bytes, &info);
    if (st == resp::ScanStatus::kNeedMore) return;
    if (st == resp::ScanStatus::kError) {
      spdlog::warn("client {}: unreadable reply to a replayed command; closing", peer_);
      Close();
      return;
    }
    if (info.is_error) {
      spdlog::warn("client {}: the upstream refused a replayed command after a pin: {}", peer_,
                   info.error_text);
    }
    --swallow_;
  }
}

void Connection::OnSharedLost(const UpstreamError& error, bool connect_failed) {
  if (closed_ || lingering_) return;
  if (!connect_failed) {
    Close();  // as if its own connection had dropped
    return;
  }
  owed_.clear();
  held_.clear();
  if (mode_ == Mode::kSwitching) mode_ = Mode::kShared;
  QueueLocal(UpstreamErrorReply(*thread_->server()->upstream(), error),
             /*close_after=*/true);
}

void Connection::OnUpstreamChanged(uint64_t generation) {
  if (closed_ || upstream_gen_ >= generation) return;
  // Dedicated (from the start or after a pin), or holding the pin's descriptor: bound to the
  // old address. Shared and waiting for a spare: nothing of its own there yet.
  if (mode_ == Mode::kDedicated || private_.valid()) Close();
}

void Connection::ResumeReading() {
  if (mode_ == Mode::kShared && !closed_ && !lingering_) ArmRead(up_);
}

}  // namespace respscope::net
