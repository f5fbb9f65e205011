#include "proxy/resp/reply_scanner.h"

#include <algorithm>
#include <cstring>

#include "proxy/resp/resp_util.h"

namespace respscope::resp {

namespace {
// Bytes of a line kept for inspection: enough for any number and an error's first words.
constexpr size_t kLineKeep = ReplyLimits::kErrorTextCapture;
constexpr size_t kRawKeep = 64 * 1024;  // raw buffer given back above this after a frame

std::string_view FirstWord(std::string_view s) {
  size_t sp = s.find_first_of(" \r\n");
  return sp == std::string_view::npos ? s : s.substr(0, sp);
}

// For the short paths: the body of a bulk string whose header line (after '$', not "-1") is
// `line` and whose body starts at in[at], when it is whole with the two bytes after it at hand.
// False for a length the state machine refuses and for a body that streams (both its job).
bool WholeBulkBody(std::string_view in, size_t at, std::string_view line,
                   std::string_view* body) {
  int64_t n = 0;
  if (!ParseInt64(line, &n) || n < 0 || n > ReplyLimits::kMaxBulk) return false;
  const uint64_t len = static_cast<uint64_t>(n);
  if (len + 2 > in.size() - at) return false;
  *body = in.substr(at, len);
  return true;
}
}  // namespace

ReplyScanner::ReplyScanner(size_t max_depth) : max_depth_(max_depth) {
  std::fill(std::begin(attr_), std::end(attr_), false);
}

void ReplyScanner::Reset() {
  state_ = State::kType;
  error_.clear();
  text_.clear();
  line_len_ = 0;
  saw_cr_ = false;
  depth_ = 0;
  deep_stack_.clear();
  deep_attr_.clear();
  frame_started_ = false;
  frame_done_ = false;
  capture_limit_ = 0;
  capturing_ = 0;
  raw_.clear();
}

ScanStatus ReplyScanner::Fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  return ScanStatus::kError;
}

void ReplyScanner::StartFrame() {
  frame_started_ = true;
  frame_done_ = false;
  info_ = ReplyInfo{};
  short_.clear();
  err_.clear();
  element_kind_.clear();
  element_errors_.clear();
  element_raw_.clear();
  top_index_ = 0;
  frame_bytes_ = 0;
  raw_overflow_ = false;
  if (raw_.capacity() > kRawKeep) std::string().swap(raw_);
  raw_.clear();
  capturing_ = capture_limit_;
  capture_limit_ = 0;
}

void ReplyScanner::ValueDone(ElementKind kind) {
  for (;;) {
    if (depth_ == 0) {
      if (kind == kElemNull) info_.is_null = true;
      frame_done_ = true;
      return;
    }
    if (AtTopElement()) {
      if (element_kind_.size() < ReplyLimits::kMaxTrackedElements) element_kind_.push_back(kind);
      if (capturing_) {
        uint64_t end = frame_bytes_;  // caller has accounted consumed bytes
        element_raw_.emplace_back(static_cast<uint32_t>(element_start_),
                                  static_cast<uint32_t>(end));
      }
      ++top_index_;
    }
    if (--Count(depth_ - 1) > 0) return;
    --depth_;
    if (depth_ >= ReplyLimits::kMaxDepth) {
      const bool attribute = deep_attr_[depth_ - ReplyLimits::kMaxDepth];
      deep_stack_.pop_back();
      deep_attr_.pop_back();
      if (attribute) return;
    } else if (attr_[depth_]) {  // an attribute is not a value of its parent: keep reading
      attr_[depth_] = false;
      return;
    }
    kind = kElemValue;
  }
}

