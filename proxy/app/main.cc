// respscope: the one place that knows the data plane, the analytics and the configuration.
#include <spdlog/spdlog.h>

#include <iostream>

#include "config/cli.h"
#include "proxy/app/app.h"

int main(int argc, char** argv) {
  using namespace respscope;
  config::StartupDecision start =
      config::ResolveStartup(argc, argv, config::ProcessEnv(), std::cout, std::cerr,
                             app::CheckUpstreamTls);
  if (!start.config) return start.exit_code;
  try {
    return app::Run(*start.config);
  } catch (const std::exception& e) {
    spdlog::critical("respscope: {}", e.what());
    std::cerr << "respscope: " << e.what() << "\n";
    return 1;
  }
}
