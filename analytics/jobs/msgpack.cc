#include "analytics/jobs/msgpack.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace respscope::analytics::jobs {
namespace {

// Grow aggregates from a small reservation, never from the declared count (STYLE.md: every
// length header is hostile).
constexpr size_t kReserveCap = 16;

class Decoder {
 public:
  Decoder(std::string_view in, const MpLimits& limits, bool leading = false)
      : in_(in), limits_(limits), leading_(leading) {}

  bool Value(MpValue* out, size_t depth) {
    if (depth > limits_.max_depth) return false;
    if (++values_ > limits_.max_values) return false;
    uint8_t tag = 0;
    if (!Byte(&tag)) return false;

    if (tag <= 0x7f) return SetUint(out, tag);
    if (tag >= 0xe0) return SetInt(out, static_cast<int8_t>(tag));
    if ((tag & 0xf0) == 0x80) return Aggregate(out, MpValue::Type::kMap, tag & 0x0f, depth);
    if ((tag & 0xf0) == 0x90) return Aggregate(out, MpValue::Type::kArray, tag & 0x0f, depth);
    if ((tag & 0xe0) == 0xa0) return Bytes(out, MpValue::Type::kStr, tag & 0x1f);

    uint64_t n = 0;
    switch (tag) {
      case 0xc0:
        out->type = MpValue::Type::kNil;
        return true;
      case 0xc2:
        out->type = MpValue::Type::kBool;
        out->boolean = false;
        return true;
      case 0xc3:
        out->type = MpValue::Type::kBool;
        out->boolean = true;
        return true;
      case 0xc4:
        return Be(1, &n) && Bytes(out, MpValue::Type::kBin, n);
      case 0xc5:
        return Be(2, &n) && Bytes(out, MpValue::Type::kBin, n);
      case 0xc6:
        return Be(4, &n) && Bytes(out, MpValue::Type::kBin, n);
      case 0xc7:
        return Be(1, &n) && Ext(out, n);
      case 0xc8:
        return Be(2, &n) && Ext(out, n);
      case 0xc9:
        return Be(4, &n) && Ext(out, n);
      case 0xca: {
        if (!Be(4, &n)) return false;
        out->type = MpValue::Type::kFloat;
        out->f = std::bit_cast<float>(static_cast<uint32_t>(n));
        return true;
      }
      case 0xcb: {
        if (!Be(8, &n)) return false;
        out->type = MpValue::Type::kFloat;
        out->f = std::bit_cast<double>(n);
        return true;
      }
      case 0xcc:
        return Be(1, &n) && SetUint(out, n);
      case 0xcd:
        return Be(2, &n) && SetUint(out, n);
      case 0xce:
        return Be(4, &n) && SetUint(out, n);
      case 0xcf:
        return Be(8, &n) && SetUint(out, n);
      case 0xd0:
        return Be(1, &n) && SetInt(out, static_cast<int8_t>(n));
      case 0xd1:
        return Be(2, &n) && SetInt(out, static_cast<int16_t>(n));
      case 0xd2:
        return Be(4, &n) && SetInt(out, static_cast<int32_t>(n));
      case 0xd3:
        return Be(8, &n) && SetInt(out, static_cast<int64_t>(n));
      case 0xd4:
        return Ext(out, 1);
      case 0xd5:
        return Ext(out, 2);
      case 0xd6:
        return Ext(out, 4);
      case 0xd7:
        return Ext(out, 8);
      case 0xd8:
        return Ext(out, 16);
      case 0xd9:
        return Be(1, &n) && Bytes(out, MpValue::Type::kStr, n);
      case 0xda:
        return Be(2, &n) && Bytes(out, MpValue::Type::kStr, n);
      case 0xdb:
        return Be(4, &n) && Bytes(out, MpValue::Type::kStr, n);
      case 0xdc:
        return Be(2, &n) && Aggregate(out, MpValue::Type::kArray, n, depth);
      case 0xdd:
        return Be(4, &n) && Aggregate(out, MpValue::Type::kArray, n, depth);
      case 0xde:
        return Be(2, &n) && Aggregate(out, MpValue::Type::kMap, n, depth);
      case 0xdf:
        return Be(4, &n) && Aggregate(out, MpValue::Type::kMap, n, depth);
      default:
        return false;  // 0xc1 is never used
    }
  }

  size_t pos() const { return pos_; }
  bool truncated() const { return truncated_; }

