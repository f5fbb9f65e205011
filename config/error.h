// The one error type of configuration loading.
#pragma once

#include <stdexcept>
#include <string>

namespace respscope::config {

// Thrown by the loader (config/loader.h), Validate and the RESPSCOPE_* overrides.
// what() is exactly "WHERE: MESSAGE", WHERE being "FILE:LINE:COL" (1-based) for a YAML value,
// "FILE" when there is no position (unreadable file), the variable name for an environment
// override, or the origin of a setting (config::Origins) for a cross-field check.
// The process should print what() and exit with status 2.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& where, const std::string& message)
      : std::runtime_error(where + ": " + message), where_(where), message_(message) {}

  const std::string& where() const { return where_; }
  const std::string& message() const { return message_; }

 private:
  std::string where_;
  std::string message_;
};

// Thrown by the value parsers (config/values.h) and ${VAR} expansion: what() says what was
// expected, without a location; callers prefix the location and the key path.
class ValueError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace respscope::config
