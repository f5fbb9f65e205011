#include "proxy/resp/request_scanner.h"

#include <cstring>

#include "proxy/resp/resp_util.h"

namespace respscope::resp {

namespace {
// After a large command the arena is given back, so an idle connection holds little memory.
constexpr size_t kArenaKeep = 16 * 1024;
}  // namespace

RequestScanner::RequestScanner() { refs_.reserve(8); }

void RequestScanner::Reset() {
  state_ = State::kStart;
  error_.clear();
  line_len_ = 0;
  line_overflow_ = false;
  saw_cr_ = false;
  refs_.clear();
  arena_.clear();
  inline_.clear();
}

ScanStatus RequestScanner::Fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  return ScanStatus::kError;
}

size_t RequestScanner::CaptureLimit() const {
  return arg_index_ == 0 ? RequestLimits::kDefaultCapture : capture_;
}

// Redis reads a header line up to the first '\r' and then skips one more byte, whatever it is
// (processMultibulkBuffer does not check the '\n'). We do the same so that we accept and
// reject exactly what Redis does.
bool RequestScanner::ReadLine(std::string_view* input, std::string_view* line, bool* too_long) {
  *too_long = false;
  while (!input->empty()) {
    if (saw_cr_) {
      input->remove_prefix(1);
      saw_cr_ = false;
      *line = line_overflow_ ? std::string_view() : std::string_view(line_, line_len_);
      if (line_overflow_) *line = std::string_view("x", 1);  // never a valid number
      line_len_ = 0;
      line_overflow_ = false;
      return true;
    }
    const char* cr = static_cast<const char*>(std::memchr(input->data(), '\r', input->size()));
    size_t n = cr ? static_cast<size_t>(cr - input->data()) : input->size();
    // Fast path: the whole line is in this span and nothing is buffered.
    if (cr && line_len_ == 0 && !line_overflow_ && n + 1 < input->size()) {
      *line = input->substr(0, n);
      input->remove_prefix(n + 2);
      return true;
    }
    if (line_len_ + n > sizeof(line_)) {
      line_overflow_ = true;
      if (!cr && line_len_ + n > RequestLimits::kMaxInline) *too_long = true;
      line_len_ = std::min(line_len_ + n, RequestLimits::kMaxInline + 1);
    } else {
      std::memcpy(line_ + line_len_, input->data(), n);
      line_len_ += n;
    }
    input->remove_prefix(n);
    if (cr) {
      input->remove_prefix(1);
      saw_cr_ = true;
    } else if (*too_long) {
      return false;
    }
  }
  return false;
}

// A new command: the previous one's arguments go, and memory a large one took is given back.
void RequestScanner::ClearArgs() {
  if (refs_.capacity() > 256) std::vector<ArgRef>().swap(refs_);
  refs_.clear();
  if (arena_.capacity() > kArenaKeep) std::string().swap(arena_);
  arena_.clear();
}

void RequestScanner::BeginArg(uint64_t len) {
  remaining_ = len;
  in_arena_ = false;
  bool tracked = refs_.size() < RequestLimits::kMaxTrackedArgs;
  capturing_ = tracked && len <= CaptureLimit();
  if (tracked) refs_.push_back(ArgRef{nullptr, 0, len, 0, false});
}

void RequestScanner::MoveArgsToArena() {
  for (ArgRef& ref : refs_) {
    if (ref.arena || ref.size == 0) continue;
    ref.arena_off = arena_.size();
    arena_.append(ref.ptr, ref.size);
    ref.arena = true;
  }
}

void RequestScanner::FinishCommand(Request* out) {
  views_.resize(refs_.size());
  lengths_.resize(refs_.size());
  for (size_t i = 0; i < refs_.size(); ++i) {
    const ArgRef& ref = refs_[i];
    const char* p = ref.arena ? arena_.data() + ref.arena_off : ref.ptr;
    views_[i] = ref.size ? std::string_view(p, ref.size) : std::string_view();
    lengths_[i] = ref.len;
  }
  out->args = views_;
  out->lengths = lengths_;
  out->argc = argc_;
  out->wire_bytes = wire_bytes_;
  out->inline_form = false;
  state_ = State::kStart;
}

