// Small helpers shared by the two scanners. No I/O, no allocation unless stated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respscope::resp {

// Parses a signed 64-bit integer exactly as Redis's string2ll does: optional '-', no '+', no
// blanks, no leading zeros (but "0"), no overflow. Returns false on anything else.
bool ParseInt64(std::string_view s, int64_t* out);

// The line at in[from]: its bytes up to the first CR (searched over at most `window` bytes),
// whose next byte must be at hand (both scanners skip it unread, as Redis does). Sets *next to
// the offset after it. False when no such line is whole in `in`: the scanners' short paths
// then leave the bytes to their state machines.
inline bool WholeLine(std::string_view in, size_t from, size_t window, std::string_view* line,
                      size_t* next) {
  const size_t end = std::min(in.size(), from + window);
  if (from >= end) return false;
  const char* cr = static_cast<const char*>(std::memchr(in.data() + from, '\r', end - from));
  if (cr == nullptr) return false;
  const size_t at = static_cast<size_t>(cr - in.data());
  if (at + 1 >= in.size()) return false;
  *line = in.substr(from, at - from);
  *next = at + 2;
  return true;
}

// Splits an inline command line as Redis's sdssplitargs does (blanks separate, "double quotes"
// with \n \r \t \b \a \\ \" \xHH escapes, 'single quotes' with \' only; a closing quote must be
// followed by a blank or the end). Unescaped argument bytes are appended to *storage and their
// (offset, length) pairs to *spans. Returns false on unbalanced quotes. The line ends at its
// first NUL byte, as the C string Redis splits does.
bool SplitInlineArgs(std::string_view line, std::string* storage,
                     std::vector<std::pair<size_t, size_t>>* spans);

// Lowercases ASCII into out (capacity cap); returns false when s is longer than cap.
bool AsciiLower(std::string_view s, char* out, size_t cap);

inline char AsciiLowerChar(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

// s equals `lower` (already lowercase) ignoring ASCII case: a command name or keyword from the
// wire against a known one.
inline bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (AsciiLowerChar(s[i]) != lower[i]) return false;
  }
  return true;
}

// a equals b ignoring ASCII case on both sides.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLowerChar(a[i]) != AsciiLowerChar(b[i])) return false;
  }
  return true;
}

}  // namespace respscope::resp