bool ReplyScanner::OnLine(std::string_view line) {
  int64_t n = 0;
  switch (cur_type_) {
    case '+':
      if (depth_ == 0 && line.size() <= ReplyLimits::kShortString) {
        short_.assign(line);
      } else if (AtFirstElement() && line.size() <= ReplyLimits::kShortString) {
        short_.assign(line);
      }
      ValueDone(kElemValue);
      return true;
    case '-':
      if (depth_ == 0) {
        info_.is_error = true;
        err_.assign(line.substr(0, ReplyLimits::kErrorTextCapture));
      } else if (AtTopElement() && element_errors_.size() < ReplyLimits::kMaxTrackedElements) {
        element_errors_.push_back(
            ElementError{static_cast<uint32_t>(top_index_),
                         std::string(line.substr(0, ReplyLimits::kErrorTextCapture))});
      }
      ValueDone(kElemError);
      return true;
    case ':':
      if (!ParseInt64(line, &n)) return false;
      if (depth_ == 0) {
        info_.has_integer = true;
        info_.integer = n;
      } else if (AtTopElement()) {
        info_.has_last_integer = true;
        info_.last_integer = n;
      }
      ValueDone(n == 0 ? kElemZero : kElemValue);
      return true;
    case ',':
    case '#':
    case '(':
      ValueDone(kElemValue);
      return true;
    case '_':
      if (!line.empty()) return false;
      ValueDone(kElemNull);
      return true;
    case '$':
    case '=':
    case '!':
      if (line == "-1" && cur_type_ == '$') {
        ValueDone(kElemNull);
        return true;
      }
      if (!ParseInt64(line, &n) || n < 0 || n > ReplyLimits::kMaxBulk) return false;
      remaining_ = static_cast<uint64_t>(n);
      body_keep_ = (cur_type_ == '!' && (depth_ == 0 || AtTopElement())) ||
                   (n <= static_cast<int64_t>(ReplyLimits::kShortString) &&
                    (depth_ == 0 || AtFirstElement()));
      text_.clear();
      state_ = State::kBody;
      return true;
    default: {  // aggregates: * % ~ > |
      if (line == "-1" && (cur_type_ == '*' || cur_type_ == '%')) {
        ValueDone(kElemNull);
        return true;
      }
      if (!ParseInt64(line, &n) || n < 0 || n > ReplyLimits::kMaxAggregate) return false;
      uint64_t elems = static_cast<uint64_t>(n) * ((cur_type_ == '%' || cur_type_ == '|') ? 2 : 1);
      if (depth_ == 0 && cur_type_ != '|') {
        info_.type = cur_type_;
        info_.elements = elems;
        info_.is_push = cur_type_ == '>';
      }
      if (elems == 0) {
        if (cur_type_ != '|') ValueDone(kElemEmpty);
        return true;
      }
      if (depth_ >= max_depth_) {
        error_ = "reply nesting too deep";
        return false;
      }
      if (depth_ >= ReplyLimits::kMaxDepth) {
        deep_attr_.push_back(cur_type_ == '|');
        deep_stack_.push_back(elems);
        ++depth_;
        return true;
      }
      attr_[depth_] = cur_type_ == '|';
      stack_[depth_++] = elems;
      return true;
    }
  }
}

void ReplyScanner::OnBodyDone() {
  if (body_keep_) {
    if (cur_type_ == '!') {
      if (depth_ == 0) {
        info_.is_error = true;
        err_.assign(text_.substr(0, ReplyLimits::kErrorTextCapture));
      } else if (AtTopElement() && element_errors_.size() < ReplyLimits::kMaxTrackedElements) {
        element_errors_.push_back(ElementError{static_cast<uint32_t>(top_index_),
                                               text_.substr(0, ReplyLimits::kErrorTextCapture)});
      }
    } else {
      short_.assign(text_);
    }
  }
  ValueDone(cur_type_ == '!' ? kElemError : kElemValue);
}

void ReplyScanner::FinishFrame(ReplyInfo* out) {
  if (info_.type == 0) info_.type = cur_type_;
  info_.error_text = err_;
  info_.error_prefix = FirstWord(err_);
  if (info_.type == '*' || info_.type == '%' || info_.type == '~' || info_.type == '>') {
    info_.first_element = short_;
  } else {
    info_.short_string = short_;
  }
  info_.element_kind = element_kind_;
  info_.element_errors = element_errors_;
  info_.element_raw = element_raw_;
  info_.wire_bytes = frame_bytes_;
  if (capturing_) {
    if (raw_overflow_) {
      info_.raw_truncated = true;
      info_.element_raw = {};
    } else {
      info_.raw = raw_;
    }
  }
  capturing_ = 0;
  frame_started_ = false;
  frame_done_ = false;
  *out = info_;
}

