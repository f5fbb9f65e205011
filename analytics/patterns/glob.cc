#include "analytics/patterns/glob.h"

#include <cstddef>

namespace respscope::patterns {
namespace {

// Matches one character class starting at pattern[p] == '['. Returns the index just past the
// closing ']' (or the pattern end for an unterminated class, which then matches literally
// nothing more) and sets `matched`.
size_t MatchClass(std::string_view pattern, size_t p, char c, bool& matched) {
  ++p;  // past '['
  bool negate = false;
  if (p < pattern.size() && (pattern[p] == '^' || pattern[p] == '!')) {
    negate = true;
    ++p;
  }
  matched = false;
  bool first = true;
  while (p < pattern.size() && (first || pattern[p] != ']')) {
    first = false;
    char lo = pattern[p];
    if (lo == '\\' && p + 1 < pattern.size()) lo = pattern[++p];
    if (p + 2 < pattern.size() && pattern[p + 1] == '-' && pattern[p + 2] != ']') {
      char hi = pattern[p + 2];
      if (hi == '\\' && p + 3 < pattern.size()) hi = pattern[++p + 2];
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) matched = true;
      p += 3;
    } else {
      if (c == lo) matched = true;
      ++p;
    }
  }
  if (p < pattern.size()) ++p;  // past ']'
  if (negate) matched = !matched;
  return p;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with a single backtrack point for the last '*': linear in practice,
  // O(n*m) worst case, no recursion (patterns come from config, keys from clients).
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      char pc = pattern[p];
      if (pc == '*') {
        while (p < pattern.size() && pattern[p] == '*') ++p;
        if (p == pattern.size()) return true;
        star_p = p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        bool matched = false;
        size_t next = MatchClass(pattern, p, text[t], matched);
        if (matched) {
          p = next;
          ++t;
          continue;
        }
      } else {
        if (pc == '\\' && p + 1 < pattern.size()) pc = pattern[p + 1];
        if (pc == text[t]) {
          p += (pattern[p] == '\\' && p + 1 < pattern.size()) ? 2 : 1;
          ++t;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string_view GlobLiteralPrefix(std::string_view pattern) {
  size_t i = pattern.find_first_of("*?[\\");
  return i == std::string_view::npos ? pattern : pattern.substr(0, i);
}

}  // namespace respscope::patterns