// Most reads hold whole commands. The result is exactly what the state machine reports for the
// same bytes (unit tests and the fuzzer compare whole inputs with byte-by-byte ones, which
// never come here); anything it would treat specially (an empty or huge command, an error, a
// split) is left to it.
bool RequestScanner::NextWhole(std::string_view* input, Request* out) {
  constexpr size_t kWindow = 24;  // a valid count or length has at most 20 characters
  const std::string_view in = *input;
  std::string_view line;
  size_t pos = 0;
  int64_t argc = 0;
  if (!WholeLine(in, 1, kWindow, &line, &pos) || !ParseInt64(line, &argc) || argc <= 0 ||
      argc > static_cast<int64_t>(RequestLimits::kMaxTrackedArgs)) {
    return false;
  }
  ClearArgs();
  size_t capture = RequestLimits::kDefaultCapture;
  for (int64_t i = 0; i < argc; ++i) {
    int64_t len = 0;
    if (pos >= in.size() || in[pos] != '$' || !WholeLine(in, pos + 1, kWindow, &line, &pos) ||
        !ParseInt64(line, &len) || len < 0 || len > RequestLimits::kMaxBulk ||
        static_cast<uint64_t>(len) + 2 > in.size() - pos) {
      return false;
    }
    const uint64_t n = static_cast<uint64_t>(len);
    const bool captured = n <= (i == 0 ? RequestLimits::kDefaultCapture : capture);
    refs_.push_back(ArgRef{captured ? in.data() + pos : nullptr, 0, n,
                           captured ? static_cast<uint32_t>(n) : 0u, false});
    if (i == 0 && policy_) {
      capture = policy_(policy_ctx_, captured ? in.substr(pos, n) : std::string_view());
    }
    pos += n + 2;
  }
  argc_ = static_cast<uint64_t>(argc);
  wire_bytes_ = pos;
  FinishCommand(out);
  input->remove_prefix(pos);
  return true;
}

ScanStatus RequestScanner::Next(std::string_view* input, Request* out) {
  if (state_ == State::kStart && !input->empty() && (*input)[0] == '*' &&
      NextWhole(input, out)) {
    return ScanStatus::kCommand;
  }
  const char* mark = input->data();
  auto account = [&] {
    wire_bytes_ += static_cast<uint64_t>(input->data() - mark);
    mark = input->data();
  };
  std::string_view line;
  bool too_long = false;
  for (;;) {
    switch (state_) {
      case State::kStart:
        if (input->empty()) return ScanStatus::kNeedMore;
        wire_bytes_ = 0;
        mark = input->data();
        ClearArgs();
        if ((*input)[0] != '*') {
          state_ = State::kInline;
          inline_.clear();
          continue;
        }
        input->remove_prefix(1);
        state_ = State::kCount;
        continue;
      case State::kCount: {
        if (!ReadLine(input, &line, &too_long)) {
          account();
          if (too_long) return Fail("Protocol error: too big mbulk count string");
          return ScanStatus::kNeedMore;
        }
        int64_t n = 0;
        if (!ParseInt64(line, &n) || n > RequestLimits::kMaxMultibulk) {
          return Fail("Protocol error: invalid multibulk length");
        }
        if (n <= 0) {  // Redis consumes `*0` and `*-1` and runs nothing.
          state_ = State::kStart;
          continue;
        }
        argc_ = static_cast<uint64_t>(n);
        arg_index_ = 0;
        capture_ = RequestLimits::kDefaultCapture;
        state_ = State::kBulkHeader;
        continue;
      }
      case State::kBulkHeader:
        if (input->empty()) {
          account();
          MoveArgsToArena();
          return ScanStatus::kNeedMore;
        }
        if ((*input)[0] != '$') {
          return Fail(std::string("Protocol error: expected '$', got '") + (*input)[0] + "'");
        }
        input->remove_prefix(1);
        state_ = State::kBulkLen;
        continue;
      case State::kBulkLen: {
        if (!ReadLine(input, &line, &too_long)) {
          account();
          if (too_long) return Fail("Protocol error: too big bulk count string");
          MoveArgsToArena();
          return ScanStatus::kNeedMore;
        }
        int64_t n = 0;
        if (!ParseInt64(line, &n) || n < 0 || n > RequestLimits::kMaxBulk) {
          return Fail("Protocol error: invalid bulk length");
        }
        BeginArg(static_cast<uint64_t>(n));
        state_ = State::kBody;
        continue;
      }
      case State::kBody: {
        bool tracked = arg_index_ < RequestLimits::kMaxTrackedArgs;
        if (!in_arena_ && input->size() >= remaining_) {
          if (capturing_ && remaining_ == refs_.back().len) {
            refs_.back().ptr = input->data();
            refs_.back().size = static_cast<uint32_t>(remaining_);
          }
          input->remove_prefix(remaining_);
          remaining_ = 0;
        } else {
          size_t take = std::min<uint64_t>(input->size(), remaining_);
          if (capturing_ && tracked) {
            if (!in_arena_) MoveArgsToArena();  // earlier args first: keep this one contiguous
            ArgRef& ref = refs_.back();
            if (!in_arena_) {
              in_arena_ = true;
              ref.arena = true;
              ref.arena_off = arena_.size();
            }
            arena_.append(input->data(), take);
            ref.size += static_cast<uint32_t>(take);
          }
          input->remove_prefix(take);
          remaining_ -= take;
        }
        if (remaining_ > 0) {
          account();
          MoveArgsToArena();
          return ScanStatus::kNeedMore;
        }
        state_ = State::kBodyCrlf;
        remaining_ = 2;
        continue;
      }
      case State::kBodyCrlf: {
        // Redis skips the two bytes after a bulk body without looking at them.
        size_t take = std::min<uint64_t>(input->size(), remaining_);
        input->remove_prefix(take);
        remaining_ -= take;
        if (remaining_ > 0) {
          account();
          MoveArgsToArena();
          return ScanStatus::kNeedMore;
        }
        if (arg_index_ == 0 && policy_ && !refs_.empty()) {
          const ArgRef& name = refs_[0];
          std::string_view v(name.arena ? arena_.data() + name.arena_off : name.ptr, name.size);
          capture_ = policy_(policy_ctx_, v);
        }
        ++arg_index_;
        if (arg_index_ == argc_) {
          account();
          FinishCommand(out);
          return ScanStatus::kCommand;
        }
        state_ = State::kBulkHeader;
        continue;
      }
      case State::kInline: {
        ScanStatus status = ScanInline(input, out);
        if (status == ScanStatus::kNeedMore && state_ == State::kStart) continue;  // blank line
        return status;
      }
      case State::kError:
        return ScanStatus::kError;
    }
  }
}

