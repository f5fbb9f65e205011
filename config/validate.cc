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

void Validate(Config& config) {
  const Origins& o = config.origins;
  if (BindClash(config.listen, config.admin.listen)) {
    if (o.admin_listen != "default") {
      throw ConfigError(o.admin_listen, "admin.listen " + config.admin.listen.ToString() +
                                            " clashes with listen " + config.listen.ToString() +
                                            " (from " + o.listen + ")");
    }
    throw ConfigError(o.listen, "listen " + config.listen.ToString() +
                                    " clashes with admin.listen " + config.admin.listen.ToString() +
                                    " (from " + o.admin_listen + ")");
  }
  if (ReachesSelf(config.upstream, config.listen)) {
    throw ConfigError(o.upstream, "upstream " + config.upstream.ToString() +
                                      " is respscope's own listen address " +
                                      config.listen.ToString() + " (from " + o.listen +
                                      "): it would proxy to itself");
  }
  if (ReachesSelf(config.upstream, config.admin.listen)) {
    throw ConfigError(o.upstream, "upstream " + config.upstream.ToString() +
                                      " is respscope's own admin address " +
                                      config.admin.listen.ToString() + " (from " + o.admin_listen +
                                      ")");
  }
  for (const HostPort& s : config.upstream.sentinels) {
    UpstreamUrl as_url;
    as_url.host = s.host;
    as_url.port = s.port;
    if (ReachesSelf(as_url, config.listen) || ReachesSelf(as_url, config.admin.listen)) {
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
