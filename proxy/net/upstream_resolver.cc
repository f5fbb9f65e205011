#include "proxy/net/upstream_resolver.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "proxy/net/server.h"

namespace respscope::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
std::string Why(const std::string& host, const error_code& ec) {
  return "cannot resolve host '" + host + "': " + (ec ? ec.message() : "no address");
}
}  // namespace

UpstreamAddress ResolveTcpUpstream(UpstreamAddress base, const std::string& host, uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  base.port = port;
  if (ec || results.empty()) {
    base.host = host;
    base.unavailable = Why(host, ec);
    return base;
  }
  base.host = results.begin()->endpoint().address().to_string();
  base.unavailable.clear();
  return base;
}

UpstreamResolver::UpstreamResolver(asio::io_context& io, Server* server, UpstreamAddress pending)
    : server_(server), pending_(std::move(pending)), resolver_(io), timer_(io) {}

void UpstreamResolver::Start() {
  if (pending_.unavailable.empty()) return;
  spdlog::error(
      "upstream {}: {}; clients get an error reply and /readyz is not ready until it resolves "
      "(retrying in the background)",
      pending_.display, pending_.unavailable);
  log_.Allow();  // the line above was the first
  Arm();
}

void UpstreamResolver::Stop() {
  stopped_ = true;
  timer_.cancel();
  resolver_.cancel();
}

void UpstreamResolver::Arm() {
  if (stopped_) return;
  timer_.expires_after(backoff_);
  timer_.async_wait([this](const error_code& ec) {
    if (!ec && !stopped_) Attempt();
  });
}

void UpstreamResolver::Attempt() {
  resolver_.async_resolve(
      pending_.host, std::to_string(pending_.port),
      [this](const error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (stopped_ || ec == asio::error::operation_aborted) return;
        if (ec || results.empty()) {
          ++failures_;
          backoff_ = std::min(backoff_ * 2, kRetryMax);
          if (auto suppressed = log_.Allow()) {
            spdlog::warn("upstream {}: {} ({} attempts so far, next in {} ms; {} similar lines "
                         "suppressed)",
                         pending_.display, Why(pending_.host, ec), failures_, backoff_.count(),
                         *suppressed);
          }
          Arm();
          return;
        }
        UpstreamAddress resolved = pending_;
        resolved.host = results.begin()->endpoint().address().to_string();
        resolved.unavailable.clear();
        spdlog::info("upstream {}: host '{}' resolves to {} after {} failed attempt(s)",
                     pending_.display, pending_.host, resolved.host, failures_);
        server_->SetUpstream(resolved);
      });
}

}  // namespace respscope::net
