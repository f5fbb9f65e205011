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
// Lifetime: owned by shared_ptr; every pending handler holds one. Thread: all methods run on
// the owning io_context's thread.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "proxy/net/poller.h"
#include "proxy/session/session_core.h"

namespace respscope::net {

struct UpstreamAddress {
  bool unix_socket = false;
  std::string host = "127.0.0.1";
  uint16_t port = 6379;
  std::string path;
  std::string display;  // for messages: "redis://127.0.0.1:6379" (no credentials)
};

class ThreadContext;

class Connection : public Pollable, public std::enable_shared_from_this<Connection> {
 public:
  static constexpr int kReadsPerWake = 16;

  Connection(ThreadContext* thread, boost::asio::ip::tcp::socket client, uint64_t id);
  ~Connection() override;

  void Start();
  // Stop reading the client; close once no reply is outstanding (see ThreadContext::Drain).
  void BeginDrain();
  void Close();
  uint64_t id() const { return id_; }

  void OnPoll(uint32_t events, uint32_t side) override;

 private:
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

  void OnConnected(const boost::system::error_code& ec);
  void FailConnect(const std::string& why);
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

  ThreadContext* thread_;
  boost::asio::ip::tcp::socket client_;
  boost::asio::generic::stream_protocol::socket upstream_;
  boost::asio::steady_timer connect_timer_;
  uint64_t id_;
  std::string peer_;
  std::unique_ptr<session::SessionCore> core_;
  Direction up_;    // client -> upstream
  Direction down_;  // upstream -> client
  // After the upstream is connected: the raw descriptors, owned here, and their poller tokens.
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
};

}  // namespace respscope::net
