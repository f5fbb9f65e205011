// ReplyScanner: the incremental scanner for what Redis sends to clients, RESP2 and RESP3.
//
// Grammar: simple string `+`, error `-`, integer `:`, bulk `$` (and null `$-1`), array `*`
// (and null `*-1`), map `%`, set `~`, attribute `|`, push `>`, double `,`, boolean `#`,
// big number `(`, verbatim `=`, null `_`, blob error `!`. Streamed strings and aggregates
// (`$?`, `*?`) are not sent by Redis; they are reported as an error (the session then stops
// observing and keeps forwarding), never a crash.
//
// It reports one ReplyInfo per top-level frame (an attribute is folded into the frame it
// precedes). Bulk bodies are counted down, never buffered: a 512 MiB value costs no memory.
// Only small things are kept: the error prefix and first bytes of an error text, a top-level
// integer, the first element of an aggregate when it is a short string (pub/sub and push
// kinds), the null-ness of each top-level element (MGET hit/miss) and, on request, the raw
// bytes of the whole frame up to a limit (for script replies).
//
// Lifetime: views in ReplyInfo stay valid until the next call to Next().
// Thread: none; one scanner per upstream connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/resp/request_scanner.h"

namespace respscope::resp {

struct ReplyLimits {
  // Nesting depth of aggregates. Redis's own replies nest a few levels (XREAD, COMMAND INFO
  // key specs ~ 6); Lua can build deeper tables but Redis caps script reply depth too.
  static constexpr size_t kMaxDepth = 64;
  static constexpr int64_t kMaxBulk = 512LL * 1024 * 1024 * 8;  // generous: Redis can be configured above 512 MiB
  static constexpr int64_t kMaxAggregate = 1LL << 32;
  // Top-level elements whose null-ness is reported (MGET of more keys: the rest are unknown).
  static constexpr size_t kMaxTrackedElements = 4096;
  static constexpr size_t kErrorTextCapture = 256;
  static constexpr size_t kShortString = 64;
  static constexpr size_t kMaxLine = 64 * 1024 * 1024;  // simple string / error line
};

// Kind of each top-level element of an aggregate reply: MGET hit/miss, EXEC per-command
// outcome.
enum ElementKind : uint8_t {
  kElemValue = 0,
  kElemNull = 1,
  kElemError = 2,
  kElemEmpty = 3,   // empty aggregate
  kElemZero = 4,    // integer 0
};

// An error element of a top-level aggregate (EXEC replies): its index and first bytes.
struct ElementError {
  uint32_t index = 0;
  std::string text;  // up to ReplyLimits::kErrorTextCapture bytes
};

struct ReplyInfo {
  char type = 0;            // the frame's type byte (after any attribute)
  bool is_null = false;     // `_`, `$-1`, `*-1`
  bool is_error = false;    // `-` or `!`
  bool is_push = false;     // `>`
  uint64_t elements = 0;    // aggregate: number of elements (map: pairs x 2)
  bool has_integer = false;
  int64_t integer = 0;      // `:` value of a top-level integer reply
  bool has_last_integer = false;
  int64_t last_integer = 0; // last integer element of a top-level aggregate (subscribe counts)
  std::string_view error_prefix;   // "ERR", "WRONGTYPE", "NOSCRIPT", ... (first word)
  std::string_view error_text;     // up to kErrorTextCapture bytes of the error
  std::string_view short_string;   // `+` text or bulk/verbatim body when <= kShortString
  std::string_view first_element;  // aggregate: element 0 when a short string (any case)
  std::span<const uint8_t> element_kind;  // aggregate: ElementKind of top-level element i
  std::span<const ElementError> element_errors;  // aggregate: its error elements, in order
  std::string_view raw;     // the whole frame when capture was requested and it fit
  // With raw: [begin, end) offsets into raw of each top-level element (EXEC elements).
  std::span<const std::pair<uint32_t, uint32_t>> element_raw;
  bool raw_truncated = false;
  uint64_t wire_bytes = 0;
};

class ReplyScanner {
 public:
  // max_depth: aggregates nested deeper are an error. Past ReplyLimits::kMaxDepth the levels
  // live on the heap (a router that must frame whatever Redis sends allows more).
  explicit ReplyScanner(size_t max_depth = ReplyLimits::kMaxDepth);

