#include "proxy/app/app.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <csignal>
#include <optional>
#include <thread>

#include "analytics/inspector/side_channel.h"
#include "common/descriptors.h"
#include "config/error.h"
#include "proxy/app/analytics_wiring.h"
#include "proxy/commands/command_table.h"
#include "proxy/net/server.h"
#include "proxy/net/upstream_resolver.h"
#include "proxy/sentinel/sentinel_watcher.h"

namespace respscope::app {

namespace asio = boost::asio;

namespace {

net::UpstreamAddress ResolveUpstream(const config::UpstreamUrl& url) {
  net::UpstreamAddress a;
  a.display = url.ToString(/*redact_password=*/true);
  if (!url.IsTcp()) {
    a.unix_socket = true;
    a.path = url.path;
    return a;
  }
  // Resolve once at start-up: the data plane connects to an address, never does DNS. A name
  // that does not resolve yet is retried in the background (net::UpstreamResolver).
  return net::ResolveTcpUpstream(std::move(a), url.host, url.port);
}

// A Sentinel master as a plain upstream URL (the URL's credentials and database).
config::UpstreamUrl MasterUrl(const config::UpstreamUrl& sentinel, const config::HostPort& master) {
  config::UpstreamUrl u;
  u.scheme = config::UpstreamScheme::kRedis;
  u.host = master.host;
  u.port = master.port;
  u.username = sentinel.username;
  u.password = sentinel.password;
  u.db = sentinel.db;
  return u;
}

// What the data plane connects to for a Sentinel master, or the error while none is known.
net::UpstreamAddress SentinelAddress(const config::UpstreamUrl& url,
                                     const std::optional<config::HostPort>& master,
                                     const std::string& why) {
  net::UpstreamAddress a;
  a.display = url.ToString(/*redact_password=*/true);
  if (master) {
    a.host = master->host;
    a.port = master->port;
    a.display += " (master " + master->ToString() + ")";
  } else {
    // Bounded: it goes into every error reply while no master is known.
    constexpr size_t kMaxWhy = 300;
    a.unavailable = "no master known for '" + url.master_name + "': " + why.substr(0, kMaxWhy);
  }
  return a;
}

// The command table: built in, refreshed from the upstream's own COMMAND when reachable.
// upstream: a plain or rediss:// URL (the Sentinel master's when the upstream is
// redis+sentinel://).
std::shared_ptr<const commands::CommandTable> LoadCommandTable(
    const config::Config& cfg, const config::UpstreamUrl& upstream,
    std::shared_ptr<common::UpstreamTls> tls) {
  auto builtin = commands::CommandTable::BuiltIn();
  if (upstream.IsSentinel()) {
    spdlog::warn("command table: no Sentinel master known at start; using the built-in table");
    return builtin;
  }
  inspector::SideChannel side(
      upstream,
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.limits.connect_timeout),
      std::move(tls));
  std::string raw = side.CommandRaw({"COMMAND"});
  if (raw.empty()) {
    spdlog::warn("command table: upstream not reachable ({}); using the built-in table",
                 side.error());
    return builtin;
  }
  std::string error;
  auto table = commands::CommandTable::FromCommandReply(raw, &error);
  if (!table) {
    spdlog::warn("command table: cannot read the upstream's COMMAND reply ({}); built-in used",
                 error);
    return builtin;
  }
  spdlog::info("command table: {} commands from the upstream", table->size());
  return table;
}

}  // namespace

std::shared_ptr<common::UpstreamTls> MakeUpstreamTls(const config::Config& cfg) {
  if (cfg.upstream.scheme != config::UpstreamScheme::kRediss) return nullptr;
  const config::UpstreamTlsConfig& t = cfg.upstream_tls;
  common::TlsOptions o;
  o.ca_file = t.ca_file;
  o.cert_file = t.cert_file;
  o.key_file = t.key_file;
  o.server_name = t.server_name.empty() ? cfg.upstream.host : t.server_name;
  o.tls13_only = t.min_version == config::TlsVersion::k13;
  o.verify = t.verify;
  return std::make_shared<common::UpstreamTls>(std::move(o),
                                               cfg.upstream.ToString(/*redact_password=*/true));
}

