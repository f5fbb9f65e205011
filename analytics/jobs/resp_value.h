// A small RESP2 + RESP3 value parser for the complete raw reply bytes the data plane hands over
// for script commands (Observation::reply_raw). It builds a tree so the job tracker can read Lua
// replies such as `[flatJobHash, jobId, 0, 0]`.
//
// This is not the data plane's streaming reply scanner (proxy/resp/): it is fed one complete
// reply at a time. The input still comes from the network, so it is treated as hostile: bounded
// nesting, lengths checked against the remaining bytes, no allocation from a declared count,
// never throws, never reads out of bounds.
//
// Supported: + - : $ * (RESP2, with $-1 / *-1 nulls) and _ , # ( = % ~ > ! | (RESP3).
// Attributes (|) are parsed and dropped; the value after them is returned. Streamed strings and
// aggregates ($? *? ...) are rejected: Redis never sends them.
//
// Lifetime: string payloads are views into the input; the value lives as long as the input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace respscope::analytics::jobs {

struct RespLimits {
  // Lua replies of BullMQ/Bull nest at most 3 deep ([[hash...], id] inside an EXEC array).
  // 32 leaves room for anything Redis produces without letting `*1\r\n*1\r\n...` recurse away.
  size_t max_depth = 32;
  // Total values in one reply; each value takes at least 3 bytes on the wire, so the capture
  // limit bounds this anyway. Kept as a separate cap on tree memory.
  size_t max_values = 1u << 20;
};

struct RespValue {
  enum class Type : uint8_t {
    kSimple,     // +
    kError,      // - (and RESP3 ! blob errors)
    kInteger,    // :
    kBulk,       // $ (and RESP3 = verbatim: `str` excludes the "txt:" format prefix)
    kNull,       // _ , $-1, *-1
    kArray,      // * (and RESP3 ~ set, > push; see `aggregate`)
    kMap,        // % (items: key0, value0, key1, value1, ...)
    kDouble,     // ,
    kBoolean,    // #
    kBigNumber,  // ( (digits kept in `str`)
  };
  enum class Aggregate : uint8_t { kNone, kArray, kSet, kPush };

  Type type = Type::kNull;
  Aggregate aggregate = Aggregate::kNone;
  std::string_view str;  // simple, error, bulk, verbatim payload, big number, double text
  int64_t integer = 0;
  double dbl = 0;
  bool boolean = false;
  std::vector<RespValue> items;

  bool IsNull() const { return type == Type::kNull; }
  bool IsError() const { return type == Type::kError; }
  bool IsArray() const { return type == Type::kArray; }
  bool IsMap() const { return type == Type::kMap; }
  bool IsInteger() const { return type == Type::kInteger; }
  // A string-ish scalar (bulk, simple, verbatim); integers are not converted.
  bool IsString() const { return type == Type::kBulk || type == Type::kSimple; }
};

// Parses exactly one reply spanning the whole input; nullopt if malformed, truncated,
// over limits, or followed by trailing bytes.
std::optional<RespValue> ParseResp(std::string_view in, const RespLimits& limits = {});

// Parses one reply from the front of `in`; on success sets *consumed.
std::optional<RespValue> ParseRespPrefix(std::string_view in, size_t* consumed,
                                         const RespLimits& limits = {});

}  // namespace respscope::analytics::jobs
