#include "analytics/jobs/resp_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace respscope::analytics::jobs {
namespace {

constexpr size_t kReserveCap = 16;

class Parser {
 public:
  Parser(std::string_view in, const RespLimits& limits) : in_(in), limits_(limits) {}

  bool Value(RespValue* out, size_t depth) {
    if (depth > limits_.max_depth) return false;
    if (++values_ > limits_.max_values) return false;
    if (pos_ >= in_.size()) return false;
    const char tag = in_[pos_++];
    std::string_view line;
    switch (tag) {
      case '+':
        if (!Line(&line)) return false;
        out->type = RespValue::Type::kSimple;
        out->str = line;
        return true;
      case '-':
        if (!Line(&line)) return false;
        out->type = RespValue::Type::kError;
        out->str = line;
        return true;
      case ':':
        out->type = RespValue::Type::kInteger;
        return Line(&line) && ParseInt(line, &out->integer);
      case '_':
        out->type = RespValue::Type::kNull;
        return Line(&line) && line.empty();
      case '#':
        if (!Line(&line) || line.size() != 1 || (line[0] != 't' && line[0] != 'f')) return false;
        out->type = RespValue::Type::kBoolean;
        out->boolean = line[0] == 't';
        return true;
      case ',':
        if (!Line(&line)) return false;
        out->type = RespValue::Type::kDouble;
        out->str = line;
        return ParseDouble(line, &out->dbl);
      case '(':
        if (!Line(&line) || !ValidBigNumber(line)) return false;
        out->type = RespValue::Type::kBigNumber;
        out->str = line;
        return true;
      case '$':
        return Blob(out, RespValue::Type::kBulk, /*allow_null=*/true, /*verbatim=*/false);
      case '!':
        return Blob(out, RespValue::Type::kError, false, false);
      case '=':
        return Blob(out, RespValue::Type::kBulk, false, /*verbatim=*/true);
      case '*':
        return Aggregate(out, RespValue::Aggregate::kArray, /*pairs=*/false, true, depth);
      case '~':
        return Aggregate(out, RespValue::Aggregate::kSet, false, false, depth);
      case '>':
        return Aggregate(out, RespValue::Aggregate::kPush, false, false, depth);
      case '%':
        return Aggregate(out, RespValue::Aggregate::kNone, /*pairs=*/true, false, depth);
      case '|': {
        // Attributes precede the value they describe: parse and drop them.
        RespValue attrs;
        if (!Aggregate(&attrs, RespValue::Aggregate::kNone, true, false, depth)) return false;
        return Value(out, depth);
      }
      default:
        return false;
    }
  }

  size_t pos() const { return pos_; }

 private:
  // A line ends at the first CRLF; a bare CR or LF inside it is a protocol error for the
  // line-typed replies we accept here.
  bool Line(std::string_view* line) {
    const size_t cr = in_.find('\r', pos_);
    if (cr == std::string_view::npos || cr + 1 >= in_.size() || in_[cr + 1] != '\n') {
      return false;
    }
    *line = in_.substr(pos_, cr - pos_);
    if (line->find('\n') != std::string_view::npos) return false;
    pos_ = cr + 2;
    return true;
  }

  static bool ParseInt(std::string_view s, int64_t* v) {
    if (s.empty()) return false;
    const char* first = s.data();
    const char* last = s.data() + s.size();
    if (*first == '+') return false;  // from_chars rejects it too; be explicit
    auto [p, ec] = std::from_chars(first, last, *v);
    return ec == std::errc() && p == last;
  }

  static bool ParseDouble(std::string_view s, double* v) {
    if (s == "inf" || s == "+inf") {
      *v = std::numeric_limits<double>::infinity();
      return true;
    }
    if (s == "-inf") {
      *v = -std::numeric_limits<double>::infinity();
      return true;
    }
    if (s == "nan" || s == "-nan") {
      *v = std::numeric_limits<double>::quiet_NaN();
      return true;
    }
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
    return ec == std::errc() && p == s.data() + s.size();
  }

  static bool ValidBigNumber(std::string_view s) {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  }

  // Reads a length header: digits (or -1 where a null is allowed). Streamed `?` is rejected.
  bool Length(int64_t* n, bool allow_null) {
    std::string_view line;
    if (!Line(&line) || !ParseInt(line, n)) return false;
    if (*n == -1) return allow_null;
    return *n >= 0;
  }

  bool Blob(RespValue* out, RespValue::Type type, bool allow_null, bool verbatim) {
    int64_t n = 0;
    if (!Length(&n, allow_null)) return false;
    if (n == -1) {
      out->type = RespValue::Type::kNull;
      return true;
    }
    const size_t len = static_cast<size_t>(n);
    if (in_.size() - pos_ < len || in_.size() - pos_ - len < 2) return false;
    if (in_[pos_ + len] != '\r' || in_[pos_ + len + 1] != '\n') return false;
    std::string_view payload = in_.substr(pos_, len);
    pos_ += len + 2;
    if (verbatim) {
      // "txt:" / "mkd:": a three-byte format and a colon.
      if (payload.size() < 4 || payload[3] != ':') return false;
      payload.remove_prefix(4);
    }
    out->type = type;
    out->str = payload;
    return true;
  }

  bool Aggregate(RespValue* out, RespValue::Aggregate kind, bool pairs, bool allow_null,
                 size_t depth) {
    int64_t n = 0;
    if (!Length(&n, allow_null)) return false;
    if (n == -1) {
      out->type = RespValue::Type::kNull;
      return true;
    }
    uint64_t values = static_cast<uint64_t>(n);
    if (pairs) {
      if (values > std::numeric_limits<uint64_t>::max() / 2) return false;
      values *= 2;
    }
    // Every value takes at least 3 bytes ("_\r\n"): a larger count is a lie.
    if (values > (in_.size() - pos_) / 3) return false;
    out->type = pairs ? RespValue::Type::kMap : RespValue::Type::kArray;
    out->aggregate = kind;
    out->items.clear();
    out->items.reserve(std::min<uint64_t>(values, kReserveCap));
    for (uint64_t k = 0; k < values; ++k) {
      out->items.emplace_back();
      if (!Value(&out->items.back(), depth + 1)) return false;
    }
    return true;
  }

  std::string_view in_;
  const RespLimits& limits_;
  size_t pos_ = 0;
  size_t values_ = 0;
};

}  // namespace

std::optional<RespValue> ParseRespPrefix(std::string_view in, size_t* consumed,
                                         const RespLimits& limits) {
  Parser p(in, limits);
  RespValue v;
  if (!p.Value(&v, 0)) return std::nullopt;
  if (consumed != nullptr) *consumed = p.pos();
  return v;
}

std::optional<RespValue> ParseResp(std::string_view in, const RespLimits& limits) {
  size_t used = 0;
  auto v = ParseRespPrefix(in, &used, limits);
  if (!v || used != in.size()) return std::nullopt;
  return v;
}

}  // namespace respscope::analytics::jobs