// Most replies are one of these, whole in the bytes at hand: +OK, :1, $3 foo, $-1, -ERR ...
// The result is exactly what the state machine below reports for the same bytes (the unit
// tests and the fuzzer compare whole inputs with byte-by-byte ones, which never come here).
bool ReplyScanner::NextWhole(std::string_view* input, ReplyInfo* out) {
  const std::string_view in = *input;
  const char type = in[0];
  if (type == '*') return NextWholeArray(input, out);
  if (type != '$' && type != '+' && type != ':' && type != '-') return false;
  // The line after the type byte; lines longer than the state machine keeps go to it.
  std::string_view line;
  size_t wire = 0;
  if (!WholeLine(in, 1, kLineKeep + 1, &line, &wire)) return false;
  *out = ReplyInfo{};
  out->type = type;
  switch (type) {
    case '+':
      short_.assign(line.size() <= ReplyLimits::kShortString ? line : std::string_view());
      out->short_string = short_;
      break;
    case '-':
      err_.assign(line);
      out->is_error = true;
      out->error_text = err_;
      out->error_prefix = FirstWord(err_);
      break;
    case ':':
      if (!ParseInt64(line, &out->integer)) return false;
      out->has_integer = true;
      break;
    default: {  // '$'
      if (line == "-1") {
        out->is_null = true;
        break;
      }
      std::string_view body;
      if (!WholeBulkBody(in, wire, line, &body)) return false;
      if (body.size() <= ReplyLimits::kShortString) {
        short_.assign(body);
        out->short_string = short_;
      }
      wire += body.size() + 2;
    }
  }
  out->wire_bytes = wire;
  input->remove_prefix(wire);
  return true;
}

// An array of bulk strings, integers and simple strings, whole in the bytes at hand: LRANGE,
// MGET, HGETALL, SMEMBERS, ZRANGE ... Reports what the state machine reports for it (element
// kinds, the first element when short, the last integer); anything else (nested aggregates,
// errors, RESP3 types, a null or empty array, an element not whole) falls back before
// consuming a byte.
bool ReplyScanner::NextWholeArray(std::string_view* input, ReplyInfo* out) {
  if (max_depth_ == 0) return false;  // the state machine's "reply nesting too deep"
  const std::string_view in = *input;
  std::string_view line;
  size_t pos = 0;
  int64_t n = 0;
  if (!WholeLine(in, 1, kLineKeep + 1, &line, &pos) || !ParseInt64(line, &n) || n <= 0 ||
      n > ReplyLimits::kMaxAggregate) {
    return false;
  }
  // Each element takes at least 3 bytes ("+\r\n"): an array that cannot be whole here is
  // left to the state machine without a walk over what is at hand.
  if (static_cast<uint64_t>(n) > (in.size() - pos) / 3) return false;
  short_.clear();
  element_kind_.clear();
  bool has_last_integer = false;
  int64_t last_integer = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (pos >= in.size()) return false;
    const char t = in[pos];
    if (t != '$' && t != ':' && t != '+') return false;
    size_t next = 0;
    if (!WholeLine(in, pos + 1, kLineKeep + 1, &line, &next)) return false;
    ElementKind kind = kElemValue;
    if (t == '$') {
      if (line == "-1") {
        kind = kElemNull;
      } else {
        std::string_view body;
        if (!WholeBulkBody(in, next, line, &body)) return false;
        if (i == 0 && body.size() <= ReplyLimits::kShortString) short_.assign(body);
        next += body.size() + 2;
      }
    } else if (t == ':') {
      if (!ParseInt64(line, &last_integer)) return false;
      has_last_integer = true;
      if (last_integer == 0) kind = kElemZero;
    } else if (i == 0 && line.size() <= ReplyLimits::kShortString) {  // '+'
      short_.assign(line);
    }
    if (element_kind_.size() < ReplyLimits::kMaxTrackedElements) element_kind_.push_back(kind);
    pos = next;
  }
  *out = ReplyInfo{};
  out->type = '*';
  out->elements = static_cast<uint64_t>(n);
  out->has_last_integer = has_last_integer;
  out->last_integer = last_integer;
  out->first_element = short_;
  out->element_kind = element_kind_;
  out->wire_bytes = pos;
  input->remove_prefix(pos);
  return true;
}

