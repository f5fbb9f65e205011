// Connection: one client socket paired with its own upstream socket, on one IO thread.
//
// Bytes move in two independent directions, each a small reactor loop:
//
//   readable(from) -> recv into the thread's scratch buffer (64 KiB)
//                  -> send to `to` at once (non-blocking)
//                  -> whatever did not fit goes to this direction's backlog, written when `to`
//                     is writable again; `from` is not read again until it drains
//                  -> the same bytes are handed to the SessionCore (observation only)
//
// Once the upstream is connected both sockets leave Asio for the thread's Poller (registered
// once, edge-triggered); readiness is kept here per socket until a read or write reports
// EAGAIN or a short read. Asio still does the accept, the connect, the timers and the error
// reply when the upstream is unreachable.
//
// So per connection, memory in flight is at most one read per direction, whatever the peer
// does, and an idle connection holds no buffer at all. A direction reads at most
// kReadsPerWake times before yielding to other connections on the thread.
//
// With upstream_pooling: auto a connection starts in shared mode (pool.h): it has no upstream
// socket of its own; its complete commands go to its thread's shared connection, framed by a
// RequestScanner, and its replies come back through DeliverShared(). Commands respscope
// answers itself (AUTH with the URL's credentials, SELECT 0, CLIENT SETINFO, QUIT) take their
// place in the same reply order (owed_). The first command that needs connection state pins
// the connection: it is held (with everything after it) until every reply owed on the shared
// connection has been delivered, then the connection takes a spare upstream socket and runs in
// dedicated mode from then on, as if it had been dedicated from the start.
//
// Lifetime: owned by shared_ptr; every pending handler holds one, and so does a shared
// connection for every reply it owes. Thread: all methods run on the owning io_context's
// thread.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <deque>

#include "proxy/net/pool.h"
#include "proxy/net/poller.h"
#include "proxy/resp/reply_scanner.h"
#include "proxy/resp/request_scanner.h"
#include "proxy/session/session_core.h"

namespace respscope::net {

struct UpstreamAddress {
  bool unix_socket = false;
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string path;
  std::string display;  // for messages: "redis://127.0.0.1:6379" (no credentials)
  // Non-empty: no address is known (a host name that does not resolve yet; Sentinel: no
  // working master); why, for the error reply every connect gets meanwhile.
  std::string unavailable;
  // Server::SetUpstream numbers the addresses 1, 2, ...: a connection made with an older one
  // belongs to an upstream that is no longer the upstream.
  uint64_t generation = 0;
};

class ThreadContext;

// What kind of listener accepted the client: TCP (TCP_NODELAY, "host:port" peer) or a Unix
// socket ("unix:pid=N" peer).
enum class ClientKind : uint8_t { kTcp, kUnix };

class Connection : public Pollable, public std::enable_shared_from_this<Connection> {
 public:
  static constexpr int kReadsPerWake = 16;

  Connection(ThreadContext* thread, boost::asio::generic::stream_protocol::socket client,
             uint64_t id, ClientKind kind);
  ~Connection() override;

  void Start();
  // SIGTERM, first phase (ThreadContext::BeginDrain): the client is served as usual; called
  // every tick, this closes the connection (after its last reply, see GracefulClose) once it
  // has had nothing in flight and read nothing for `quiet_ns`.
  void DrainSweep(int64_t now_ns, int64_t quiet_ns);
  // Last phase (ThreadContext::FinishDrain): stop reading the client; close once no reply is
  // outstanding.
  void BeginDrain();
  void Close();
  uint64_t id() const { return id_; }
  // The upstream moved (ThreadContext::OnUpstreamChanged): a client with an upstream
  // connection of its own to an older address is closed, as Redis closes the clients of a
  // demoted master. A client that shares has nothing there; it follows the shared connection.
  void OnUpstreamChanged(uint64_t generation);

  void OnPoll(uint32_t events, uint32_t side) override;

  // Shared mode, called by the thread's SharedUpstream and UpstreamPool.
  // Bytes of replies owed to this client, in order; `replies` of them complete here.
  // Replies are observed as the shared connection's router cuts them (ObserveShared, before
  // their bytes arrive here); RawWanted: raw bytes wanted of the next reply owed (scripts).
  void DeliverShared(std::string_view bytes, uint32_t replies);
  void ObserveShared(const resp::ReplyInfo& reply, int64_t now_ns) {
    if (!closed_ && !lingering_) core_->OnFramedReply(reply, now_ns);
  }
  size_t RawWanted() { return closed_ || lingering_ ? 0 : core_->RawWanted(); }
  // The shared connection is gone with replies owed to this client. connect_failed: it never
  // reached the upstream (the client gets the error reply a dedicated client would get).
  void OnSharedLost(const UpstreamError& error, bool connect_failed);
  // The shared connection has room again.
  void ResumeReading();
  // A private upstream connection for the pin (this connection owns it), or an invalid one and
  // why.
  void OnPrivateUpstream(UpstreamIo io, const UpstreamError& error);