 private:
  bool Byte(uint8_t* b) {
    if (pos_ >= in_.size()) return false;
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool Be(size_t width, uint64_t* n) {
    if (in_.size() - pos_ < width) return false;
    uint64_t v = 0;
    for (size_t k = 0; k < width; ++k) v = (v << 8) | static_cast<uint8_t>(in_[pos_ + k]);
    pos_ += width;
    *n = v;
    return true;
  }
  static bool SetUint(MpValue* out, uint64_t v) {
    out->type = MpValue::Type::kUint;
    out->u = v;
    return true;
  }
  static bool SetInt(MpValue* out, int64_t v) {
    if (v >= 0) return SetUint(out, static_cast<uint64_t>(v));
    out->type = MpValue::Type::kInt;
    out->i = v;
    return true;
  }
  bool Bytes(MpValue* out, MpValue::Type type, uint64_t n) {
    if (n > in_.size() - pos_) return false;
    out->type = type;
    out->bytes = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Ext(MpValue* out, uint64_t n) {
    uint8_t t = 0;
    if (!Byte(&t)) return false;
    out->ext_type = static_cast<int8_t>(t);
    return Bytes(out, MpValue::Type::kExt, n);
  }
  bool Aggregate(MpValue* out, MpValue::Type type, uint64_t count, size_t depth) {
    const uint64_t values = type == MpValue::Type::kMap ? count * 2 : count;
    // Each value needs at least one byte: a count beyond the remaining input is a lie.
    if (values > in_.size() - pos_ && !(leading_ && depth == 0)) return false;
    out->type = type;
    out->items.clear();
    out->items.reserve(std::min<uint64_t>(values, kReserveCap));
    for (uint64_t k = 0; k < values; ++k) {
      out->items.emplace_back();
      if (!Value(&out->items.back(), depth + 1)) {
        if (!leading_ || depth != 0) return false;
        // Keep what decoded: drop the failed element (and a dangling map key).
        out->items.pop_back();
        if (type == MpValue::Type::kMap && out->items.size() % 2 != 0) out->items.pop_back();
        truncated_ = true;
        pos_ = in_.size();
        return true;
      }
    }
    return true;
  }

  std::string_view in_;
  const MpLimits& limits_;
  const bool leading_;
  bool truncated_ = false;
  size_t pos_ = 0;
  size_t values_ = 0;
};

}  // namespace

const MpValue* MpValue::Get(std::string_view key) const {
  if (type != Type::kMap) return nullptr;
  for (size_t k = 0; k + 1 < items.size(); k += 2) {
    if (items[k].type == Type::kStr && items[k].bytes == key) return &items[k + 1];
  }
  return nullptr;
}

const MpValue* MpValue::At(size_t index) const {
  if (type != Type::kArray || index >= items.size()) return nullptr;
  return &items[index];
}

std::optional<int64_t> MpValue::AsInt() const {
  switch (type) {
    case Type::kInt:
      return i;
    case Type::kUint:
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
      return static_cast<int64_t>(u);
    case Type::kFloat:
      // 2^63 is exactly representable; anything at or above it does not fit.
      if (!std::isfinite(f) || f != std::trunc(f) || f >= 9223372036854775808.0 ||
          f < -9223372036854775808.0) {
        return std::nullopt;
      }
      return static_cast<int64_t>(f);
    default:
      return std::nullopt;
  }
}

std::optional<double> MpValue::AsDouble() const {
  switch (type) {
    case Type::kInt:
      return static_cast<double>(i);
    case Type::kUint:
      return static_cast<double>(u);
    case Type::kFloat:
      return f;
    default:
      return std::nullopt;
  }
}

std::optional<std::string_view> MpValue::AsStr() const {
  if (type != Type::kStr) return std::nullopt;
  return bytes;
}

std::optional<MpValue> DecodeMsgpackPrefix(std::string_view in, size_t* consumed,
                                           const MpLimits& limits) {
  Decoder d(in, limits);
  MpValue v;
  if (!d.Value(&v, 0)) return std::nullopt;
  if (consumed != nullptr) *consumed = d.pos();
  return v;
}

std::optional<MpValue> DecodeMsgpack(std::string_view in, const MpLimits& limits) {
  size_t used = 0;
  auto v = DecodeMsgpackPrefix(in, &used, limits);
  if (!v || used != in.size()) return std::nullopt;
  return v;
}

std::optional<MpValue> DecodeMsgpackLeading(std::string_view in, bool* complete,
                                            const MpLimits& limits) {
  if (in.empty()) return std::nullopt;
  const auto tag = static_cast<uint8_t>(in.front());
  const bool aggregate = (tag & 0xe0) == 0x80 || tag == 0xdc || tag == 0xdd || tag == 0xde ||
                         tag == 0xdf;  // fixmap, fixarray, array16/32, map16/32
  if (!aggregate) return std::nullopt;
  Decoder d(in, limits, /*leading=*/true);
  MpValue v;
  if (!d.Value(&v, 0)) return std::nullopt;
  const bool whole = !d.truncated() && d.pos() == in.size();
  if (complete != nullptr) *complete = whole;
  return v;
}

bool LooksLikeMsgpack(std::string_view arg) {
  if (arg.empty()) return false;
  const auto b = static_cast<uint8_t>(arg.front());
  return b < 0x20 || b >= 0x7f;
}

}  // namespace respscope::analytics::jobs
