// Connection: one client socket paired with its own upstream socket, on one IO thread.
//
// Bytes move in two independent directions, each a small reactor loop:
//
//   wait readable(from) -> read_some into the thread's scratch buffer (64 KiB)
//                       -> write_some to `to` at once (non-blocking)
//                       -> whatever did not fit goes to this direction's backlog and is
//                          written asynchronously; `from` is not read again until it drains
//                       -> the same bytes are handed to the SessionCore (observation only)
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

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  static constexpr int kReadsPerWake = 16;

  Connection(ThreadContext* thread, boost::asio::ip::tcp::socket client, uint64_t id);
  ~Connection();

  void Start();
  // Stop reading the client; close once no reply is outstanding (see ThreadContext::Drain).
  void BeginDrain();
  void Close();
  uint64_t id() const { return id_; }

 private:
  struct Direction {
    bool to_client = false;
    std::string backlog;  // bytes read but not yet written to the other side
    bool waiting = false; // an async_wait for readability is outstanding
    bool writing = false; // an async_write of the backlog is outstanding
    bool eof = false;
  };

  void OnConnected(const boost::system::error_code& ec);
  void FailConnect(const std::string& why);
  void ArmRead(Direction& d);
  void OnReadable(Direction& d, const boost::system::error_code& ec);
  void OnWritten(Direction& d, const boost::system::error_code& ec);
  void OnEof(Direction& d);
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
  bool connected_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool lingering_ = false;  // FIN sent after the last reply; dropping input until the client closes
};

}  // namespace respscope::net
