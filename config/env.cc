#include "config/env.h"

#include <cstdlib>
#include <utility>

#include "config/error.h"
#include "config/values.h"

namespace respscope::config {
namespace {

bool IsNameStart(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

bool IsValidName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

template <typename Parse>
auto ParseOverride(const char* var, const std::string& text, Parse parse) {
  try {
    return parse(text);
  } catch (const ValueError& e) {
    throw ConfigError(var, e.what());
  }
}

}  // namespace

EnvGetter ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

EnvGetter MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string ExpandVariables(std::string_view text, const EnvGetter& env,
                            std::vector<std::string>* unset_optional) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i, 3) == "$${") {
      out += "${";
      i += 3;
      continue;
    }
    if (text.substr(i, 2) != "${") {
      out += text[i++];
      continue;
    }
    size_t close = text.find('}', i + 2);
    if (close == std::string_view::npos) {
      throw ValueError("unterminated '${' (expected ${NAME} or ${NAME:-DEFAULT})");
    }
    std::string_view inner = text.substr(i + 2, close - i - 2);
    std::string_view name = inner;
    std::optional<std::string_view> fallback;
    if (size_t sep = inner.find(":-"); sep != std::string_view::npos) {
      name = inner.substr(0, sep);
      fallback = inner.substr(sep + 2);
    }
    if (!IsValidName(name)) {
      throw ValueError("invalid variable name " + Quote(name) +
                       " (expected letters, digits and '_', as in ${NAME} or ${NAME:-DEFAULT})");
    }
    std::optional<std::string> value = env(std::string(name));
    if (fallback && (!value || value->empty())) {
      out += *fallback;
    } else if (value) {
      out += *value;
    } else if (name == kAdminTokenVar) {
      if (unset_optional != nullptr) unset_optional->emplace_back(name);
    } else {
      throw ValueError("environment variable " + Quote(name) + " is not set (use ${" +
                       std::string(name) + ":-default} for a default)");
    }
    i = close + 1;
  }
  return out;
}

void ApplyEnvOverrides(Config& config, const EnvGetter& env) {
  auto get = [&](const char* var) -> std::optional<std::string> {
    std::optional<std::string> v = env(var);
    if (v && v->empty()) return std::nullopt;
    return v;
  };
  if (auto v = get("RESPSCOPE_UPSTREAM")) {
    config.upstream = ParseOverride("RESPSCOPE_UPSTREAM", *v, ParseUpstreamUrl);
    config.origins.upstream = "RESPSCOPE_UPSTREAM";
  }
  if (auto v = get("RESPSCOPE_LISTEN")) {
    config.listen = ParseOverride("RESPSCOPE_LISTEN", *v, ParseListenList);
    config.origins.listen = "RESPSCOPE_LISTEN";
  }
  if (auto v = get("RESPSCOPE_ADMIN")) {
    config.admin.listen = ParseOverride("RESPSCOPE_ADMIN", *v, ParseHostPort);
    config.origins.admin_listen = "RESPSCOPE_ADMIN";
  }
  if (auto v = get("RESPSCOPE_UPSTREAM_POOLING")) {
    config.upstream_pooling =
        ParseOverride("RESPSCOPE_UPSTREAM_POOLING", *v, ParseUpstreamPooling);
    config.origins.upstream_pooling = "RESPSCOPE_UPSTREAM_POOLING";
  }
  UpstreamTlsConfig& tls = config.upstream_tls;
  auto tls_var = [&](const char* var) {
    std::optional<std::string> v = get(var);
    if (v) {
      if (!tls.configured) config.origins.upstream_tls = var;
      tls.configured = true;
    }
    return v;
  };
  if (auto v = tls_var("RESPSCOPE_UPSTREAM_TLS_CA_FILE")) tls.ca_file = *v;
  if (auto v = tls_var("RESPSCOPE_UPSTREAM_TLS_CERT_FILE")) tls.cert_file = *v;
  if (auto v = tls_var("RESPSCOPE_UPSTREAM_TLS_KEY_FILE")) tls.key_file = *v;
  if (auto v = tls_var("RESPSCOPE_UPSTREAM_TLS_SERVER_NAME")) tls.server_name = *v;
  if (auto v = tls_var("RESPSCOPE_UPSTREAM_TLS_MIN_VERSION")) {
    tls.min_version = ParseOverride("RESPSCOPE_UPSTREAM_TLS_MIN_VERSION", *v, ParseTlsVersion);
  }
  if (auto v = tls_var("RESPSCOPE_UPSTREAM_TLS_VERIFY")) {
    tls.verify = ParseOverride("RESPSCOPE_UPSTREAM_TLS_VERIFY", *v, ParseBool);
  }
  // The sentinels' own credentials (upstream_sentinel): secrets, so never echoed in errors.
  if (auto v = get("RESPSCOPE_UPSTREAM_SENTINEL_USERNAME")) {
    config.upstream_sentinel.username = *v;
    config.origins.upstream_sentinel = "RESPSCOPE_UPSTREAM_SENTINEL_USERNAME";
  }
  if (auto v = get("RESPSCOPE_UPSTREAM_SENTINEL_PASSWORD")) {
    config.upstream_sentinel.password = *v;
    config.origins.upstream_sentinel = "RESPSCOPE_UPSTREAM_SENTINEL_PASSWORD";
  }
  if (auto v = get("RESPSCOPE_ADMIN_TOKEN")) {
    config.admin.token = ParseOverride("RESPSCOPE_ADMIN_TOKEN", *v, ParseAdminToken);
    config.origins.admin_token = "RESPSCOPE_ADMIN_TOKEN";
  }
}

}  // namespace respscope::config