void CheckUpstreamTls(const config::Config& cfg) {
  try {
    MakeUpstreamTls(cfg);
  } catch (const std::runtime_error& e) {
    throw config::ConfigError(cfg.origins.upstream_tls, e.what());
  }
}

int Run(const config::Config& cfg) {
  SetupLogging(cfg.logging);
  for (const auto& w : cfg.warnings) spdlog::warn("config: {}", w);

  // Descriptors: take what the hard limit allows, then keep the admin server's share and our
  // own out of the data plane's, so that a flood of clients never starves /healthz.
  common::NoFileLimit nofile = common::RaiseNoFileLimit();
  if (!nofile.error.empty()) spdlog::warn("descriptor limit: {}", nofile.error);
  if (nofile.soft != nofile.soft_before) {
    spdlog::info("descriptor limit (RLIMIT_NOFILE) raised from {} to {}", nofile.soft_before,
                 nofile.soft);
  }
  common::DescriptorBudget budget = common::PlanDescriptors(nofile.soft, cfg.limits.max_clients,
                                                            cfg.admin.max_connections, cfg.threads);
  for (const auto& w : budget.warnings) spdlog::warn("{}", w);

  // A peer that vanishes makes a write fail with EPIPE, never kill the process: OpenSSL writes
  // with send() without MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  std::shared_ptr<common::UpstreamTls> tls = MakeUpstreamTls(cfg);
  if (tls) {
    const common::TlsOptions& t = tls->options();
    spdlog::info("upstream TLS: verify {}, server name {}, TLS {} or later, CA {}, client "
                 "certificate {}",
                 t.verify ? "on" : "OFF", t.server_name, t.tls13_only ? "1.3" : "1.2",
                 t.ca_file.empty() ? "the system store" : t.ca_file,
                 t.cert_file.empty() ? "none" : t.cert_file);
    if (!t.verify) {
      spdlog::warn("!!! upstream_tls.verify is false: the upstream's certificate and name are "
                   "NOT verified; traffic is encrypted but anyone on the path can impersonate "
                   "Redis (gauge respscope_upstream_tls_verify_disabled = 1) !!!");
    }
  }

  net::ServerOptions so;
  so.listen.clear();
  for (const config::ListenAddress& l : cfg.listen) {
    net::ListenSpec spec;
    spec.unix_socket = l.IsUnix();
    spec.host = l.tcp.host;
    spec.port = l.tcp.port;
    spec.path = l.unix_path;
    spec.mode = cfg.listen_unix_mode;
    so.listen.push_back(std::move(spec));
  }
  so.tls = tls;
  // Sentinel: the first master before anything connects; the watcher follows it from then on.
  std::unique_ptr<sentinel::SentinelWatcher> watcher;
  std::atomic<net::Server*> live_server{nullptr};
  std::atomic<AnalyticsWiring*> live_analytics{nullptr};
  config::UpstreamUrl side_upstream = cfg.upstream;
  if (cfg.upstream.IsSentinel()) {
    watcher = std::make_unique<sentinel::SentinelWatcher>(
        cfg.upstream, cfg.upstream_sentinel,
        [&cfg, &live_server, &live_analytics](const std::optional<config::HostPort>& master,
                                              const std::string& why) {
          net::Server* server = live_server.load();
          if (!server) return;  // start-up: Run() reads the first answer itself
          server->SetUpstream(SentinelAddress(cfg.upstream, master, why));
          if (AnalyticsWiring* a = live_analytics.load()) a->UpstreamMoved();
        });
    std::optional<config::HostPort> master = watcher->ResolveNow();
    so.upstream = SentinelAddress(cfg.upstream, master, watcher->stats().last_error);
    if (master) side_upstream = MasterUrl(cfg.upstream, *master);
  } else {
    so.upstream = ResolveUpstream(cfg.upstream);
  }
  so.threads = cfg.threads;
  so.max_clients = budget.max_clients;
  so.connect_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.limits.connect_timeout);
  so.drain_idle =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg.limits.drain_idle_timeout);
  so.max_inflight = cfg.limits.max_inflight_bytes_per_client;
  so.pooling = cfg.upstream_pooling == config::UpstreamPooling::kAuto;
  so.pool.shared_connections = cfg.pool.shared_connections;
  so.pool.spare_connections = cfg.pool.spare_connections;
  so.pool.max_shared_request = cfg.pool.max_shared_request;
  so.pool.max_client_buffer = cfg.limits.max_inflight_bytes_per_client;
  so.pool.username = cfg.upstream.username;
  so.pool.password = cfg.upstream.password;

  auto table = LoadCommandTable(cfg, side_upstream, tls);
  AnalyticsWiring analytics(cfg, so.threads);
  if (watcher) {
    sentinel::SentinelWatcher* w = watcher.get();
    analytics.FollowSentinel(
        [w, &cfg]() -> std::optional<config::UpstreamUrl> {
          std::optional<config::HostPort> m = w->master();
          if (!m) return std::nullopt;
          return MasterUrl(cfg.upstream, *m);
        },
        [w] {
          sentinel::SentinelStats st = w->stats();
          engine::SentinelMetrics m;
          m.master_changes = st.master_changes;
          m.resolve_failures = st.resolve_failures;
          m.reachable = st.reachable;
          m.configured = st.configured;
          m.master = st.master;
          return m;
        });
  }

  net::Server server(so, table, analytics.sinks());
  if (watcher) {
    sentinel::SentinelWatcher* w = watcher.get();
    server.SetConnectFailureHook([w] { w->Nudge(); });
  }
  server.Start();
  analytics.Start(&server);
  if (watcher) {
    live_server.store(&server);
    live_analytics.store(&analytics);
    // Not started before: nothing can have changed since ResolveNow().
    watcher->Start();
  }
  spdlog::info(
      "respscope {} listening on {} -> {} ({} IO threads, upstream_pooling {}, at most {} "
      "clients, descriptor limit {})",
      RESPSCOPE_VERSION, server.ListenText(), so.upstream.display, so.threads,
      config::ToString(cfg.upstream_pooling), so.max_clients, budget.limit);

  // Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the live rules.
  asio::io_context signals_io;
  asio::signal_set stop_signals(signals_io, SIGTERM, SIGINT);
  asio::signal_set hup(signals_io, SIGHUP);
  // A host name that did not resolve at start is resolved again in the background (a
  // redis+sentinel:// upstream is the watcher's business).
  net::UpstreamResolver resolver(signals_io, &server, so.upstream);
  if (!watcher) resolver.Start();
  stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: draining {} connections (at most {} ms)", sig,
                 server.active_connections(),
                 std::chrono::duration_cast<std::chrono::milliseconds>(cfg.limits.drain_timeout)
                     .count());
    signals_io.stop();
  });
  std::function<void()> arm_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      analytics.Reload();
      if (tls) {
        // New connections use the re-read files; open ones keep the context they started with.
        std::string error = tls->Reload();
        if (error.empty()) {
          spdlog::info("SIGHUP: upstream TLS certificate, key and CA files re-read; new "
                       "upstream connections use them");
        } else {
          spdlog::error("SIGHUP: upstream TLS files rejected, previous ones kept: {}", error);
        }
      }
      arm_hup();
    });
  };
  arm_hup();
  signals_io.run();
  resolver.Stop();

  // The drain: clients are served until they leave or go idle; in the last second of
  // drain_timeout (its last quarter when shorter) respscope stops reading them and delivers
  // what they are owed; at drain_timeout whatever is left is closed.
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + cfg.limits.drain_timeout;
  const auto finish = deadline - std::min<config::Duration>(std::chrono::seconds(1),
                                                            cfg.limits.drain_timeout / 4);
  server.BeginDrain();
  bool finishing = false;
  for (auto now = start; server.active_connections() > 0 && now < deadline;
       now = std::chrono::steady_clock::now()) {
    if (!finishing && now >= finish) {
      finishing = true;
      spdlog::info("draining: {} connections still open, no longer reading their clients",
                   server.active_connections());
      server.FinishDrain();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  size_t left = server.active_connections();
  if (watcher) watcher->Stop();
  live_server.store(nullptr);
  server.Stop();
  analytics.Stop();
  spdlog::info("stopped ({} connections closed at the drain deadline)", left);
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace respscope::app