 private:
  enum class Mode : uint8_t { kShared, kSwitching, kDedicated };
  // What the client is owed, in order: replies from the shared connection, or bytes
  // respscope answers itself.
  struct Owed {
    uint32_t routed = 0;
    std::string local;
  };
  enum class Verdict : uint8_t { kShare, kLocal, kPin };
  enum Side : uint32_t { kClient = 0, kUpstream = 1 };
  struct Direction {
    bool to_client = false;
    std::string backlog;     // bytes read but not yet written to the other side
    size_t backlog_sent = 0;  // of which already written
    bool waiting = false;    // wants to read `from` once it is readable
    bool writing = false;    // the backlog is not written yet
    bool eof = false;
    Side from() const { return to_client ? kUpstream : kClient; }
    Side to() const { return to_client ? kClient : kUpstream; }
  };

  void OnConnected(UpstreamIo io, const UpstreamError& error);
  void FailConnect(const UpstreamError& error);
  // The one place a pump picks plain or TLS: the client side is always plain.
  size_t Recv(int side, char* buf, size_t n, IoStatus* status);
  size_t Send(int side, const char* buf, size_t n, IoStatus* status);
  void ArmRead(Direction& d);
  void OnReadable(Direction& d);
  void FlushBacklog(Direction& d);
  void OnWritten(Direction& d);
  void OnEof(Direction& d);
  void CloseUpstreamFd();
  bool DrainDone() const;
  void GracefulClose();
  void DiscardClientInput();
  void CloseWhenSent();

  void StartShared();
  void ReadClientShared();
  // Frames a chunk the client sent (shared mode); false when reading must stop (pin, error,
  // QUIT).
  bool RouteClientBytes(std::string_view chunk);
  Verdict Decide(const resp::Request& req, const commands::CommandInfo& info, PinReason* reason,
                 std::string* local, bool* close_after, bool* replay);
  // Sends (or buffers, up to max_client_buffer) reply bytes to the client, observing them
  // unless the shared connection's router already did.
  void SendToClient(std::string_view bytes, bool observe = true);
  void Owe(uint32_t routed);
  void QueueLocal(std::string bytes, bool close_after);
  void FlushLocal();
  void AfterOwedChange();
  void ResumeDeferred();
  void BeginPin(PinReason reason);
  void TrySwitch();
  // Drops the replies of respscope's replayed commands from the front of `bytes`.
  void SwallowReplay(std::string_view* bytes);
  bool SharedMode() const { return mode_ != Mode::kDedicated; }
  // The last thing owed is a shared reply: more shared replies may join its run.
  bool OwesRouted() const { return !owed_.empty() && owed_.back().routed > 0; }
  ThreadContext* thread_;
  boost::asio::generic::stream_protocol::socket client_;
  ClientKind kind_;
  UpstreamIo upstream_;  // once connected (or pinned); fd_[kUpstream] is its descriptor
  boost::asio::steady_timer connect_timer_;
  uint64_t id_;
  uint64_t upstream_gen_ = 0;  // the UpstreamAddress::generation of its own upstream connection
  std::string peer_;
  std::unique_ptr<session::SessionCore> core_;
  Direction up_;    // client -> upstream
  Direction down_;  // upstream -> client
  // After the upstream is connected: the raw descriptors (the client's owned here, the
  // upstream's by upstream_) and their poller tokens.
  int fd_[2] = {-1, -1};
  uint64_t token_[2] = {0, 0};
  bool readable_[2] = {false, false};
  bool writable_[2] = {false, false};
  // The peer shut down its side (EPOLLRDHUP / HUP / ERR seen): a short read may be followed by
  // the end of the stream, which brings no new edge, so read on until recv says 0 or EAGAIN.
  bool hup_[2] = {false, false};
  bool connected_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool lingering_ = false;  // FIN sent after the last reply; dropping input until the client closes
  // Reads that returned bytes, either side: DrainSweep's sign of activity. A subscriber that
  // still receives messages is not idle.
  uint32_t reads_ = 0;
  uint32_t drain_seen_reads_ = 0;
  int64_t drain_idle_since_ = -1;

  // Shared mode.
  Mode mode_ = Mode::kDedicated;
  SharedUpstream* shared_ = nullptr;
  std::deque<Owed> owed_;
  std::string held_;  // a partial command, or (pinning) everything from the pinned command on
  resp::RequestScanner framer_;
  bool authed_ = true;       // the client acts as the pool's user
  bool client_done_ = false;  // EOF, QUIT or a protocol error: close once owed_ is delivered
  // Commands a client may have in flight on the shared connection; beyond, it is not read (as
  // TCP would hold it) until half are answered. Bounds what one deep pipeline can make the
  // shared connection owe it, so a client that reads, only slower than Redis answers, is not
  // closed at max_inflight_bytes_per_client; pipelines of 16 or 32 never wait.
  static constexpr uint32_t kMaxRoutedPerClient = 64;
  uint32_t routed_outstanding_ = 0;
  std::string deferred_;      // read, not yet framed: waits for kMaxRoutedPerClient
  std::string replay_;        // CLIENT SETINFO commands, replayed on a pinned connection
  uint32_t replay_commands_ = 0;
  UpstreamIo private_;        // the pinned connection until the switch
  uint32_t swallow_ = 0;      // replies of replayed commands still to drop (dedicated mode)
  bool pinned_ = false;       // dedicated after a pin (counted in PoolStats::pinned)
  resp::ReplyScanner swallow_scanner_;
};

}  // namespace respscope::net
