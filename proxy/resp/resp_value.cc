#include "proxy/resp/resp_value.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "proxy/resp/resp_util.h"

namespace respscope::resp {
namespace {

// Elements reserved up front whatever an aggregate declares; more grow as they are read.
constexpr size_t kReserveCap = 16;

class Parser {
 public:
  Parser(std::string_view in, const RespLimits& limits) : in_(in), limits_(limits) {}

  // depth: aggregates enclosing this value.
  bool Value(RespValue* out, size_t depth) {
    for (;;) {
      if (++values_ > limits_.max_values) return Fail("too many values");
      if (pos_ >= in_.size()) return Fail("truncated");
      const char tag = in_[pos_++];
      if (tag != '|') return Typed(out, tag, depth);
      // An attribute annotates the value that follows: read it, drop it, read on. A loop, not
      // recursion, so that a run of attributes cannot deepen the stack.
      RespValue attrs;
      if (!Aggregate(&attrs, RespValue::Aggregate::kNone, /*pairs=*/true, false, depth)) {
        return false;
      }
    }
  }

  size_t pos() const { return pos_; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(const char* what) {
    if (error_.empty()) error_ = std::string(what) + " at byte " + std::to_string(pos_);
    return false;
  }

  bool Typed(RespValue* out, char tag, size_t depth) {
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
        return Line(&line) && (ParseInt64(line, &out->integer) || Fail("bad integer"));
      case '_':
        out->type = RespValue::Type::kNull;
        return Line(&line) && (line.empty() || Fail("bad null"));
      case '#':
        if (!Line(&line)) return false;
        if (line != "t" && line != "f") return Fail("bad boolean");
        out->type = RespValue::Type::kBoolean;
        out->boolean = line[0] == 't';
        return true;
      case ',':
        if (!Line(&line)) return false;
        out->type = RespValue::Type::kDouble;
        out->str = line;
        return ParseDouble(line, &out->dbl) || Fail("bad double");
      case '(':
        if (!Line(&line)) return false;
        if (!ValidBigNumber(line)) return Fail("bad big number");
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
      default:
        --pos_;
        return Fail("unknown RESP type");
    }
  }

  // A line ends at the first CRLF; a bare CR or LF inside it is a protocol error for the
  // line-typed replies accepted here.
  bool Line(std::string_view* line) {
    const size_t cr = in_.find('\r', pos_);
    if (cr == std::string_view::npos || cr + 1 >= in_.size()) return Fail("truncated line");
    if (in_[cr + 1] != '\n') return Fail("CR without LF");
    *line = in_.substr(pos_, cr - pos_);
    if (line->find('\n') != std::string_view::npos) return Fail("LF inside a line");
    pos_ = cr + 2;
    return true;
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
    if (!Line(&line)) return false;
    if (!ParseInt64(line, n)) return Fail("bad length");
    if (*n < -1 || (*n == -1 && !allow_null)) return Fail("negative length");
    return true;
  }

  bool Blob(RespValue* out, RespValue::Type type, bool allow_null, bool verbatim) {
    int64_t n = 0;
    if (!Length(&n, allow_null)) return false;
    if (n == -1) {
      out->type = RespValue::Type::kNull;
      return true;
    }
    const size_t len = static_cast<size_t>(n);
    if (in_.size() - pos_ < len || in_.size() - pos_ - len < 2) return Fail("truncated bulk");
    if (in_[pos_ + len] != '\r' || in_[pos_ + len + 1] != '\n') return Fail("bulk without CRLF");
    std::string_view payload = in_.substr(pos_, len);
    pos_ += len + 2;
    if (verbatim) {
      // "txt:" / "mkd:": a three-byte format and a colon.
      if (payload.size() < 4 || payload[3] != ':') return Fail("bad verbatim string");
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
    if (depth >= limits_.max_depth) return Fail("nesting too deep");
    uint64_t values = static_cast<uint64_t>(n);
    if (pairs) values *= 2;  // n < 2^63: no overflow
    // Every value takes at least 3 bytes ("_\r\n"): a larger count is a lie.
    if (values > (in_.size() - pos_) / 3) return Fail("bad aggregate length");
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
  std::string error_;
};

}  // namespace

std::optional<RespValue> ParseRespPrefix(std::string_view in, size_t* consumed,
                                         const RespLimits& limits, std::string* error) {
  Parser p(in, limits);
  RespValue v;
  if (!p.Value(&v, 0)) {
    if (error != nullptr) *error = p.error();
    return std::nullopt;
  }
  if (consumed != nullptr) *consumed = p.pos();
  return v;
}

std::optional<RespValue> ParseResp(std::string_view in, const RespLimits& limits,
                                   std::string* error) {
  size_t used = 0;
  auto v = ParseRespPrefix(in, &used, limits, error);
  if (v && used != in.size()) {
    if (error != nullptr) *error = "trailing bytes after the reply at byte " + std::to_string(used);
    return std::nullopt;
  }
  return v;
}

}  // namespace respscope::resp