  // Requests the raw bytes of the NEXT top-level frame (up to max_bytes). Call before the
  // frame starts (i.e. when frame_in_progress() is false). Capture stops after that frame;
  // 0 withdraws a request not yet taken.
  void CaptureNextRaw(size_t max_bytes) { capture_limit_ = max_bytes; }

  // Same contract as RequestScanner::Next: consumes from *input.
  ScanStatus Next(std::string_view* input, ReplyInfo* out);

  bool frame_in_progress() const { return depth_ > 0 || state_ != State::kType || in_attribute_; }
  const std::string& error() const { return error_; }
  void Reset();
  size_t held_bytes() const { return raw_.capacity() + text_.capacity(); }

 private:
  enum class State : uint8_t { kType, kLine, kBody, kBodyCrlf, kError };

  ScanStatus Fail(std::string message);
  // Handles a complete header/simple line of the current type; may complete a value.
  bool OnLine(std::string_view line);
  // Called when a value (scalar or aggregate) completes at the current depth.
  void ValueDone(ElementKind kind);
  void OnBodyDone();
  bool AtFirstElement() const { return depth_ == 1 && !attr_[0] && top_index_ == 0; }
  bool AtTopElement() const { return depth_ == 1 && !attr_[0]; }
  void StartFrame();
  void FinishFrame(ReplyInfo* out);
  // A whole scalar frame (+, -, :, $) at the front of *input, reported without the state
  // machine; false (nothing consumed) for anything else or anything not whole.
  bool NextWhole(std::string_view* input, ReplyInfo* out);
  // The same for an array of whole bulk strings, integers and simple strings.
  bool NextWholeArray(std::string_view* input, ReplyInfo* out);

  State state_ = State::kType;
  std::string error_;
  char cur_type_ = 0;       // type byte of the value being read
  // Line assembly across reads; only the first bytes are kept (errors, short strings,
  // numbers); the rest is counted.
  std::string text_;
  size_t line_len_ = 0;
  bool saw_cr_ = false;
  uint64_t remaining_ = 0;  // bulk body bytes left
  bool body_keep_ = false;  // keep the body (short string at depth 0/element 0)

  // Aggregate stack: elements left per level.
  uint64_t stack_[ReplyLimits::kMaxDepth];
  uint64_t& Count(size_t level) {
    return level < ReplyLimits::kMaxDepth ? stack_[level]
                                          : deep_stack_[level - ReplyLimits::kMaxDepth];
  }
  size_t max_depth_;
  std::vector<uint64_t> deep_stack_;  // levels from kMaxDepth on
  std::vector<bool> deep_attr_;
  size_t depth_ = 0;
  bool in_attribute_ = false;  // reading an attribute that precedes the real frame

  // What is reported for the current frame.
  ReplyInfo info_;
  std::string short_;      // storage for short_string / first_element
  std::string err_;        // storage for error_text
  std::vector<uint8_t> element_kind_;
  std::vector<ElementError> element_errors_;
  std::vector<std::pair<uint32_t, uint32_t>> element_raw_;
  bool attr_[ReplyLimits::kMaxDepth];  // level i is an attribute (not a value of its parent)
  uint64_t top_index_ = 0;  // index of the current top-level element
  bool frame_started_ = false;

  size_t capture_limit_ = 0;   // requested raw capture for the next frame
  size_t capturing_ = 0;       // active raw capture limit for this frame (0 = none)
  std::string raw_;
  bool raw_overflow_ = false;
  uint64_t frame_bytes_ = 0;
  uint64_t element_start_ = 0;  // frame offset where the current top-level element began
  bool frame_done_ = false;
};

}  // namespace respscope::resp
