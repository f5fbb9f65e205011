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
std::vector<std::string> Run(std::string_view data, size_t step, bool* error, std::string* raw) {
  ReplyScanner s;
  std::vector<std::string> out;
  *error = false;
  s.CaptureNextRaw(1 << 20);
  for (size_t pos = 0; pos < data.size(); pos += step) {
    std::string chunk(data.substr(pos, step));
    std::string_view v(chunk);
    for (;;) {
      ReplyInfo r;
      ScanStatus st = s.Next(&v, &r);
      if (st == ScanStatus::kCommand) {
        out.push_back(std::string(1, r.type) + std::to_string(r.elements) + ":" +
                      std::to_string(r.wire_bytes) + std::string(r.error_prefix) + "|" +
                      std::string(r.short_string) + "|" + std::to_string(r.element_kind.size()));
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
  if (!e1 && in.substr(0, raw1.size()) != raw1) abort();
  return 0;
}
