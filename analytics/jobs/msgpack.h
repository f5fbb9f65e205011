// A small, self-contained MessagePack decoder for the ARGV values BullMQ packs with msgpackr
// (job opts maps, the add-script argument array, failedReason/stacktrace field lists).
//
// Input is untrusted (it comes from an application's EVALSHA arguments): every length and count
// is checked against the bytes that remain, nesting is bounded, and nothing is allocated from
// a declared count. The decoder never reads past the input and never throws.
//
// Lifetime: string, binary and extension payloads in a decoded MpValue are views into the input
// buffer; the value is valid only while that buffer is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace respscope::analytics::jobs {

struct MpLimits {
  // BullMQ's deepest value is opts -> repeat/backoff/parent -> scalar: depth 3. 32 leaves room
  // for application data without letting a hostile `\x91\x91\x91...` recurse the stack away.
  size_t max_depth = 32;
  // Total values in one document. Every value takes at least one input byte, so this only
  // matters for very large inputs; it bounds the tree's memory.
  size_t max_values = 1u << 20;
};

struct MpValue {
  enum class Type : uint8_t { kNil, kBool, kInt, kUint, kFloat, kStr, kBin, kArray, kMap, kExt };

  Type type = Type::kNil;
  bool boolean = false;
  int64_t i = 0;   // kInt (negative values only; non-negative integers decode as kUint)
  uint64_t u = 0;  // kUint
  double f = 0;    // kFloat (float32 widened)
  int8_t ext_type = 0;
  std::string_view bytes;      // kStr, kBin, kExt payload: a view into the input
  std::vector<MpValue> items;  // kArray: elements; kMap: key0, value0, key1, value1, ...

  bool IsNil() const { return type == Type::kNil; }
  bool IsMap() const { return type == Type::kMap; }
  bool IsArray() const { return type == Type::kArray; }
  size_t MapSize() const { return type == Type::kMap ? items.size() / 2 : 0; }

  // Map lookup by string key; nullptr when not a map or the key is absent.
  const MpValue* Get(std::string_view key) const;
  // Array element; nullptr when not an array or out of range.
  const MpValue* At(size_t index) const;

  // An integral number: kInt, kUint (<= INT64_MAX) or a kFloat with no fraction (msgpackr sends
  // integers above 2^32 as float64, e.g. millisecond timestamps).
  std::optional<int64_t> AsInt() const;
  std::optional<double> AsDouble() const;
  std::optional<std::string_view> AsStr() const;  // kStr only
};

// Decodes exactly one value that spans the whole input. Returns nullopt for malformed,
// truncated or over-limit input, or trailing bytes.
std::optional<MpValue> DecodeMsgpack(std::string_view in, const MpLimits& limits = {});

// Decodes one value from the front of `in`; on success sets *consumed to its size.
std::optional<MpValue> DecodeMsgpackPrefix(std::string_view in, size_t* consumed,
                                           const MpLimits& limits = {});

// For a top-level array or map whose tail is cut or damaged (a stacktrace over a capture limit,
// an edited capture): returns the leading elements that decode (maps: whole pairs only) and sets
// *complete to whether everything decoded. nullopt if the input is not an array / map header.
// BullMQ puts failedReason before the stacktrace, so the reason survives a damaged tail.
std::optional<MpValue> DecodeMsgpackLeading(std::string_view in, bool* complete,
                                            const MpLimits& limits = {});

// BullMQ's rule (bullmq-wire.md section 2): an ARGV value is msgpack only when it starts with a
// non-printable byte (maps 0x80.., arrays 0x90.., str8 0xd9, ...). JSON and plain strings start
// with a printable ASCII byte.
bool LooksLikeMsgpack(std::string_view arg);

}  // namespace respscope::analytics::jobs
