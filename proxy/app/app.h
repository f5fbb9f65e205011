// The wiring of respscope: configuration -> data plane + analytics + admin server.
#pragma once

#include "config/config.h"

namespace respscope::app {

// Runs respscope until SIGTERM/SIGINT; returns the process exit code.
int Run(const config::Config& config);

// Sets up spdlog from the logging section (JSON lines unless on a terminal, or as configured).
void SetupLogging(const config::LoggingConfig& logging);

}  // namespace respscope::app