ScanStatus RequestScanner::ScanInline(std::string_view* input, Request* out) {
  {
    const char* nl = static_cast<const char*>(std::memchr(input->data(), '\n', input->size()));
    if (!nl) {
      if (inline_.size() + input->size() > RequestLimits::kMaxInline) {
        return Fail("Protocol error: too big inline request");
      }
      inline_.append(input->data(), input->size());
      wire_bytes_ += input->size();
      input->remove_prefix(input->size());
      return ScanStatus::kNeedMore;
    }
    size_t n = static_cast<size_t>(nl - input->data());
    std::string_view line;
    if (inline_.empty()) {
      line = input->substr(0, n);
    } else {
      inline_.append(input->data(), n);
      line = inline_;
    }
    input->remove_prefix(n + 1);
    wire_bytes_ += n + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    std::vector<std::pair<size_t, size_t>> spans;  // inline commands are rare: plain vectors
    if (!SplitInlineArgs(line, &arena_, &spans)) {
      return Fail("Protocol error: unbalanced quotes in request");
    }
    if (spans.empty()) {  // blank line: Redis runs nothing; Next() goes on with the rest
      state_ = State::kStart;
      inline_.clear();
      return ScanStatus::kNeedMore;
    }
    size_t limit = policy_ ? policy_(policy_ctx_, std::string_view(arena_).substr(
                                                      spans[0].first, spans[0].second))
                           : RequestLimits::kDefaultCapture;
    size_t tracked = std::min(spans.size(), RequestLimits::kMaxTrackedArgs);
    views_.resize(tracked);
    lengths_.resize(tracked);
    for (size_t i = 0; i < tracked; ++i) {
      size_t cap = i == 0 ? RequestLimits::kDefaultCapture : limit;
      lengths_[i] = spans[i].second;
      views_[i] = spans[i].second <= cap
                      ? std::string_view(arena_).substr(spans[i].first, spans[i].second)
                      : std::string_view();
    }
    out->args = views_;
    out->lengths = lengths_;
    out->argc = spans.size();
    out->wire_bytes = wire_bytes_;
    out->inline_form = true;
    state_ = State::kStart;
    return ScanStatus::kCommand;
  }
}

}  // namespace respscope::resp
