#include "analytics/inspector/side_channel.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace respscope::inspector {

namespace {
timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// A connected blocking socket whose reads and writes time out after `timeout`, or -1 and *error.
int ConnectSocket(const sockaddr* addr, socklen_t len, int family,
                  std::chrono::milliseconds timeout, std::string* error) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = Errno("socket");
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
  int rc = ::connect(fd, addr, len);
  if (rc != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (rc == 0) {
      *error = "connect timeout";
      ::close(fd);
      return -1;
    }
    int err = 0;
    socklen_t elen = sizeof(err);
    if (rc < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
      if (err != 0) errno = err;
      *error = Errno("connect");
      ::close(fd);
      return -1;
    }
  } else if (rc != 0) {
    *error = Errno("connect");
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) & ~O_NONBLOCK);
  timeval tv = ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  return fd;
}

void Encode(const redisReply* r, std::string* out) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
      *out += "$" + std::to_string(r->len) + "\r\n";
      out->append(r->str, r->len);
      *out += "\r\n";
      break;
    case REDIS_REPLY_STATUS:
      *out += "+";
      out->append(r->str, r->len);
      *out += "\r\n";
      break;
    case REDIS_REPLY_ERROR:
      *out += "-";
      out->append(r->str, r->len);
      *out += "\r\n";
      break;
    case REDIS_REPLY_INTEGER:
      *out += ":" + std::to_string(r->integer) + "\r\n";
      break;
    case REDIS_REPLY_NIL:
      *out += "$-1\r\n";
      break;
    case REDIS_REPLY_ARRAY:
    default:
      *out += "*" + std::to_string(r->elements) + "\r\n";
      for (size_t i = 0; i < r->elements; ++i) Encode(r->element[i], out);
      break;
  }
}

}  // namespace

SideChannel::SideChannel(config::UpstreamUrl url, std::chrono::milliseconds timeout,
                         std::shared_ptr<common::UpstreamTls> tls)
    : url_(std::move(url)), timeout_(timeout), tls_(std::move(tls)) {}

SideChannel::~SideChannel() { Drop(); }

void SideChannel::Drop() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // no close_notify: the socket may be broken, and closing says enough
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (reader_ != nullptr) {
    redisReaderFree(reader_);
    reader_ = nullptr;
  }
}

bool SideChannel::Open() {
  if (url_.IsTcp()) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(url_.host.c_str(), std::to_string(url_.port).c_str(), &hints, &res);
    if (rc != 0) {
      error_ = "cannot resolve " + url_.host + ": " + gai_strerror(rc);
      return false;
    }
    for (addrinfo* a = res; a != nullptr && fd_ < 0; a = a->ai_next) {
      fd_ = ConnectSocket(a->ai_addr, a->ai_addrlen, a->ai_family, timeout_, &error_);
    }
    ::freeaddrinfo(res);
  } else {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (url_.path.size() >= sizeof(sun.sun_path)) {
      error_ = "socket path too long";
      return false;
    }
    std::memcpy(sun.sun_path, url_.path.data(), url_.path.size());
    fd_ = ConnectSocket(reinterpret_cast<sockaddr*>(&sun), sizeof(sun), AF_UNIX, timeout_,
                        &error_);
  }
  if (fd_ < 0) return false;
  reader_ = redisReaderCreate();
  if (tls_ == nullptr) return true;
  // The same context as the data plane's: same trust, same name, same rotation.
  std::shared_ptr<const common::TlsContext> context = tls_->context();
  common::TlsHandshakeNotes notes;
  ssl_ = context->NewSsl(&notes);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
    error_ = "cannot create a TLS session";
    Drop();
    return false;
  }
  common::ClearTlsErrors();
  int r = SSL_connect(ssl_);
  if (r != 1) {
    int e = SSL_get_error(ssl_, r);
    common::TlsError err =
        (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            ? common::TlsError{common::TlsFailure::kTimeout,
                               "no TLS handshake within limits.connect_timeout"}
            : common::ClassifyTlsError(ssl_, e, notes, context->has_client_cert());
    tls_->RecordFailure(err, "side channel");
    error_ = "TLS handshake failed: " + err.Text();
    Drop();
    return false;
  }
  SSL_set_msg_callback_arg(ssl_, nullptr);  // `notes` ends here
  return true;
}

