#include "proxy/net/upstream_io.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace respscope::net {

size_t PlainRead(int fd, char* buf, size_t n, IoStatus* status) {
  for (;;) {
    ssize_t got = ::recv(fd, buf, n, 0);
    if (got > 0) {
      *status = IoStatus::kOk;
      return static_cast<size_t>(got);
    }
    if (got == 0) {
      *status = IoStatus::kEof;
      return 0;
    }
    if (errno == EINTR) continue;
    *status = errno == EAGAIN || errno == EWOULDBLOCK ? IoStatus::kAgain : IoStatus::kError;
    return 0;
  }
}

size_t PlainWrite(int fd, const char* buf, size_t n, IoStatus* status) {
  for (;;) {
    ssize_t w = ::send(fd, buf, n, MSG_NOSIGNAL);
    if (w >= 0) {
      *status = IoStatus::kOk;
      return static_cast<size_t>(w);
    }
    if (errno == EINTR) continue;
    *status = errno == EAGAIN || errno == EWOULDBLOCK ? IoStatus::kAgain : IoStatus::kError;
    return 0;
  }
}

UpstreamIo& UpstreamIo::operator=(UpstreamIo&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    ssl_ = o.ssl_;
    broken_ = o.broken_;
    o.fd_ = -1;
    o.ssl_ = nullptr;
  }
  return *this;
}

IoStatus UpstreamIo::TlsStatus(int ret) {
  const int saved = errno;
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return IoStatus::kAgain;
    case SSL_ERROR_ZERO_RETURN:
      return IoStatus::kEof;
    case SSL_ERROR_SYSCALL:
      broken_ = true;
      if (ERR_peek_error() == 0 && saved == 0) return IoStatus::kEof;
      last_error_ = saved ? std::strerror(saved) : "TLS error";
      ERR_clear_error();
      return IoStatus::kError;
    default: {
      broken_ = true;
      unsigned long e = ERR_get_error();
      const char* reason = e ? ERR_reason_error_string(e) : nullptr;
      last_error_ = std::string("TLS: ") + (reason ? reason : "protocol error");
      ERR_clear_error();
      return IoStatus::kError;
    }
  }
}

size_t UpstreamIo::TlsRead(char* buf, size_t n, IoStatus* status) {
  ERR_clear_error();
  const int want = n > INT32_MAX ? INT32_MAX : static_cast<int>(n);
  const int got = SSL_read(ssl_, buf, want);
  if (got > 0) {
    *status = IoStatus::kOk;
    return static_cast<size_t>(got);
  }
  *status = TlsStatus(got);
  return 0;
}

size_t UpstreamIo::TlsWrite(const char* buf, size_t n, IoStatus* status) {
  if (n == 0) {
    *status = IoStatus::kOk;
    return 0;
  }
  ERR_clear_error();
  const int want = n > INT32_MAX ? INT32_MAX : static_cast<int>(n);
  const int w = SSL_write(ssl_, buf, want);
  if (w > 0) {
    *status = IoStatus::kOk;
    return static_cast<size_t>(w);
  }
  *status = TlsStatus(w);
  if (*status == IoStatus::kEof) *status = IoStatus::kError;
  return 0;
}

void UpstreamIo::ShutdownWrite() {
  if (fd_ < 0) return;
  if (ssl_ != nullptr && !broken_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);  // queues close_notify; non-blocking, best effort
    ERR_clear_error();
  }
  ::shutdown(fd_, SHUT_WR);
}

void UpstreamIo::Close() {
  if (ssl_ != nullptr) {
    if (!broken_ && fd_ >= 0) {
      ERR_clear_error();
      SSL_shutdown(ssl_);
      ERR_clear_error();
    }
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  broken_ = false;
}

}  // namespace respscope::net
