// AdminServer: the admin HTTP endpoint (Boost.Beast, HTTP/1.1 keep-alive) on its own
// io_context and thread.
//
//   GET /metrics             Prometheus text (engine.ScrapeMetrics(): merges on scrape)
//   GET /healthz             200 "ok"
//   GET /readyz              200 when upstream_ready() says so, else 503
//   GET /api/v1/overview | commands | patterns | hotkeys | slowlog | clients | insights |
//       health
//   GET /api/v1/history?from=&to=&step=   unix seconds; defaults: last hour, step 10 s
//   GET /                    the dashboard page (AdminOptions::dashboard_html)
//   AddRoute(prefix, h)      more routes (longest prefix wins), e.g. /api/v1/queues
//
// Auth: with a token, everything but /healthz, /readyz (and /metrics unless protect_metrics)
// needs "Authorization: Bearer <token>" (constant-time compare), else 401.
// Limits: header 16 KiB, body max_body_bytes (413 beyond), only GET and HEAD (405 otherwise).
// A new connection must deliver its whole request within header_timeout, a keep-alive one its
// next request within idle_timeout; a response must be written within timeout.
// Connections: at most max_connections. At the cap a new connection is admitted by closing the
// oldest connection that is waiting for a request (idle costs nothing to drop, and a probe that
// sends its request at once always gets in); when none is waiting, the new one is closed. Both
// are counted (Stats()) and logged, rate limited.
// Descriptors: the accept loop holds a spare descriptor; on EMFILE/ENFILE it sheds the pending
// connections with it, counts, logs (rate limited) and pauses accepts for 100 ms instead of
// retrying at once (see common/descriptors.h).
//
// Thread: Start()/Stop()/AddRoute()/Stats() from any thread; handlers run on the admin thread
// (one thread: sessions and the accept loop share state without locks).
// Lifetime: the Engine must outlive the server (Stop() joins the thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "analytics/admin/dashboard.h"
#include "analytics/admin/http_types.h"
#include "analytics/engine/engine.h"

namespace respscope::admin {

struct AdminOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 9190;                       // 0: pick a free port (see Port())
  std::string token;                          // empty: no auth
  bool protect_metrics = false;
  size_t max_body_bytes = 64 * 1024;
  size_t max_connections = 256;                    // open connections; see above
  std::chrono::milliseconds header_timeout{5000};  // a new connection's first request
  std::chrono::milliseconds idle_timeout{30000};   // a keep-alive connection's next request
  std::chrono::seconds timeout{30};                // writing a response
  std::string dashboard_html = DashboardHtml();
};

class AdminServer {
 public:
  AdminServer(AdminOptions options, engine::Engine& engine,
              std::function<bool()> upstream_ready = [] { return true; });
  ~AdminServer();  // Stop()

  // Binds and starts serving. Returns the bind/listen error, if any.
  std::error_code Start();
  void Stop();
  uint16_t Port() const { return port_; }

  void AddRoute(std::string path_prefix, HttpHandler handler);

  // Connections open now, and the cumulative counts behind the respscope_admin_* metrics.
  engine::AdminListenerStats Stats() const;

  // Routing and auth without a socket (used by the sessions; handy in tests).
  HttpResponse Handle(const HttpRequest& request, std::string_view authorization);

 private:
  struct Impl;
  HttpResponse Route(const HttpRequest& request);

  AdminOptions options_;
  engine::Engine& engine_;
  std::function<bool()> upstream_ready_;
  std::mutex routes_mu_;
  std::vector<std::pair<std::string, HttpHandler>> routes_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace respscope::admin
