// Listener: one listening socket of the data plane, a TCP address or a Unix domain socket file.
//
// Both kinds are one Asio type (generic::stream_protocol), so an accepted client is the same
// socket type whatever the listener and the rest of the data plane does not care; only
// TCP_NODELAY (TCP alone) and the peer's name differ (ClientPeerName).
//
// A Unix socket file is owned by the listener that created it:
//   - at start, an existing file is removed only when it is a socket nobody listens on (a stale
//     file left by a crash); a live socket (a second respscope on the same path) or a file that
//     is not a socket is an error naming the path, and is left alone;
//   - it is created with `mode` (listen_unix_mode) from the start, never wider for a moment;
//   - it is removed when the listener closes (drain, stop) if the path still names the file
//     this listener created (not one another process put there since).
//
// Thread: constructed on the main thread before the IO threads run (the umask is process-wide
// for the instant of bind()); afterwards used on the acceptor's thread (thread 0) only.
#pragma once

#include <sys/types.h>

#include <boost/asio.hpp>
#include <cstdint>
#include <string>

#include "common/descriptors.h"

namespace respscope::net {

struct ListenSpec {
  bool unix_socket = false;
  std::string host = "127.0.0.1";  // TCP
  uint16_t port = 6380;            // TCP; 0: any free port
  std::string path;                // Unix: absolute path of the socket file
  uint32_t mode = 0660;            // Unix: permission bits of the socket file

  // "127.0.0.1:6380", "[::1]:6380", "unix:///run/respscope.sock".
  std::string ToString() const;
};

class Listener {
 public:
  using Socket = boost::asio::generic::stream_protocol::socket;
  using Acceptor = boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>;

  // Binds and listens. Throws std::runtime_error whose what() names the address and the reason
  // ("unix:///run/x.sock: another process is listening on it").
  Listener(boost::asio::io_context& io, ListenSpec spec);
  ~Listener();  // Close()
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  Acceptor& acceptor() { return acceptor_; }
  const ListenSpec& spec() const { return spec_; }
  bool unix_socket() const { return spec_.unix_socket; }
  // The bound TCP port (the real one when the spec said 0); 0 for a Unix socket.
  uint16_t port() const { return port_; }
  // As ListenSpec::ToString, with the bound port.
  std::string ToString() const;

  // Stops listening and removes the socket file. Idempotent.
  void Close();

  // Accept loop state of this listener (thread 0).
  boost::asio::steady_timer& backoff() { return backoff_; }

 private:
  void BindUnix();

  ListenSpec spec_;
  Acceptor acceptor_;
  boost::asio::steady_timer backoff_;
  uint16_t port_ = 0;
  // The socket file this listener created, to remove it at Close() only if it is still ours.
  bool own_file_ = false;
  dev_t file_dev_ = 0;
  ino_t file_ino_ = 0;
};

// The name of an accepted client for logs, analytics and /api/v1/clients: "10.0.0.7:53122",
// "[::1]:6000" for TCP; "unix:pid=1234" for a Unix socket peer (its process, from
// SO_PEERCRED), or "unix:unknown" when the kernel does not say.
std::string ClientPeerName(Listener::Socket& socket, bool unix_socket);

}  // namespace respscope::net
