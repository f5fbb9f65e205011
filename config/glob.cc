#include "config/glob.h"

#include <utility>

namespace respscope::config {
namespace {

enum class Step { kMatch, kNoMatch, kInvalid };

// Matches the single-byte element of pattern at *p ('?', a class, an escape or a literal)
// against c, and advances *p past the element.
Step MatchOne(std::string_view pattern, size_t* p, unsigned char c) {
  size_t i = *p;
  char first = pattern[i];
  if (first == '?') {
    *p = i + 1;
    return Step::kMatch;
  }
  if (first == '\\') {
    if (i + 1 >= pattern.size()) return Step::kInvalid;
    *p = i + 2;
    return static_cast<unsigned char>(pattern[i + 1]) == c ? Step::kMatch : Step::kNoMatch;
  }
  if (first != '[') {
    *p = i + 1;
    return static_cast<unsigned char>(first) == c ? Step::kMatch : Step::kNoMatch;
  }
  ++i;
  bool negate = i < pattern.size() && pattern[i] == '^';
  if (negate) ++i;
  bool matched = false;
  bool empty = true;
  while (true) {
    if (i >= pattern.size()) return Step::kInvalid;  // unbalanced '['
    if (pattern[i] == ']') break;
    empty = false;
    unsigned char lo;
    if (pattern[i] == '\\') {
      if (i + 1 >= pattern.size()) return Step::kInvalid;
      lo = static_cast<unsigned char>(pattern[i + 1]);
      i += 2;
    } else {
      lo = static_cast<unsigned char>(pattern[i]);
      i += 1;
    }
    unsigned char hi = lo;
    // "a-z"; a '-' right before ']' is a literal '-'.
    if (i + 1 < pattern.size() && pattern[i] == '-' && pattern[i + 1] != ']') {
      if (pattern[i + 1] == '\\') {
        if (i + 2 >= pattern.size()) return Step::kInvalid;
        hi = static_cast<unsigned char>(pattern[i + 2]);
        i += 3;
      } else {
        hi = static_cast<unsigned char>(pattern[i + 1]);
        i += 2;
      }
    }
    if (lo > hi) std::swap(lo, hi);
    if (c >= lo && c <= hi) matched = true;
  }
  if (empty) return Step::kInvalid;
  *p = i + 1;
  return matched != negate ? Step::kMatch : Step::kNoMatch;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // The classic single-star backtracking walk: only '*' matches a variable length, so on a
  // mismatch it is enough to let the most recent '*' swallow one more byte and retry. Earlier
  // stars never need revisiting, which bounds the work to |pattern| * |text|.
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;  // everything before was matched, so valid
      star_p = p;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      size_t next = p;
      Step step = MatchOne(pattern, &next, static_cast<unsigned char>(text[t]));
      if (step == Step::kInvalid) return false;
      if (step == Step::kMatch) {
        p = next;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string GlobError(std::string_view pattern) {
  size_t i = 0;
  while (i < pattern.size()) {
    char c = pattern[i];
    if (c == '\\') {
      if (i + 1 >= pattern.size()) return "'\\' at the end escapes nothing";
      i += 2;
    } else if (c == '[') {
      size_t j = i + 1;
      if (j < pattern.size() && pattern[j] == '^') ++j;
      size_t body = j;
      while (j < pattern.size() && pattern[j] != ']') j += pattern[j] == '\\' ? 2 : 1;
      if (j >= pattern.size()) return "unbalanced '['";
      if (j == body) return "empty '[]' matches nothing";
      i = j + 1;
    } else {
      ++i;
    }
  }
  return "";
}

}  // namespace respscope::config
