// The wiring of respscope: configuration -> data plane + analytics + admin server.
#pragma once

#include <memory>

#include "common/tls.h"
#include "config/config.h"

namespace respscope::app {

// Runs respscope until SIGTERM/SIGINT; returns the process exit code.
int Run(const config::Config& config);

// upstream_tls for a rediss:// upstream: the files read and the TLS context built (null for a
// plain upstream). Throws std::runtime_error naming the setting and the file.
std::shared_ptr<common::UpstreamTls> MakeUpstreamTls(const config::Config& config);
// The same, as a start-up check (config::StartupCheck, also for --check-config): throws
// config::ConfigError located where upstream_tls was set.
void CheckUpstreamTls(const config::Config& config);

// Sets up spdlog from the logging section (JSON lines unless on a terminal, or as configured).
void SetupLogging(const config::LoggingConfig& logging);

}  // namespace respscope::app
