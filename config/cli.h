// The command line, and the one place that applies the precedence
//   built-in defaults < --config file < flags < RESPSCOPE_* environment overrides.
//
//   respscope [--config FILE] [--listen ADDR[,ADDR]] [--upstream URL] [--admin HOST:PORT]
//             [--threads N] [--log-level LEVEL] [--check-config] [--version] [--help]
//
// main() needs one call:
//   auto startup = config::ResolveStartup(argc, argv, config::ProcessEnv(), std::cout, std::cerr);
//   if (!startup.config) return startup.exit_code;   // --help, --version, --check-config, errors
//   ... run with *startup.config, logging startup.config->warnings ...
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/env.h"

namespace respscope::config {

// A malformed command line: what() is the message alone, e.g. "unknown option '--thread' (did
// you mean '--threads'?)" or "--threads: expected an integer (got 'x')". Print it with the
// usage and exit with status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The flags as given; values are already parsed and checked. Options take "--flag VALUE" or
// "--flag=VALUE"; a repeated option keeps its last value.
struct CommandLine {
  std::optional<std::string> config_file;  // --config / -c
  std::optional<std::vector<ListenAddress>> listen;  // comma-separated in one --listen
  std::optional<UpstreamUrl> upstream;
  std::optional<UpstreamPooling> upstream_pooling;
  std::optional<HostPort> admin;
  std::optional<int> threads;
  std::optional<LogLevel> log_level;
  bool check_config = false;
  bool version = false;
  bool help = false;  // --help / -h
};

// argv[0] is the program name. Throws UsageError.
CommandLine ParseCommandLine(int argc, const char* const argv[]);

// The help text, ending in a newline.
std::string Usage();

// Copies the flags that are set into config (and config.origins).
void ApplyCommandLine(Config& config, const CommandLine& cli);

// Defaults, then the file (if --config), then the flags, then ApplyEnvOverrides, then
// Validate. Throws ConfigError (and UsageError for the argv overload).
Config LoadEffectiveConfig(const CommandLine& cli, const EnvGetter& env);
Config LoadEffectiveConfig(int argc, const char* const argv[], const EnvGetter& env);

// Everything main() does before running: parse, handle --help / --version (print to out, exit
// 0), load, and for --check-config print "OK" or the error and exit. Errors go to err with exit
// status 2 (a config error as its bare "FILE:LINE:COL: MESSAGE"; a usage error followed by the
// usage). Warnings go to err only for --check-config; when running, the caller logs them.
struct StartupDecision {
  std::optional<Config> config;  // set: run with it; unset: exit now with exit_code
  int exit_code = 0;
};
// `check`, when given, runs after Validate on the effective configuration (also for
// --check-config): checks that need other modules, such as reading upstream_tls's files. It
// throws ConfigError, reported like any other.
using StartupCheck = std::function<void(const Config&)>;
StartupDecision ResolveStartup(int argc, const char* const argv[], const EnvGetter& env,
                               std::ostream& out, std::ostream& err,
                               const StartupCheck& check = nullptr);

}  // namespace respscope::config
