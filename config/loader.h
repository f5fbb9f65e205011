// Loading the YAML configuration file (schema: DESIGN.md "Configuration", documented key by key
// in config/respscope.example.yaml) into config::Config, and the cross-field checks.
//
// Strict: unknown keys, duplicate keys, wrong types, out-of-range values, bad durations,
// sizes, globs, regexes, addresses and URLs are all errors. Each throws ConfigError whose
// what() is "FILE:LINE:COL: MESSAGE" (1-based), MESSAGE naming the key path and what was
// expected, e.g.
//   respscope.yaml:7:3: unknown key 'max_client' in limits (did you mean 'max_clients'?)
//   respscope.yaml:9:20: limits.connect_timeout: expected a duration like 10ms, 2s, 5m (got 'abc')
// Keys that are absent keep their defaults (config.h); an empty file is all defaults.
// Every scalar value goes through ${VAR} expansion first (config/env.h).
//
// Start-up / SIGHUP only: these allocate freely and throw.
#pragma once

#include <string>
#include <string_view>

#include "config/config.h"
#include "config/env.h"
#include "config/error.h"

namespace respscope::config {

// Reads and loads the file; `path` as given names it in messages. An unreadable file throws
// ConfigError "PATH: cannot read the configuration file (No such file or directory)".
Config LoadConfigFile(const std::string& path, const EnvGetter& env = ProcessEnv());

// Loads YAML text; `name` stands for the file name in messages.
Config LoadConfigString(std::string_view text, const std::string& name,
                        const EnvGetter& env = ProcessEnv());

// Cross-field checks on the effective configuration, after flags and RESPSCOPE_* overrides
// (which is why the loader does not run them): listen, admin.listen and upstream must not be
// the same address. Errors are located at the origin of the offending setting
// (config.origins). Appends to config.warnings (e.g. an admin API reachable from other hosts
// without a token); call it once.
void Validate(Config& config);

}  // namespace respscope::config