bool SideChannel::SendAll(const char* data, size_t n) {
  size_t sent = 0;
  while (sent < n) {
    ssize_t w;
    if (ssl_ != nullptr) {
      common::ClearTlsErrors();
      int r = SSL_write(ssl_, data + sent, static_cast<int>(std::min<size_t>(n - sent, 1 << 30)));
      w = r > 0 ? r : -1;
      if (r <= 0) errno = SSL_get_error(ssl_, r) == SSL_ERROR_WANT_WRITE ? EAGAIN : EPIPE;
    } else {
      w = ::send(fd_, data + sent, n - sent, MSG_NOSIGNAL);
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      error_ = errno == EAGAIN || errno == EWOULDBLOCK ? "write timeout" : Errno("write");
      return false;
    }
    sent += static_cast<size_t>(w);
  }
  return true;
}

redisReply* SideChannel::Run(const std::vector<std::string>& argv) {
  std::vector<const char*> p;
  std::vector<size_t> l;
  for (const auto& a : argv) {
    p.push_back(a.data());
    l.push_back(a.size());
  }
  char* cmd = nullptr;
  int len = redisFormatCommandArgv(&cmd, static_cast<int>(p.size()), p.data(), l.data());
  if (len < 0) {
    error_ = "cannot encode the command";
    return nullptr;
  }
  bool sent = SendAll(cmd, static_cast<size_t>(len));
  redisFreeCommand(cmd);
  if (!sent) return nullptr;
  char buf[16 * 1024];
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
      error_ = std::string("unreadable reply: ") + reader_->errstr;
      return nullptr;
    }
    if (reply != nullptr) return static_cast<redisReply*>(reply);
    ssize_t got;
    if (ssl_ != nullptr) {
      common::ClearTlsErrors();
      int r = SSL_read(ssl_, buf, sizeof(buf));
      got = r;
      if (r <= 0) {
        int e = SSL_get_error(ssl_, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          errno = EAGAIN;
          got = -1;
        } else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
          got = 0;
        } else {
          const char* why = ERR_reason_error_string(ERR_peek_error());
          error_ = std::string("read: TLS: ") + (why ? why : "error");
          common::ClearTlsErrors();
          return nullptr;
        }
      }
    } else {
      got = ::recv(fd_, buf, sizeof(buf), 0);
    }
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) {
      error_ = "closed by the upstream";
      return nullptr;
    }
    if (got < 0) {
      error_ = errno == EAGAIN || errno == EWOULDBLOCK ? "read timeout" : Errno("read");
      return nullptr;
    }
    redisReaderFeed(reader_, buf, static_cast<size_t>(got));
  }
}

bool SideChannel::Connect() {
  if (fd_ >= 0) return true;
  if (url_.IsSentinel()) {
    error_ = "a redis+sentinel:// URL names no server (no master known)";
    return false;
  }
  if (!Open()) return false;
  auto simple = [&](const std::vector<std::string>& argv) {
    redisReply* r = Run(argv);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r && !ok) error_ = std::string(r->str, r->len);
    if (r) freeReplyObject(r);
    return ok;
  };
  bool ok = true;
  if (!url_.password.empty()) {
    ok = url_.username.empty() ? simple({"AUTH", url_.password})
                               : simple({"AUTH", url_.username, url_.password});
  }
  if (ok && url_.db) ok = simple({"SELECT", std::to_string(url_.db)});
  // The name only helps people reading CLIENT LIST: a refusal (NOAUTH without credentials in
  // the URL, an ACL without CLIENT) leaves a working connection whose commands get Redis's own
  // answers.
  if (ok) {
    redisReply* r = Run({"CLIENT", "SETNAME", "respscope"});
    if (r) {
      freeReplyObject(r);
    } else {
      ok = false;
    }
  }
  if (!ok) Drop();
  return ok;
}

std::string SideChannel::CommandRaw(const std::vector<std::string>& argv) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!Connect()) return {};
    redisReply* r = Run(argv);
    if (!r) {
      Drop();
      continue;
    }
    std::string out;
    Encode(r, &out);
    freeReplyObject(r);
    return out;
  }
  return {};
}

}  // namespace respscope::inspector
