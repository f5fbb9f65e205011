#include "analytics/patterns/sanitizer.h"

// SHA256_Init/Update/Final are deprecated in OpenSSL 3 in favour of EVP, but EVP_MAC
// allocates on every re-initialisation; the plain SHA256_CTX copies below do not.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "analytics/patterns/glob.h"
#include "analytics/patterns/normalizer.h"

namespace respscope::patterns {
namespace {

bool IsPrefixChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

char LowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool EqualsFold(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

// `word` is one of the arguments (ASCII case ignored).
bool IsArgument(std::string_view word, const Sanitizer::ErrorArgs& from) {
  if (word.empty()) return false;
  for (std::string_view k : from.keys) {
    if (EqualsFold(word, k)) return true;
  }
  for (std::string_view a : from.args) {
    if (EqualsFold(word, a)) return true;
  }
  return false;
}

// `word` holds an argument of Sanitizer::kMinArgumentMatch bytes or more.
bool HoldsLongArgument(std::string_view word, const Sanitizer::ErrorArgs& from) {
  auto holds = [word](std::string_view arg) {
    if (arg.size() < Sanitizer::kMinArgumentMatch || arg.size() > word.size()) return false;
    for (size_t i = 0; i + arg.size() <= word.size(); ++i) {
      if (EqualsFold(word.substr(i, arg.size()), arg)) return true;
    }
    return false;
  };
  for (std::string_view k : from.keys) {
    if (holds(k)) return true;
  }
  for (std::string_view a : from.args) {
    if (holds(a)) return true;
  }
  return false;
}

// Length of the longest prefix of `s` (at most `max`) that does not split a UTF-8 sequence.
size_t Utf8Cut(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

// HMAC (RFC 2104) with SHA-256: H((K ^ opad) || H((K ^ ipad) || m)). The states after
// absorbing K ^ ipad and K ^ opad are computed once; each hash copies them (plain structs).
struct Sanitizer::HmacState {
  SHA256_CTX inner;
  SHA256_CTX outer;
};

Sanitizer::Sanitizer() : hmac_(std::make_unique<HmacState>()) { out_.reserve(512); }

Sanitizer::~Sanitizer() = default;

void Sanitizer::Bind(const KeyRules& rules) {
  rules_ = &rules;
  unsigned char block[SHA256_CBLOCK] = {};
  const std::string& key = rules.hash_key();
  if (key.size() > SHA256_CBLOCK) {
    SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
  } else {
    std::memcpy(block, key.data(), key.size());
  }
  unsigned char pad[SHA256_CBLOCK];
  for (int i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x36;
  SHA256_Init(&hmac_->inner);
  SHA256_Update(&hmac_->inner, pad, sizeof(pad));
  for (int i = 0; i < SHA256_CBLOCK; ++i) pad[i] = block[i] ^ 0x5c;
  SHA256_Init(&hmac_->outer);
  SHA256_Update(&hmac_->outer, pad, sizeof(pad));
  double rate = rules.sanitize_options().sample_rate;
  sample_all_ = rate >= 1.0;
  sample_threshold_ = rate <= 0.0 ? 0 : static_cast<uint64_t>(std::ldexp(rate, 64));
}

std::string_view Sanitizer::KeyedHash(std::string_view bytes) {
  unsigned char inner_md[SHA256_DIGEST_LENGTH], md[SHA256_DIGEST_LENGTH];
  SHA256_CTX ctx = hmac_->inner;
  SHA256_Update(&ctx, bytes.data(), bytes.size());
  SHA256_Final(inner_md, &ctx);
  ctx = hmac_->outer;
  SHA256_Update(&ctx, inner_md, sizeof(inner_md));
  SHA256_Final(md, &ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 8; ++i) {
    hex_[2 * i] = kHex[md[i] >> 4];
    hex_[2 * i + 1] = kHex[md[i] & 15];
  }
  return std::string_view(hex_, 16);
}

void Sanitizer::AppendPrintable(std::string_view in, size_t max_bytes) {
  size_t n = Utf8Cut(in, max_bytes);
  for (size_t i = 0; i < n;) {
    auto u = static_cast<unsigned char>(in[i]);
    // Keep well-formed UTF-8 sequences (JSON consumers need valid UTF-8); replace control
    // bytes and every byte of a malformed sequence by '?'.
    size_t len = u < 0x80 ? 1 : (u >> 5) == 0x6 ? 2 : (u >> 4) == 0xE ? 3 : (u >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    }
    if (!ok) {
      out_.push_back('?');
      ++i;
    } else if (len == 1) {
      out_.push_back(u < 0x20 || u == 0x7f ? '?' : in[i]);
      ++i;
    } else {
      out_.append(in.substr(i, len));
      i += len;
    }
  }
  if (n < in.size()) out_.append(kCutMarker);
}

std::string_view Sanitizer::Key(std::string_view key, KeyClass cls) {
  out_.clear();
  if (cls.kind == KeyClass::kSensitive) {
    out_.append(rules_->sensitive_prefix(cls.index));
    out_.push_back(':');
    if (rules_->sanitize_options().mode == SanitizeMode::kHash) {
      out_.append(KeyedHash(key));
    } else {
      out_.append(kRedacted);
    }
    return out_;
  }
  // Fast path: a key that is printable ASCII and short enough is its own storable form.
  if (key.size() <= rules_->sanitize_options().max_key_length) {
    bool plain = true;
    for (char c : key) {
      auto u = static_cast<unsigned char>(c);
      plain &= u >= 0x20 && u < 0x7f;
    }
    if (plain) return key;
  }
  AppendPrintable(key, rules_->sanitize_options().max_key_length);
  return out_;
}

void Sanitizer::MarkArguments(std::string_view line, const ErrorArgs& from) {
  mask_.assign(line.size(), '\0');
  auto mark = [&](std::string_view arg) {
    if (arg.size() < kMinArgumentMatch) return;
    const char first = LowerAscii(arg[0]);
    // i + kMinArgumentMatch <= size: an occurrence cut off by the end of the line (the reply
    // scanner keeps the first bytes of an error) still counts when kMinArgumentMatch of it show.
    for (size_t i = 0; i + kMinArgumentMatch <= line.size(); ++i) {
      if (LowerAscii(line[i]) != first) continue;
      const size_t n = std::min(arg.size(), line.size() - i);
      if (EqualsFold(line.substr(i, n), arg.substr(0, n))) {
        std::fill(mask_.begin() + static_cast<std::ptrdiff_t>(i),
                  mask_.begin() + static_cast<std::ptrdiff_t>(i + n), '\1');
      }
    }
  };
  for (std::string_view k : from.keys) mark(k);
  for (std::string_view a : from.args) mark(a);
}

bool Sanitizer::Masked(size_t begin, size_t end) const {
  for (size_t i = begin; i < end && i < mask_.size(); ++i) {
    if (mask_[i]) return true;
  }
  return false;
}

void Sanitizer::AppendErrorWords(std::string_view full, size_t begin, size_t end,
                                 const ErrorArgs* from) {
  const bool keep_quoted = rules_->sanitize_options().capture_values;
  const std::string_view line = full.substr(0, end);
  // With values kept, a quote is an ordinary character of its word.
  const char* const stops = keep_quoted ? " " : " '\"";
  size_t i = begin;
  while (i < line.size()) {
    char c = line[i];
    if (c == '\'' || c == '"') {
      // Quoted text is where Redis echoes arguments and values: dropped, unless values are
      // captured; then kept like a value (cut at max_value_size), a sensitive key excepted.
      size_t close = line.find(c, i + 1);
      std::string_view quoted = line.substr(
          i + 1, close == std::string_view::npos ? std::string_view::npos : close - i - 1);
      out_.push_back(c);
      if (keep_quoted && rules_->Classify(quoted).kind != KeyClass::kSensitive) {
        AppendPrintable(quoted, rules_->sanitize_options().max_value_size);
      } else {
        out_.append(kRedacted);
      }
      out_.push_back(c);
      i = close == std::string_view::npos ? line.size() : close + 1;
      continue;
    }
    if (c == ' ') {
      out_.push_back(' ');
      ++i;
      continue;
    }
    size_t word_end = line.find_first_of(stops, i);
    if (word_end == std::string_view::npos) word_end = line.size();
    std::string_view word = line.substr(i, word_end - i);
    // Trim punctuation that commonly hugs a key in prose ("key,", "(key)", "'key'").
    std::string_view core = word;
    while (!core.empty() && (core.back() == ',' || core.back() == '.' || core.back() == ')' ||
                             core.back() == ';' || core.back() == '\'' || core.back() == '"')) {
      core.remove_suffix(1);
    }
    while (!core.empty() && (core.front() == '(' || core.front() == '\'' || core.front() == '"')) {
      core.remove_prefix(1);
    }
    KeyClass cls = rules_->Classify(core);
    // A word can be a key ("pw:<token>"): any id-like ':'-separated segment hides the word.
    bool id_segment = false;
    for (size_t from_pos = 0; from_pos <= core.size() && !id_segment;) {
      size_t colon = core.find(':', from_pos);
      std::string_view seg =
          core.substr(from_pos, colon == std::string_view::npos ? core.npos : colon - from_pos);
      id_segment = seg.size() >= 8 && Normalizer::LooksLikeId(seg);
      if (colon == std::string_view::npos) break;
      from_pos = colon + 1;
    }
    const bool argument = from != nullptr && (Masked(i, word_end) || IsArgument(core, *from));
    if (argument || cls.kind == KeyClass::kSensitive || id_segment ||
        (core.size() >= 16 && Normalizer::LooksLikeId(core))) {
      // The punctuation around the word is not part of it: "script: [redacted], on ...".
      const size_t lead = static_cast<size_t>(core.data() - word.data());
      out_.append(word.substr(0, lead));
      out_.append(kRedacted);
      out_.append(word.substr(lead + core.size()));
    } else {
      AppendPrintable(word, word.size());
    }
    i = word_end;
  }
}

std::string_view Sanitizer::Error(std::string_view prefix, std::string_view text,
                                  const ErrorArgs& from) {
  out_.clear();
  const bool keep_values = rules_->sanitize_options().capture_values;
  const std::string_view line = text.substr(0, text.find_first_of("\r\n"));
  if (keep_values) {
    mask_.clear();
  } else {
    MarkArguments(line, from);
  }
  // Redis's own prefixes are short upper-case words (ERR, WRONGTYPE, NOSCRIPT...). A script can
  // put anything first (redis.error_reply(token)): a first word with digits or over 20
  // characters is not shown as a prefix; it stays in the text, where it is sanitised. So does
  // a first word that holds an argument, unless it is one of Redis's own codes.
  bool prefix_ok = !prefix.empty() && prefix.size() <= 20;
  for (char c : prefix) prefix_ok = prefix_ok && IsPrefixChar(c) && !(c >= '0' && c <= '9');
  const bool at_start = !prefix.empty() && line.substr(0, prefix.size()) == prefix;
  if (prefix_ok && !keep_values && !from.known_code &&
      (IsArgument(prefix, from) || HoldsLongArgument(prefix, from) ||
       (at_start && Masked(0, prefix.size())))) {
    prefix_ok = false;
  }
  out_.append(prefix_ok ? prefix : std::string_view("ERR"));
  AppendLine(line, prefix_ok && at_start ? prefix.size() : 0, /*leading_space=*/true,
             keep_values ? nullptr : &from);
  return out_;
}

std::string_view Sanitizer::Text(std::string_view text) {
  out_.clear();
  mask_.clear();
  AppendLine(text.substr(0, text.find_first_of("\r\n")), 0, /*leading_space=*/false, nullptr);
  return out_;
}

void Sanitizer::AppendLine(std::string_view line, size_t begin, bool leading_space,
                           const ErrorArgs* from) {
  while (begin < line.size() && line[begin] == ' ') ++begin;
  if (begin >= line.size()) return;
  const std::string_view rest = line.substr(begin);
  const bool cut = rest.size() > kMaxErrorText;
  if (leading_space) out_.push_back(' ');
  AppendErrorWords(line, begin, begin + Utf8Cut(rest, kMaxErrorText), from);
  if (cut) out_.append(kCutMarker);
}

std::string_view Sanitizer::Value(std::string_view value, KeyClass key_class) {
  out_.clear();
  if (!rules_->sanitize_options().capture_values || key_class.kind != KeyClass::kNormal) {
    return out_;
  }
  AppendPrintable(value, rules_->sanitize_options().max_value_size);
  return out_;
}

bool Sanitizer::Sampled() {
  if (sample_all_) return true;
  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1Dull < sample_threshold_;
}

}  // namespace respscope::patterns
