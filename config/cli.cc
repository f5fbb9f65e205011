#include "config/cli.h"

#include <algorithm>
#include <vector>

#include "config/error.h"
#include "config/loader.h"
#include "config/values.h"

#ifndef RESPSCOPE_VERSION
#define RESPSCOPE_VERSION "unknown"
#endif

namespace respscope::config {
namespace {

struct Option {
  std::string_view name;   // "--listen"
  std::string_view alias;  // "-c", or empty
  std::string_view value;  // what the value looks like, empty for a switch
};

constexpr Option kOptions[] = {
    {"--config", "-c", "FILE"},   {"--listen", "", "HOST:PORT or unix:///PATH"}, {"--upstream", "", "URL"},
    {"--upstream-pooling", "", "MODE"},
    {"--admin", "", "HOST:PORT"}, {"--threads", "", "N"},        {"--log-level", "", "LEVEL"},
    {"--check-config", "", ""},   {"--version", "", ""},         {"--help", "-h", ""},
};

template <typename Parse>
auto ParseFlagValue(std::string_view flag, std::string_view text, Parse parse) {
  try {
    return parse(text);
  } catch (const ValueError& e) {
    throw UsageError(std::string(flag) + ": " + e.what());
  }
}

}  // namespace

CommandLine ParseCommandLine(int argc, const char* const argv[]) {
  CommandLine cli;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::optional<std::string_view> inline_value;
    if (arg.rfind("--", 0) == 0) {
      if (size_t eq = arg.find('='); eq != std::string_view::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    const Option* opt = nullptr;
    for (const Option& o : kOptions) {
      if (arg == o.name || (!o.alias.empty() && arg == o.alias)) opt = &o;
    }
    if (opt == nullptr) {
      if (arg.empty() || arg[0] != '-') {
        throw UsageError("unexpected argument " + Quote(arg) + " (options start with --)");
      }
      std::string message = "unknown option " + Quote(arg);
      for (const Option& o : kOptions) {
        if (EditDistance(arg, o.name) <= 2) {
          message += " (did you mean '" + std::string(o.name) + "'?)";
          break;
        }
      }
      throw UsageError(message);
    }
    std::string_view value;
    if (opt->value.empty()) {
      if (inline_value) throw UsageError(std::string(opt->name) + " takes no value");
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw UsageError(std::string(opt->name) + " needs a value (" + std::string(opt->value) + ")");
    }
    const std::string_view name = opt->name;
    if (name == "--config") {
      if (value.empty()) throw UsageError("--config: expected a file name (got nothing)");
      cli.config_file = std::string(value);
    } else if (name == "--listen") {
      cli.listen = ParseFlagValue(name, value, ParseListenList);
    } else if (name == "--upstream") {
      cli.upstream = ParseFlagValue(name, value, ParseUpstreamUrl);
    } else if (name == "--upstream-pooling") {
      cli.upstream_pooling = ParseFlagValue(name, value, ParseUpstreamPooling);
    } else if (name == "--admin") {
      cli.admin = ParseFlagValue(name, value, ParseHostPort);
    } else if (name == "--threads") {
      int64_t n = ParseFlagValue(name, value, ParseInteger);
      if (n < 1 || n > kMaxThreads) {
        throw UsageError(
            "--threads: " +
            std::string(OutOfRange("1", std::to_string(kMaxThreads), std::to_string(n)).what()));
      }
      cli.threads = static_cast<int>(n);
    } else if (name == "--log-level") {
      cli.log_level = ParseFlagValue(name, value, ParseLogLevel);
    } else if (name == "--check-config") {
      cli.check_config = true;
    } else if (name == "--version") {
      cli.version = true;
    } else if (name == "--help") {
      cli.help = true;
    }
  }
  return cli;
}

std::string Usage() {
  return R"(usage: respscope [--config FILE] [--listen ADDR[,ADDR]] [--upstream URL] [--admin HOST:PORT]
                 [--upstream-pooling auto|dedicated] [--threads N] [--log-level LEVEL] [--check-config] [--version] [--help]

  -c, --config FILE       YAML configuration (every key: config/respscope.example.yaml)
      --listen ADDR[,ADDR]
                          where applications connect: HOST:PORT or unix:///PATH, or
                          several separated by commas (default 127.0.0.1:6380)
      --upstream URL      redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://... (TLS) or
                          unix:///PATH (default redis://127.0.0.1:6379)
      --upstream-pooling MODE
                          auto: clients share a few upstream connections until one needs
                          connection state (default); dedicated: one upstream connection
                          per client
      --admin HOST:PORT   metrics, API and dashboard (default 127.0.0.1:9190)
      --threads N         IO threads, 1 to 256 (default: the number of cores, at most 4)
      --log-level LEVEL   trace, debug, info, warn or error (default info)
      --check-config      validate the configuration, print OK or the error, and exit
      --version           print the version and exit
  -h, --help              print this help and exit

Precedence: defaults < the --config file < flags < the environment variables
RESPSCOPE_UPSTREAM, RESPSCOPE_UPSTREAM_POOLING, RESPSCOPE_LISTEN, RESPSCOPE_ADMIN and
RESPSCOPE_ADMIN_TOKEN.
Configuration and usage errors exit with status 2.
)";
}

void ApplyCommandLine(Config& config, const CommandLine& cli) {
  if (cli.listen) {
    config.listen = *cli.listen;
    config.origins.listen = "--listen";
  }
  if (cli.upstream) {
    config.upstream = *cli.upstream;
    config.origins.upstream = "--upstream";
  }
  if (cli.upstream_pooling) {
    config.upstream_pooling = *cli.upstream_pooling;
    config.origins.upstream_pooling = "--upstream-pooling";
  }
  if (cli.admin) {
    config.admin.listen = *cli.admin;
    config.origins.admin_listen = "--admin";
  }
  if (cli.threads) config.threads = *cli.threads;
  if (cli.log_level) config.logging.level = *cli.log_level;
}

Config LoadEffectiveConfig(const CommandLine& cli, const EnvGetter& env) {
  Config config = cli.config_file ? LoadConfigFile(*cli.config_file, env) : Config{};
  ApplyCommandLine(config, cli);
  ApplyEnvOverrides(config, env);
  Validate(config);
  return config;
}

Config LoadEffectiveConfig(int argc, const char* const argv[], const EnvGetter& env) {
  return LoadEffectiveConfig(ParseCommandLine(argc, argv), env);
}

StartupDecision ResolveStartup(int argc, const char* const argv[], const EnvGetter& env,
                               std::ostream& out, std::ostream& err,
                               const StartupCheck& check) {
  constexpr int kUsageOrConfigError = 2;
  CommandLine cli;
  try {
    cli = ParseCommandLine(argc, argv);
  } catch (const UsageError& e) {
    err << "respscope: " << e.what() << "\n\n" << Usage();
    return {std::nullopt, kUsageOrConfigError};
  }
  if (cli.help) {
    out << Usage();
    return {std::nullopt, 0};
  }
  if (cli.version) {
    out << "respscope " << RESPSCOPE_VERSION << "\n";
    return {std::nullopt, 0};
  }
  Config config;
  try {
    config = LoadEffectiveConfig(cli, env);
    if (check) check(config);
  } catch (const ConfigError& e) {
    err << e.what() << "\n";
    return {std::nullopt, kUsageOrConfigError};
  }
  if (cli.check_config) {
    for (const std::string& w : config.warnings) err << "warning: " << w << "\n";
    out << (cli.config_file ? *cli.config_file : std::string("configuration")) << ": OK\n";
    return {std::nullopt, 0};
  }
  return {std::move(config), 0};
}

}  // namespace respscope::config
