// libFuzzer: the reply scanner on arbitrary upstream bytes (RESP2 + RESP3). Invariants: never
// crash; same frames (and raw bytes) whatever the split; raw frames concatenate to the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/resp/reply_scanner.h"

using respscope::resp::ReplyInfo;
using respscope::resp::ReplyScanner;
using respscope::resp::ScanStatus;

namespace {
std::string ErrorsOf(const ReplyInfo& r) {
  std::string out;
  for (const auto& e : r.element_errors) out += "|" + std::to_string(e.index) + ":" + e.text;
  return out;
}

// capture: request every frame's raw bytes (which also keeps whole scalar frames on the state
// machine; without it they take the scanner's short path when a chunk holds them whole).
std::vector<std::string> Run(std::string_view data, size_t step, bool* error, std::string* raw,
                             bool capture = true) {
  ReplyScanner s;
  std::vector<std::string> out;
  *error = false;
  if (capture) s.CaptureNextRaw(1 << 20);
  for (size_t pos = 0; pos < data.size(); pos += step) {
    std::string chunk(data.substr(pos, step));
    std::string_view v(chunk);
    for (;;) {
      ReplyInfo r;
      ScanStatus st = s.Next(&v, &r);
      if (st == ScanStatus::kCommand) {
        out.push_back(std::string(1, r.type) + std::to_string(r.elements) + ":" +
                      std::to_string(r.wire_bytes) + std::string(r.error_prefix) + "|" +
                      std::string(r.short_string) + "|" + std::to_string(r.element_kind.size()) +
                      "|" + std::string(r.error_text) + "|" + std::to_string(r.is_null) +
                      std::to_string(r.is_error) + std::to_string(r.has_integer) + ":" +
                      std::to_string(r.integer) + "|" + std::string(r.first_element) + "|" +
                      std::string(r.element_kind.begin(), r.element_kind.end()) + "|" +
                      std::to_string(r.has_last_integer) + ":" + std::to_string(r.last_integer) +
                      "|" + std::to_string(r.is_push) + ErrorsOf(r));
        if (!capture) continue;
        if (r.raw.size() != r.wire_bytes) abort();
        raw->append(r.raw);
        s.CaptureNextRaw(1 << 20);
        continue;
      }
      if (st == ScanStatus::kError) {
        *error = true;
        return out;
      }
      if (!v.empty()) abort();
      break;
    }
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool e1 = false, e2 = false;
  std::string raw1, raw2;
  auto whole = Run(in, size ? size : 1, &e1, &raw1);
  auto split = Run(in, 1 + (size % 5), &e2, &raw2);
  if (e1 != e2 || whole != split || raw1 != raw2) abort();
  bool e3 = false, e4 = false;
  std::string unused;
  auto whole_plain = Run(in, size ? size : 1, &e3, &unused, false);
  auto bytes_plain = Run(in, 1, &e4, &unused, false);
  if (e3 != e1 || e4 != e1 || whole_plain != whole || bytes_plain != whole) abort();
  if (!e1 && in.substr(0, raw1.size()) != raw1) abort();
  return 0;
}
