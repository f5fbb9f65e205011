// Sanitizer: the ONE place where key, value and error text become storable. The recorder runs
// every key, value and error text through it before copying anything, so every output
// (metrics, API, logs, exports, reports) is covered by construction.
//
//   sensitive key (glob "session:*"), mode hash   -> "session:<hmac-sha256-hex, first 16>"
//   sensitive key, mode redact                    -> "session:[redacted]"
//   other key                                     -> the key, non-printable bytes as '?',
//                                                    cut at max_key_length + "…"
//   error                                         -> "<PREFIX> <first line, quoted parts,
//                                                    the command's arguments and sensitive/id-like
//                                                    tokens redacted, cut at 128>"
//
// Error texts echo what the client sent (Redis's "unknown command 'x', with args beginning
// with: ..."; a script's redis.error_reply('bad ' .. ARGV[1])). Unless capture_values is on, a
// quoted segment and every word holding one of the command's arguments are redacted:
//
//   args {"hunter two", "x"}:  "bad hunter two and x."  ->  "bad [redacted] and [redacted]"
//
// An argument of kMinArgumentMatch bytes or more is looked for anywhere in the line (inside a
// word, across spaces, cut off at the line's end); a shorter one only as a whole word, so that
// a "1" or an "EX" does not eat Redis's fixed wording. Comparisons ignore ASCII case.
//
// Thread: not thread-safe; one per recorder shard. Returned views point into an internal
// buffer and stay valid until the next call on the same Sanitizer (Key() may instead return
// `key` itself when it is already storable: valid as long as `key` is). No allocation per call in
// steady state: HMAC-SHA256 runs from inner/outer SHA-256 states precomputed in Bind().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "analytics/patterns/key_rules.h"

namespace respscope::patterns {

// What an error text is checked against: the arguments of the command that caused it, as
// far as the data plane kept them (see analytics/observation.h). Views are read only
// during Error(); empty views (arguments over the capture limit) are skipped.
struct ErrorArgs {
  std::span<const std::string_view> keys;
  std::span<const std::string_view> args;  // without the command name
  // The prefix is one of Redis's own error codes (a fixed word, the label errors are
  // counted under): shown even when an argument repeats it.
  bool known_code = false;
};

class Sanitizer {
 public:
  // Error remainders are cut at this many bytes (after the prefix).
  static constexpr size_t kMaxErrorText = 128;
  static constexpr std::string_view kRedacted = "[redacted]";
  static constexpr std::string_view kCutMarker = "\xE2\x80\xA6";  // "…"
  // Arguments at least this long are matched inside words; shorter ones as whole words only.
  static constexpr size_t kMinArgumentMatch = 4;

  using ErrorArgs = patterns::ErrorArgs;

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
  // may not start with the prefix). A prefix that is not an upper-case word, or that holds an
  // argument (unless from.known_code), is shown as "ERR" and stays in the text.
  std::string_view Error(std::string_view prefix, std::string_view text,
                         const ErrorArgs& from = {});
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
  void AppendLine(std::string_view line, size_t begin, bool leading_space, const ErrorArgs* from);
  void AppendPrintable(std::string_view in, size_t max_bytes);
  void AppendErrorWords(std::string_view line, size_t begin, size_t end, const ErrorArgs* from);
  // mask_[i] = 1 where line[i] belongs to an argument of kMinArgumentMatch bytes or more.
  void MarkArguments(std::string_view line, const ErrorArgs& from);
  bool Masked(size_t begin, size_t end) const;

  struct HmacState;
  const KeyRules* rules_ = nullptr;
  std::unique_ptr<HmacState> hmac_;
  uint64_t sample_threshold_ = ~uint64_t{0};
  bool sample_all_ = true;
  uint64_t rng_ = 0x9E3779B97F4A7C15ull;
  std::string out_;
  std::string mask_;
  char hex_[17] = {};
};

}  // namespace respscope::patterns
