// Sanitizer: the ONE place where key, value and error text become storable. The recorder runs
// every key, value and error text through it before copying anything, so every output
// (metrics, API, logs, exports, reports) is covered by construction.
//
//   sensitive key (glob "session:*"), mode hash   -> "session:<hmac-sha256-hex, first 16>"
//   sensitive key, mode redact                    -> "session:[redacted]"
//   other key                                     -> the key, non-printable bytes as '?',
//                                                    cut at max_key_length + "…"
//   error                                         -> "<PREFIX> <first line, quoted parts and
//                                                    sensitive/id-like tokens redacted, cut at 128>"
//
// Thread: not thread-safe; one per recorder shard. Returned views point into an internal
// buffer and stay valid until the next call on the same Sanitizer (Key() may instead return
// `key` itself when it is already storable: valid as long as `key` is). No allocation per call in
// steady state: HMAC-SHA256 runs from inner/outer SHA-256 states precomputed in Bind().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "analytics/patterns/key_rules.h"

#include <memory>

namespace respscope::patterns {

class Sanitizer {
 public:
  // Error remainders are cut at this many bytes (after the prefix).
  static constexpr size_t kMaxErrorText = 128;
  static constexpr std::string_view kRedacted = "[redacted]";
  static constexpr std::string_view kCutMarker = "\xE2\x80\xA6";  // "…"

  Sanitizer();
  ~Sanitizer();
  Sanitizer(const Sanitizer&) = delete;
  Sanitizer& operator=(const Sanitizer&) = delete;

  // Binds to `rules` (kept by reference: the caller keeps the shared_ptr alive for as long as
  // it uses this Sanitizer). Call at start and at the safe point after a rules swap.
  void Bind(const KeyRules& rules);

  // The storable form of `key`; `cls` must be rules.Classify(key).
  std::string_view Key(std::string_view key, KeyClass cls);
  // The storable form of an error: prefix plus sanitised first line of `text` (which may or
  // may not start with the prefix).
  std::string_view Error(std::string_view prefix, std::string_view text);
  // Free text from the application (a failed job's reason): its first line, sanitised and cut
  // like an error's remainder, with no error prefix added.
  std::string_view Text(std::string_view text);
  // A value: empty unless capture_values and the key is not sensitive; else cut at
  // max_value_size, non-printable bytes as '?'.
  std::string_view Value(std::string_view value, KeyClass key_class);
  // Per-key sampling decision at sample_rate (xorshift; not cryptographic).
  bool Sampled();
  // First 16 hex digits of HMAC-SHA256(hash_key, bytes).
  std::string_view KeyedHash(std::string_view bytes);

 private:
  void AppendFirstLine(std::string_view text, bool leading_space);
  void AppendPrintable(std::string_view in, size_t max_bytes);
  void AppendErrorWords(std::string_view line);

  struct HmacState;
  const KeyRules* rules_ = nullptr;
  std::unique_ptr<HmacState> hmac_;
  uint64_t sample_threshold_ = ~uint64_t{0};
  bool sample_all_ = true;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  std::string out_;
  char hex_[17] = {};
};

}  // namespace respscope::patterns
