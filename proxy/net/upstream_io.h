// UpstreamIo: one connected upstream socket, plain or TLS, owning its descriptor (and SSL).
//
// The pumps (Connection, SharedUpstream) call Read/Write; the only branch between the two is
// inside them, so a plain upstream keeps recv/send on the raw descriptor (no copy, no extra
// call) and TLS costs only the connections that use it.
//
// Readiness with TLS, under the poller's edge-triggered events:
//   - SSL_read may return fewer bytes than it holds decrypted (one record per call) or than the
//     socket holds: a short read does NOT mean drained (short_read_drains() is false); read
//     until kAgain.
//   - SSL_read may need to write (a key update) and SSL_write to read: a kAgain may wait for
//     the other direction's readiness. The owner therefore treats any event on a TLS socket as
//     both readable and writable (OnPoll): a retry that is not ready reports kAgain again and
//     waits for the next edge; nothing spins.
//   - A write that returned kAgain must be retried with the same bytes (a larger length is
//     fine); the buffer may move (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER).
//
// Thread: the owning IO thread. Move-only; the destructor closes (close_notify first for TLS).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>

#include "common/tls.h"

namespace respscope::net {

enum class IoStatus : uint8_t {
  kOk,     // bytes moved
  kAgain,  // nothing now; wait for the next event
  kEof,    // the peer closed (reads only)
  kError,  // the connection is broken
};

// recv()/send() on a non-blocking descriptor. Returns the bytes moved (> 0 with kOk, else 0).
size_t PlainRead(int fd, char* buf, size_t n, IoStatus* status);
size_t PlainWrite(int fd, const char* buf, size_t n, IoStatus* status);

class UpstreamIo {
 public:
  UpstreamIo() = default;
  // Takes ownership of fd and of ssl (nullptr: plain).
  UpstreamIo(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~UpstreamIo() { Close(); }
  UpstreamIo(UpstreamIo&& o) noexcept : fd_(o.fd_), ssl_(o.ssl_), broken_(o.broken_) {
    o.fd_ = -1;
    o.ssl_ = nullptr;
  }
  UpstreamIo& operator=(UpstreamIo&& o) noexcept;
  UpstreamIo(const UpstreamIo&) = delete;
  UpstreamIo& operator=(const UpstreamIo&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  bool tls() const { return ssl_ != nullptr; }
  // A read shorter than asked means the socket is drained for now (plain TCP only).
  bool short_read_drains() const { return ssl_ == nullptr; }

  size_t Read(char* buf, size_t n, IoStatus* status) {
    if (ssl_ == nullptr) return PlainRead(fd_, buf, n, status);
    return TlsRead(buf, n, status);
  }
  size_t Write(const char* buf, size_t n, IoStatus* status) {
    if (ssl_ == nullptr) return PlainWrite(fd_, buf, n, status);
    return TlsWrite(buf, n, status);
  }
  // Half-close: no more bytes to the upstream (TLS: close_notify, then the TCP FIN).
  void ShutdownWrite();
  // close_notify (TLS, best effort, never blocks) and close(). Idempotent.
  void Close();
  // Why the last kError happened (TLS: OpenSSL's reason; plain: errno's text).
  std::string last_error() const { return last_error_; }

 private:
  size_t TlsRead(char* buf, size_t n, IoStatus* status);
  size_t TlsWrite(const char* buf, size_t n, IoStatus* status);
  IoStatus TlsStatus(int ret);

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool broken_ = false;  // a fatal TLS error: no close_notify may follow
  std::string last_error_;
};

}  // namespace respscope::net
