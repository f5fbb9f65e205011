// Redis-style glob matching (`*`, `?`, `[abc]`, `[a-z]`, `[^a]`/`[!a]`, `\x` escapes), the
// dialect users already know from KEYS and PSUBSCRIBE. No allocation, no I/O.
#pragma once

#include <string_view>

namespace respscope::patterns {

// True when `text` matches `pattern` as a whole. Case-sensitive.
bool GlobMatch(std::string_view pattern, std::string_view text);

// The literal text before the first wildcard (`*`, `?`, `[`, `\`), e.g. "session:" for
// "session:*". Used as a cheap pre-filter and as the readable part of a sanitised key.
std::string_view GlobLiteralPrefix(std::string_view pattern);

}  // namespace respscope::patterns
