#include "proxy/net/listener.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace respscope::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

std::string TcpText(const std::string& host, uint16_t port) {
  bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Errno(int e) { return std::strerror(e); }

// What is at `path` before we bind: nothing (go on), a stale socket (removed), or something
// we must not touch (throws).
void ClearStaleSocket(const std::string& path, const std::string& name) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw std::runtime_error(name + ": cannot inspect the path: " + Errno(errno));
  }
  if (!S_ISSOCK(st.st_mode)) {
    throw std::runtime_error(name + ": the path exists and is not a socket; refusing to replace it");
  }
  // A socket file: is anyone listening? A non-blocking connect answers at once: refused means
  // a file left behind by a process that is gone; EAGAIN is a live listener whose backlog is
  // full.
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error(name + ": the path is too long for a Unix socket");
  }
  int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) throw std::runtime_error(name + ": socket(): " + Errno(errno));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  int rc = ::connect(probe, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  int err = rc == 0 ? 0 : errno;
  ::close(probe);
  if (err == 0 || err == EAGAIN || err == EINPROGRESS) {
    throw std::runtime_error(name +
                             ": another process is listening on this socket (a second "
                             "respscope?); stop it or choose another path");
  }
  if (err != ECONNREFUSED) {
    throw std::runtime_error(name + ": cannot tell whether the existing socket is in use: " +
                             Errno(err));
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    throw std::runtime_error(name + ": cannot remove the stale socket file: " + Errno(errno));
  }
  spdlog::info("{}: removed a stale socket file nobody listened on", name);
}

}  // namespace

std::string ListenSpec::ToString() const {
  return unix_socket ? "unix://" + path : TcpText(host, port);
}

Listener::Listener(asio::io_context& io, ListenSpec spec)
    : spec_(std::move(spec)), acceptor_(io), backoff_(io) {
  if (spec_.unix_socket) {
    BindUnix();
    return;
  }
  error_code ec;
  asio::ip::address addr = asio::ip::make_address(spec_.host, ec);
  if (ec) throw std::runtime_error(ToString() + ": invalid address: " + ec.message());
  asio::ip::tcp::endpoint ep(addr, spec_.port);
  try {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(ToString() + ": " + e.code().message());
  }
  asio::ip::tcp::endpoint bound;
  auto local = acceptor_.local_endpoint();
  std::memcpy(bound.data(), local.data(), local.size());
  bound.resize(local.size());
  port_ = bound.port();
}

void Listener::BindUnix() {
  const std::string name = ToString();
  ClearStaleSocket(spec_.path, name);
  asio::local::stream_protocol::endpoint ep(spec_.path);
  error_code ec;
  if (spec_.path.size() >= sizeof(sockaddr_un::sun_path)) {
    throw std::runtime_error(name + ": the path is too long for a Unix socket");
  }
  acceptor_.open(asio::generic::stream_protocol(AF_UNIX, 0), ec);
  if (ec) throw std::runtime_error(name + ": " + ec.message());
  // bind() creates the file with 0777 & ~umask: narrow the umask for that instant so the file
  // never exists with wider permissions than asked (the IO threads do not run yet).
  mode_t old_umask = ::umask(static_cast<mode_t>(~spec_.mode & 0777));
  acceptor_.bind(ep, ec);
  ::umask(old_umask);
  if (ec) throw std::runtime_error(name + ": " + ec.message());
  struct stat st;
  if (::stat(spec_.path.c_str(), &st) == 0) {
    own_file_ = true;
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
  }
  // Explicitly too: bits the umask cannot add are none, but a chmod says what we mean.
  if (::chmod(spec_.path.c_str(), static_cast<mode_t>(spec_.mode)) != 0) {
    int e = errno;
    Close();
    throw std::runtime_error(name + ": chmod: " + Errno(e));
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    Close();
    throw std::runtime_error(name + ": " + ec.message());
  }
}

Listener::~Listener() { Close(); }

std::string Listener::ToString() const {
  return spec_.unix_socket ? spec_.ToString() : TcpText(spec_.host, port_ ? port_ : spec_.port);
}

void Listener::Close() {
  error_code ignored;
  acceptor_.close(ignored);
  backoff_.cancel();
  if (!own_file_) return;
  own_file_ = false;
  struct stat st;
  if (::lstat(spec_.path.c_str(), &st) == 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_) {
    ::unlink(spec_.path.c_str());
  }
}

std::string ClientPeerName(Listener::Socket& socket, bool unix_socket) {
  if (unix_socket) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(socket.native_handle(), SOL_SOCKET,
                     SO_PEERCRED, &cred, &len) == 0 &&
        cred.pid > 0) {
      return "unix:pid=" + std::to_string(cred.pid);
    }
    return "unix:unknown";
  }
  error_code ec;
  auto ep = socket.remote_endpoint(ec);
  asio::ip::tcp::endpoint tcp;
  if (ec || ep.size() > tcp.capacity()) return "unknown";
  std::memcpy(tcp.data(), ep.data(), ep.size());
  tcp.resize(ep.size());
  return TcpText(tcp.address().to_string(), tcp.port());
}

}  // namespace respscope::net
