// Validate(): the cross-field checks on the effective configuration (declared in loader.h).
#include <string>

#include "config/loader.h"

namespace respscope::config {
namespace {

bool IsWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }
bool IsLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}
std::string Canonical(const std::string& host) { return host == "localhost" ? "127.0.0.1" : host; }

// Two listeners on these addresses cannot both bind.
bool BindClash(const HostPort& a, const HostPort& b) {
  return a.port != 0 && a.port == b.port &&
         (Canonical(a.host) == Canonical(b.host) || IsWildcard(a.host) || IsWildcard(b.host));
}

// Connecting to `url` reaches our own listener at `own`.
bool ReachesSelf(const UpstreamUrl& url, const HostPort& own) {
  if (!url.IsTcp() || own.port == 0 || url.port != own.port) return false;
  return Canonical(url.host) == Canonical(own.host) ||
         (IsWildcard(own.host) && (IsLoopback(url.host) || IsWildcard(url.host)));
}

}  // namespace

// True when url reaches one of respscope's own TCP listen addresses.
bool ListensOn(const Config& config, const UpstreamUrl& url) {
  for (const ListenAddress& listen : config.listen) {
    if (!listen.IsUnix() && ReachesSelf(url, listen.tcp)) return true;
  }
  return false;
}

void Validate(Config& config) {
  const Origins& o = config.origins;
  if (config.listen.empty()) throw ConfigError(o.listen, "listen: at least one address is needed");
  for (const ListenAddress& listen : config.listen) {
    if (listen.IsUnix()) {
      if (!config.upstream.IsTcp() && config.upstream.path == listen.unix_path) {
        throw ConfigError(o.upstream, "upstream " + config.upstream.ToString() +
                                          " is respscope's own listen address " +
                                          listen.ToString() + " (from " + o.listen +
                                          "): it would proxy to itself");
      }
      continue;
    }
    if (BindClash(listen.tcp, config.admin.listen)) {
      if (o.admin_listen != "default") {
        throw ConfigError(o.admin_listen, "admin.listen " + config.admin.listen.ToString() +
                                              " clashes with listen " + listen.ToString() +
                                              " (from " + o.listen + ")");
      }
      throw ConfigError(o.listen, "listen " + listen.ToString() + " clashes with admin.listen " +
                                      config.admin.listen.ToString() + " (from " +
                                      o.admin_listen + ")");
    }
    if (ReachesSelf(config.upstream, listen.tcp)) {
      throw ConfigError(o.upstream, "upstream " + config.upstream.ToString() +
                                        " is respscope's own listen address " +
                                        listen.ToString() + " (from " + o.listen +
                                        "): it would proxy to itself");
    }
  }
  for (size_t i = 0; i < config.listen.size(); ++i) {
    for (size_t j = i + 1; j < config.listen.size(); ++j) {
      const ListenAddress& a = config.listen[i];
      const ListenAddress& b = config.listen[j];
      if (!a.IsUnix() && !b.IsUnix() && BindClash(a.tcp, b.tcp)) {
        throw ConfigError(o.listen, "listen " + a.ToString() + " and " + b.ToString() +
                                        " cannot both be bound");
      }
      if (a.IsUnix() && a == b) {
        throw ConfigError(o.listen, "listen " + a.ToString() + " given twice");
      }
    }
  }
  if (ReachesSelf(config.upstream, config.admin.listen)) {
    throw ConfigError(o.upstream, "upstream " + config.upstream.ToString() +
                                      " is respscope's own admin address " +
                                      config.admin.listen.ToString() + " (from " + o.admin_listen +
                                      ")");
  }
  const UpstreamTlsConfig& tls = config.upstream_tls;
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    throw ConfigError(o.upstream_tls,
                      std::string("upstream_tls: ") +
                          (tls.cert_file.empty() ? "key_file is set without cert_file"
                                                 : "cert_file is set without key_file") +
                          " (mutual TLS needs both)");
  }
  if (tls.configured && config.upstream.scheme != UpstreamScheme::kRediss) {
    config.warnings.push_back("upstream_tls (from " + o.upstream_tls +
                              ") is ignored: the upstream " + config.upstream.ToString() +
                              " is not rediss://");
  }
  if (config.upstream.scheme == UpstreamScheme::kRediss && !tls.verify) {
    config.warnings.push_back(
        "upstream_tls.verify is false: the upstream's certificate and name are NOT checked; "
        "anyone on the path can impersonate Redis and read every command");
  }
  for (const HostPort& s : config.upstream.sentinels) {
    UpstreamUrl as_url;
    as_url.host = s.host;
    as_url.port = s.port;
    if (ListensOn(config, as_url) || ReachesSelf(as_url, config.admin.listen)) {
      throw ConfigError(o.upstream, "sentinel " + s.ToString() +
                                        " is one of respscope's own listen addresses");
    }
  }
  const SentinelConfig& sc = config.upstream_sentinel;
  if (!config.upstream.IsSentinel() && (!sc.username.empty() || !sc.password.empty())) {
    config.warnings.push_back("upstream_sentinel credentials (from " + o.upstream_sentinel +
                              ") are ignored: the upstream " + config.upstream.ToString() +
                              " is not a redis+sentinel:// upstream");
  }
  if (config.admin.token.empty() && !IsLoopback(config.admin.listen.host)) {
    config.warnings.push_back(
        "admin.listen " + config.admin.listen.ToString() +
        " is reachable from other hosts and admin.token is empty: anyone who can connect can "
        "read the API, key names included; set RESPSCOPE_ADMIN_TOKEN");
  }
}

}  // namespace respscope::config
