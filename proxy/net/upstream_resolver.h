// UpstreamResolver: the upstream's host name, resolved again until it resolves.
//
// respscope resolves the upstream URL's host once at start-up (the data plane connects to an
// address and never does DNS). When the name does not resolve then (a typo, a Service whose DNS
// record is not there yet), respscope still starts: every client gets
// "-ERR respscope: upstream ... unreachable (cannot resolve host ...)", /readyz says not ready,
// and this resolver retries in the background, 1 s after the first failure, doubling to at most
// 30 s, logging the first failure and then at most once a minute. Once the name resolves the new
// address goes to every IO thread (Server::SetUpstream) and the resolver stops.
//
// Thread: everything runs on the io_context given (async_resolve uses Asio's own resolver
// thread for getaddrinfo).
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <string>

#include "common/descriptors.h"
#include "proxy/net/connection.h"

namespace respscope::net {

class Server;

// Blocking, for start-up: the first address of host:port, or `base` with unresolved set to why
// not (and host the name as given).
UpstreamAddress ResolveTcpUpstream(UpstreamAddress base, const std::string& host, uint16_t port);

class UpstreamResolver {
 public:
  static constexpr std::chrono::milliseconds kRetryMin{1000};
  static constexpr std::chrono::milliseconds kRetryMax{30000};

  // pending: the unresolved address (host the name, unresolved set). server outlives this.
  UpstreamResolver(boost::asio::io_context& io, Server* server, UpstreamAddress pending);
  void Start();
  void Stop();

 private:
  void Arm();
  void Attempt();

  Server* server_;
  UpstreamAddress pending_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds backoff_{kRetryMin};
  int failures_ = 1;  // the start-up attempt failed
  bool stopped_ = false;
  common::LogThrottle log_{std::chrono::minutes(1)};
};

}  // namespace respscope::net
