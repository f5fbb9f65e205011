#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "proxy/app/app.h"

namespace respscope::app {

namespace {
// %* : the message, escaped for a JSON string (quotes, backslashes, control bytes), so that
// every log line stays one valid JSON object whatever text a message carries.
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        dest.push_back('\\');
        dest.push_back(c);
      } else if (u < 0x20) {
        const char esc[] = {'\\', 'u', '0', '0', kHex[u >> 4], kHex[u & 15]};
        dest.append(esc, esc + sizeof(esc));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};
}  // namespace

void SetupLogging(const config::LoggingConfig& logging) {
  auto logger = spdlog::stderr_color_mt("respscope");
  bool json = logging.format == config::LogFormat::kJson ||
              (logging.format == config::LogFormat::kAuto && !isatty(STDERR_FILENO));
  if (json) {
    // One JSON object per line.
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonEscapedMessage>('*').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","msg":"%*"})");
    logger->set_formatter(std::move(formatter));
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
