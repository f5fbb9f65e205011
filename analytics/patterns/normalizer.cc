#include "analytics/patterns/normalizer.h"

#include <array>

#include "analytics/patterns/bytes.h"

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
namespace {

// One table lookup per byte classifies it for the id rules above; a segment's verdict needs
// only the AND (every byte has the property) and the OR (some byte has it) of its bytes.
enum : uint8_t { kDigit = 1, kAlpha = 2, kHexBit = 4, kToken = 8, kPrintable = 16 };

constexpr std::array<uint8_t, 256> MakeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool digit = c >= '0' && c <= '9';
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (digit) v |= kDigit | kHexBit;
    if (alpha) v |= kAlpha;
    if ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHexBit;
    if (digit || alpha || c == '_' || c == '-' || c == '+' || c == '/' || c == '=') v |= kToken;
    if (c >= 0x20 && c < 0x7f) v |= kPrintable;
    t[c] = v;
  }
  return t;
}
constexpr std::array<uint8_t, 256> kClasses = MakeClasses();

struct SegmentScan {
  bool id;
  bool printable;
};

SegmentScan ScanSegment(std::string_view seg) {
  uint8_t all = 0xff, any = 0;
  for (char ch : seg) {
    const uint8_t c = kClasses[static_cast<unsigned char>(ch)];
    all &= c;
    any |= c;
  }
  const size_t len = seg.size();
  // A byte outside the token set rules out every kind of id (a UUID is hex and '-' only).
  const bool id = len > 0 && (all & kToken) &&
                  ((all & kDigit) || (len >= 8 && (all & kHexBit) && (any & kDigit)) ||
                   (len >= 16 && (any & kDigit) && (any & kAlpha)) || IsUuid(seg));
  return {id, (all & kPrintable) != 0};
}

}  // namespace

bool Normalizer::LooksLikeId(std::string_view s) {
  // ':' is outside the token set: a string holding one is never an id.
  return ScanSegment(s).id;
}

bool Normalizer::AutoPattern(std::string_view key, std::string& out) {
  out.clear();
  bool printable = true;
  size_t start = 0;
  while (true) {
    size_t end = key.find(':', start);
    if (end == std::string_view::npos) end = key.size();
    const std::string_view seg = key.substr(start, end - start);
    const SegmentScan scan = ScanSegment(seg);
    printable &= scan.printable;
    if (scan.id) {
      out.append("{id}");
    } else if (scan.printable) {
      out.append(seg);
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
      return false;  // the rest of the key was not looked at
    }
    if (end == key.size()) break;
    out.push_back(':');
    start = end + 1;
  }
  return printable;
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

uint32_t Normalizer::PatternId(const KeyRules& rules, std::string_view key, KeyClass cls,
                               bool* printable) {
  if (printable) *printable = false;
  const size_t max_patterns = rules.pattern_options().max_patterns;
  if (cls.kind == KeyClass::kSensitive) return Intern(rules.sensitive_glob(cls.index), max_patterns);
  if (int r = rules.MatchRule(key); r >= 0) return Intern(rules.rule_name(r), max_patterns);
  if (!rules.pattern_options().auto_patterns || key.empty()) return kOther;
  const bool plain = AutoPattern(key, buffer_);
  if (printable) *printable = plain;
  // Keys of one pattern come in runs: compare with the last automatic name before hashing.
  // Exact: a name's id never changes once interned.
  if (SameBytes(names_[last_auto_], buffer_)) return last_auto_;
  uint32_t id = Intern(buffer_, max_patterns);
  if (names_[id] == buffer_) last_auto_ = id;
  return id;
}

}  // namespace respscope::patterns
