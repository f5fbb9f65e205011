// Redis-style glob matching (the KEYS / SCAN MATCH dialect), for key pattern rules, sensitive
// and excluded key patterns, and alert pattern / queue selectors. Anyone may include this
// header: it depends on nothing but the standard library.
//
//   *        any run of bytes, including none and including ':'
//   ?        exactly one byte
//   [abc]    one byte of the set; [a-z] ranges (reversed ranges are swapped, as Redis does);
//            [^abc] the complement
//   \x       the byte x literally (also inside [...])
//
// Matching is byte-wise and case-sensitive, O(|pattern| * |text|) in the worst case (no
// exponential backtracking on "*a*a*a*b"), no allocation. Thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace respscope::config {

// True when the whole of text matches pattern. An invalid pattern (see GlobError) matches
// nothing.
bool GlobMatch(std::string_view pattern, std::string_view text);

// Empty when pattern is a valid glob, otherwise why not: "unbalanced '['",
// "empty '[]' matches nothing", "'\' at the end escapes nothing".
std::string GlobError(std::string_view pattern);

}  // namespace respscope::config
