#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "proxy/app/app.h"

namespace respscope::app {

void SetupLogging(const config::LoggingConfig& logging) {
  auto logger = spdlog::stderr_color_mt("respscope");
  bool json = logging.format == config::LogFormat::kJson ||
              (logging.format == config::LogFormat::kAuto && !isatty(STDERR_FILENO));
  if (json) {
    // One JSON object per line; the message is escaped by the callers that embed user text.
    logger->set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","msg":"%v"})");
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  switch (logging.level) {
    case config::LogLevel::kTrace: logger->set_level(spdlog::level::trace); break;
    case config::LogLevel::kDebug: logger->set_level(spdlog::level::debug); break;
    case config::LogLevel::kInfo: logger->set_level(spdlog::level::info); break;
    case config::LogLevel::kWarn: logger->set_level(spdlog::level::warn); break;
    case config::LogLevel::kError: logger->set_level(spdlog::level::err); break;
  }
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace respscope::app
