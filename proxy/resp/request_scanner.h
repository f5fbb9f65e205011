// RequestScanner: the strict, incremental scanner for what clients send to Redis.
//
// Accepts exactly what Redis's processMultibulkBuffer / processInlineBuffer accept:
// multibulk `*N\r\n` followed by N `$len\r\n<len bytes>\r\n`, and inline commands (a line split
// on blanks with Redis's quoting rules). It never forwards or changes bytes: the caller forwards
// the same span it scans. It only tells the caller where each command ends and what its
// arguments are.
//
// Buffer mechanics (caller-owned input):
//
//   input span (one read)     |*2\r\n$3\r\nGET\r\n$1\r\nk\r\n|*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva|
//                              <---------- command 1 -------->< command 2 (incomplete) ------->
//   Next() -> kCommand: args are views INTO the input span (no copy).
//   Next() -> kNeedMore: the input is fully consumed; captured arguments of the incomplete
//             command are copied into the scanner's small arena; the body of an argument over
//             the capture limit is only counted down, never stored.
//   next read:  |lu\r\n|  Next() -> kCommand: args are views into the arena (and the new span).
//
// Lifetime: the views in a Request stay valid until the next call to Next() or until the input
// buffer passed to the call that returned it is reused, whichever comes first.
// Memory: bounded by (capture limit x tracked args) for the arena, whatever the value sizes.
// Thread: none; one scanner per client connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace respscope::resp {

// Limits, each matching Redis 7's own so that respscope rejects exactly what Redis rejects.
struct RequestLimits {
  // Redis: "invalid multibulk length" above INT_MAX.
  static constexpr int64_t kMaxMultibulk = 2147483647;
  // Redis proto-max-bulk-len default: 512 MiB. A Redis configured higher still works through
  // respscope: the scanner reports an error, the session stops observing, bytes keep flowing.
  static constexpr int64_t kMaxBulk = 512LL * 1024 * 1024;
  // Redis PROTO_INLINE_MAX_SIZE: an inline line (or a `*`/`$` header line) longer than this is
  // "too big inline request" / "too big mbulk count string".
  static constexpr size_t kMaxInline = 64 * 1024;
  // Arguments whose views are kept per command; beyond, only argc grows (huge MSET/DEL).
  static constexpr size_t kMaxTrackedArgs = 4096;
  // Default per-argument capture limit: keys and small arguments. Longer arguments (values)
  // are reported by length only.
  static constexpr size_t kDefaultCapture = 1024;
};

enum class ScanStatus : uint8_t { kCommand, kNeedMore, kError };

struct Request {
  // args[i] is the i-th argument if it was captured (length <= capture limit), else an empty
  // view; lengths[i] is its real length. Both hold min(argc, kMaxTrackedArgs) entries.
  std::span<const std::string_view> args;
  std::span<const uint64_t> lengths;
  uint64_t argc = 0;
  uint64_t wire_bytes = 0;  // bytes of this command on the wire, header to last CRLF
  bool inline_form = false;
};

// Decides how many bytes of each argument after the command name are captured, given the
// command name (as sent, any case). Returning 0 captures nothing but the name.
using CapturePolicy = size_t (*)(void* ctx, std::string_view name);

class RequestScanner {
 public:
  RequestScanner();

  void SetCapturePolicy(CapturePolicy policy, void* ctx) {
    policy_ = policy;
    policy_ctx_ = ctx;
  }

  // Scans from *input, advancing it past what was consumed.
  //  kCommand:  *out describes one complete command; *input starts after it.
  //  kNeedMore: all of *input was consumed; call again with the next bytes.
  //  kError:    the bytes are not valid Redis protocol; error() is the error Redis replies
  //             with. The scanner stays in the error state (Reset() to reuse it).
  // Empty commands (`*0`, `*-1`, blank inline lines) are consumed silently, as Redis does.
  ScanStatus Next(std::string_view* input, Request* out);

  const std::string& error() const { return error_; }
  bool mid_command() const { return state_ != State::kStart; }
  // Mid-command: the declared argument count (0 until its header is read), and body bytes of
  // the current argument still to come.
  uint64_t declared_args() const {
    return state_ == State::kStart || state_ == State::kCount || state_ == State::kInline ? 0
                                                                                         : argc_;
  }
  uint64_t body_remaining() const { return state_ == State::kBody ? remaining_ : 0; }
  void Reset();

  // Bytes currently held for an incomplete command (arena + line buffer): for memory tests.
  size_t held_bytes() const { return arena_.capacity() + inline_.capacity(); }

 private:
  enum class State : uint8_t { kStart, kCount, kBulkHeader, kBulkLen, kBody, kBodyCrlf, kInline, kError };

  ScanStatus Fail(std::string message);
  // Reads a header line's digits after the type byte; returns false while incomplete.
  bool ReadLine(std::string_view* input, std::string_view* line, bool* too_long);
  void ClearArgs();
  void BeginArg(uint64_t len);
  void FinishCommand(Request* out);
  // A whole multibulk command at the front of *input, scanned without the state machine;
  // false (nothing consumed) for anything else or anything not whole.
  bool NextWhole(std::string_view* input, Request* out);
  void MoveArgsToArena();
  ScanStatus ScanInline(std::string_view* input, Request* out);
  size_t CaptureLimit() const;

  State state_ = State::kStart;
  std::string error_;

  // Header line assembly across reads: a valid length fits in 20 digits + sign.
  char line_[32];
  size_t line_len_ = 0;
  bool line_overflow_ = false;
  bool saw_cr_ = false;

  uint64_t argc_ = 0;        // declared argument count
  uint64_t arg_index_ = 0;   // argument being read
  uint64_t remaining_ = 0;   // body bytes left for the current argument
  uint64_t wire_bytes_ = 0;
  size_t capture_ = RequestLimits::kDefaultCapture;
  bool capturing_ = false;   // current argument is captured
  bool in_arena_ = false;    // current argument's bytes so far live in the arena

  // Per tracked argument: either a pointer into the current input span or an arena offset.
  struct ArgRef {
    const char* ptr;   // valid while the current input span is
    uint64_t arena_off;
    uint64_t len;      // real length
    uint32_t size;     // captured bytes
    bool arena;
  };
  std::vector<ArgRef> refs_;
  std::vector<std::string_view> views_;
  std::vector<uint64_t> lengths_;
  std::string arena_;
  std::string inline_;  // inline command line assembled across reads

  CapturePolicy policy_ = nullptr;
  void* policy_ctx_ = nullptr;
};

}  // namespace respscope::resp
