// The environment: ${VAR} expansion in YAML values and the RESPSCOPE_* overrides.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace respscope::config {

// Returns the value of an environment variable, or nullopt when it is not set. Injected so
// that tests never touch the process environment.
using EnvGetter = std::function<std::optional<std::string>(const std::string& name)>;

// std::getenv.
EnvGetter ProcessEnv();
// A fixed set of variables (tests, embedding).
EnvGetter MapEnv(std::map<std::string, std::string> vars);

// The variable that may be referenced while unset (see ExpandVariables).
inline constexpr std::string_view kAdminTokenVar = "RESPSCOPE_ADMIN_TOKEN";

// Expands references in one YAML scalar (never in keys; a value cannot inject YAML structure):
//   ${NAME}            the variable's value (empty if set but empty); error if unset
//   ${NAME:-DEFAULT}   the value, or DEFAULT when unset or empty (as in sh); DEFAULT is
//                      literal text up to the first '}' (no nesting)
//   $${                a literal "${"; any other '$' is literal ("pa$$word" stays as is)
// NAME is [A-Za-z_][A-Za-z0-9_]*.
//
// The one exception to "unset is an error" is RESPSCOPE_ADMIN_TOKEN: DESIGN.md's own example
// writes `token: ${RESPSCOPE_ADMIN_TOKEN}` for an optional token, and the variable is already
// an optional override, so an unset RESPSCOPE_ADMIN_TOKEN expands to "" (no token: the admin
// API needs no authentication). Its name is appended to *unset_optional so that the caller can
// warn. Any other unset variable is an error, so a misspelt name never silently becomes "".
//
// Throws ValueError: "environment variable 'X' is not set (use ${X:-default} for a default)",
// "unterminated '${'", "invalid variable name 'a-b'".
std::string ExpandVariables(std::string_view text, const EnvGetter& env,
                            std::vector<std::string>* unset_optional = nullptr);

// Applies RESPSCOPE_UPSTREAM, RESPSCOPE_LISTEN, RESPSCOPE_ADMIN (admin.listen),
// RESPSCOPE_ADMIN_TOKEN (admin.token), RESPSCOPE_UPSTREAM_TLS_{CA_FILE, CERT_FILE, KEY_FILE,
// SERVER_NAME, MIN_VERSION, VERIFY} (upstream_tls.*, key by key) and
// RESPSCOPE_UPSTREAM_SENTINEL_USERNAME / _PASSWORD (upstream_sentinel.username / password).
// They override both the file and the flags. A variable
// that is set but empty is ignored, like an unset one: an empty secret mounted by mistake must
// not switch authentication off. Records the variable name in config.origins.
// Throws ConfigError located at the variable name, e.g.
// "RESPSCOPE_LISTEN: expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got 'x')".
void ApplyEnvOverrides(Config& config, const EnvGetter& env);

}  // namespace respscope::config