ScanStatus ReplyScanner::Next(std::string_view* input, ReplyInfo* out) {
  if (state_ == State::kType && !frame_started_ && capture_limit_ == 0 && !input->empty() &&
      NextWhole(input, out)) {
    return ScanStatus::kCommand;
  }
  const char* mark = input->data();
  // Moves the bytes consumed since `mark` into the frame's byte count (and raw capture).
  auto account = [&] {
    size_t n = static_cast<size_t>(input->data() - mark);
    if (n && capturing_ && !raw_overflow_) {
      if (raw_.size() + n > capturing_) {
        raw_overflow_ = true;
      } else {
        raw_.append(mark, n);
      }
    }
    frame_bytes_ += n;
    mark = input->data();
  };

  for (;;) {
    switch (state_) {
      case State::kType: {
        if (input->empty()) {
          account();
          return ScanStatus::kNeedMore;
        }
        if (!frame_started_) {
          StartFrame();
          mark = input->data();
        }
        char c = (*input)[0];
        switch (c) {
          case '+': case '-': case ':': case ',': case '#': case '(': case '_':
          case '$': case '=': case '!':
          case '*': case '%': case '~': case '>': case '|':
            break;
          default:
            return Fail(std::string("unexpected reply type byte 0x") + "0123456789abcdef"[(c >> 4) & 15] +
                        "0123456789abcdef"[c & 15]);
        }
        if (AtTopElement()) element_start_ = frame_bytes_ + static_cast<uint64_t>(input->data() - mark);
        if (depth_ == 0 && c != '|') info_.type = c;
        cur_type_ = c;
        input->remove_prefix(1);
        state_ = State::kLine;
        line_len_ = 0;
        text_.clear();
        continue;
      }
      case State::kLine: {
        if (input->empty()) {
          account();
          return ScanStatus::kNeedMore;
        }
        std::string_view line;
        size_t full_len = 0;  // the line's real length (text_ keeps only its first bytes)
        if (saw_cr_) {
          input->remove_prefix(1);  // the '\n'
          saw_cr_ = false;
          line = text_;
          full_len = line_len_;
        } else {
          const char* cr = static_cast<const char*>(std::memchr(input->data(), '\r', input->size()));
          size_t n = cr ? static_cast<size_t>(cr - input->data()) : input->size();
          if (cr && line_len_ == 0 && n + 1 < input->size()) {
            line = input->substr(0, n);
            full_len = n;
            input->remove_prefix(n + 2);
          } else {
            if (text_.size() < kLineKeep) {
              text_.append(input->data(), std::min(n, kLineKeep - text_.size()));
            }
            line_len_ += n;
            input->remove_prefix(n);
            if (line_len_ > ReplyLimits::kMaxLine) return Fail("reply line too long");
            if (cr) {
              input->remove_prefix(1);
              saw_cr_ = true;
            }
            continue;
          }
        }
        // Lengths, counts and integers must be short; text lines (simple strings, errors,
        // doubles, big numbers) may be long and are only counted. Decided on the full length
        // so that the outcome never depends on where reads split the line.
        bool numeric = cur_type_ != '+' && cur_type_ != '-' && cur_type_ != ',' &&
                       cur_type_ != '(' && cur_type_ != '#';
        if ((numeric && full_len > kLineKeep) || full_len > ReplyLimits::kMaxLine) {
          return Fail("reply header line too long");
        }
        if ((cur_type_ == '$' || cur_type_ == '*' || cur_type_ == '%' || cur_type_ == '~' ||
             cur_type_ == '>' || cur_type_ == '|' || cur_type_ == '=' || cur_type_ == '!') &&
            line == "?") {
          return Fail("streamed RESP3 types are not supported");
        }
        line_len_ = 0;
        State before = state_;
        // Account before OnLine so that element end offsets include this line.
        account();
        if (!OnLine(line)) {
          return Fail(error_.empty() ? std::string("invalid reply header '") + cur_type_ + "'"
                                     : error_);
        }
        if (state_ == before) state_ = State::kType;
        break;
      }
      case State::kBody: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(input->size(), remaining_));
        if (body_keep_) text_.append(input->data(), std::min(take, kLineKeep - std::min(kLineKeep, text_.size())));
        input->remove_prefix(take);
        remaining_ -= take;
        if (remaining_ > 0) {
          account();
          return ScanStatus::kNeedMore;
        }
        state_ = State::kBodyCrlf;
        remaining_ = 2;
        continue;
      }
      case State::kBodyCrlf: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(input->size(), remaining_));
        input->remove_prefix(take);
        remaining_ -= take;
        if (remaining_ > 0) {
          account();
          return ScanStatus::kNeedMore;
        }
        account();
        state_ = State::kType;
        OnBodyDone();
        break;
      }
      case State::kError:
        return ScanStatus::kError;
    }
    if (frame_done_) {
      FinishFrame(out);
      return ScanStatus::kCommand;
    }
  }
}

}  // namespace respscope::resp
