#include "analytics/patterns/glob.h"

#include "config/glob.h"

#include <cstddef>

namespace respscope::patterns {

// One matcher for the whole product: config validates globs with config::GlobError and the
// analytics match with the same code, so a rule cannot mean two things.
bool GlobMatch(std::string_view pattern, std::string_view text) {
  return config::GlobMatch(pattern, text);
}

std::string_view GlobLiteralPrefix(std::string_view pattern) {
  size_t i = pattern.find_first_of("*?[\\");
  return i == std::string_view::npos ? pattern : pattern.substr(0, i);
}

}  // namespace respscope::patterns
