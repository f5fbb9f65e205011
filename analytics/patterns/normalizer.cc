#include "analytics/patterns/normalizer.h"

namespace respscope::patterns {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

}  // namespace

// Id-like segments:
//   - all digits ("42", "1700000000000")
//   - a UUID (8-4-4-4-12 hex)
//   - hex of 8+ characters with at least one digit (a letters-only word such as "deadbeef"
//     or "facade" reads as a name more often than as an id)
//   - a token of 16+ characters from [A-Za-z0-9_+/=-] mixing letters and digits (random ids,
//     base64 tokens, nanoid)
bool Normalizer::LooksLikeId(std::string_view s) {
  if (s.empty()) return false;
  size_t digits = 0, alpha = 0, hex = 0, other = 0;
  for (char c : s) {
    if (IsDigit(c)) {
      ++digits;
    } else if (IsAlpha(c)) {
      ++alpha;
    } else if (c == '_' || c == '-' || c == '+' || c == '/' || c == '=') {
      ++other;
    } else {
      return IsUuid(s);  // anything else (spaces, dots, braces) is not an id
    }
    if (IsHex(c)) ++hex;
  }
  if (digits == s.size()) return true;
  if (IsUuid(s)) return true;
  if (s.size() >= 8 && hex == s.size() && digits > 0) return true;
  return s.size() >= 16 && digits > 0 && alpha > 0;
}

void Normalizer::AutoPattern(std::string_view key, std::string& out) {
  out.clear();
  size_t start = 0;
  while (true) {
    size_t end = key.find(':', start);
    std::string_view seg = key.substr(start, end == std::string_view::npos ? key.npos : end - start);
    if (LooksLikeId(seg)) {
      out.append("{id}");
    } else {
      // Pattern names become metric labels and JSON strings: keep them printable ASCII.
      for (char c : seg) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u >= 0x7f ? '?' : c);
      }
    }
    if (out.size() > kMaxNameLength) {
      out.resize(kMaxNameLength);
      out.append("\xE2\x80\xA6");  // "…"
      return;
    }
    if (end == std::string_view::npos) break;
    out.push_back(':');
    start = end + 1;
  }
}

Normalizer::Normalizer() {
  names_.emplace_back(kOtherName);
  ids_.emplace(std::string(kOtherName), kOther);
  buffer_.reserve(256);
}

uint32_t Normalizer::Intern(std::string_view name, size_t max_patterns) {
  if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  if (names_.size() > max_patterns) return kOther;  // names_[0] is "other"
  uint32_t id = static_cast<uint32_t>(names_.size());
  names_.emplace_back(name);
  ids_.emplace(std::string(name), id);
  return id;
}

uint32_t Normalizer::PatternId(const KeyRules& rules, std::string_view key, KeyClass cls) {
  const size_t max_patterns = rules.pattern_options().max_patterns;
  if (cls.kind == KeyClass::kSensitive) return Intern(rules.sensitive_glob(cls.index), max_patterns);
  if (int r = rules.MatchRule(key); r >= 0) return Intern(rules.rule_name(r), max_patterns);
  if (!rules.pattern_options().auto_patterns || key.empty()) return kOther;
  AutoPattern(key, buffer_);
  // Keys of one pattern come in runs: compare with the last automatic name before hashing.
  // Exact: a name's id never changes once interned.
  if (names_[last_auto_] == buffer_) return last_auto_;
  uint32_t id = Intern(buffer_, max_patterns);
  if (names_[id] == buffer_) last_auto_ = id;
  return id;
}

}  // namespace respscope::patterns
