// One materialising RESP2 + RESP3 reader for complete replies: the command table reads the
// upstream's COMMAND reply with it at start-up, the job tracker the raw replies of script
// commands (Observation::reply_raw). It builds a tree of views so that callers can walk a reply
// such as `[flatJobHash, jobId, 0, 0]` or a COMMAND entry.
//
// This is not the data plane's streaming reply scanner (reply_scanner.h), which never builds
// values: it is fed one complete reply at a time, off the forwarding path. The input still
// comes from the network, so it is treated as hostile: nesting and the number of values are
// bounded (RespLimits), every length is checked against the bytes left, nothing is allocated
// from a declared count, integers and lengths are read as Redis's string2ll reads them (no
// '+', no leading zeros), it never throws and never reads out of bounds. No I/O.
//
// Supported: + - : $ * (RESP2, with $-1 / *-1 nulls) and _ , # ( = % ~ > ! | (RESP3).
// Attributes (|) are read and dropped, however many precede a value (a loop: a run of them
// cannot deepen the stack); the value after them is returned. Streamed strings and aggregates
// ($? *? ...) are rejected: Redis never sends them.
//
// Lifetime: string payloads are views into the input; a value is valid as long as the input.
// Thread: no shared state; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace respscope::resp {

struct RespLimits {
  // Aggregates nested one in another (the outermost counts 1; a null aggregate and an
  // attribute's own level do not). The reader recurses once per level, so this bounds its
  // stack. Default: BullMQ/Bull Lua replies nest at most 3 deep (4 inside an EXEC array) and a
  // COMMAND reply 8; 32 leaves room for anything Redis produces without letting
  // `*1\r\n*1\r\n...` run the stack away.
  size_t max_depth = 32;
  // Values in one reply, attributes' included: a cap on the tree's memory. Each value takes at
  // least 3 bytes on the wire, so the input's size bounds this too; the cap is for callers
  // whose input may be large.
  size_t max_values = size_t{1} << 20;
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

// Parses exactly one reply spanning the whole input; nullopt if malformed, truncated, over
// limits, or followed by trailing bytes. On failure, when error is not null, *error says what
// and at which byte (e.g. "bad length at byte 4").
std::optional<RespValue> ParseResp(std::string_view in, const RespLimits& limits = {},
                                   std::string* error = nullptr);

// Parses one reply from the front of `in`; on success sets *consumed (when not null).
std::optional<RespValue> ParseRespPrefix(std::string_view in, size_t* consumed,
                                         const RespLimits& limits = {},
                                         std::string* error = nullptr);

}  // namespace respscope::resp
