// libFuzzer: the request scanner on hostile client bytes. Invariants: never crash, consume
// exactly the input unless it reports an error, and give the same commands whatever the split.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/resp/request_scanner.h"

using respscope::resp::Request;
using respscope::resp::RequestScanner;
using respscope::resp::ScanStatus;

namespace {
// A policy that depends on the command name, as the session's does.
size_t Policy(void*, std::string_view name) {
  return name.empty() ? 0 : (name[0] == 'e' || name[0] == 'E') ? 1 << 20 : 8;
}

// Whole chunks take the scanner's short path for whole commands; one byte at a time never does.
std::vector<std::string> Run(std::string_view data, size_t step, bool* error) {
  RequestScanner s;
  s.SetCapturePolicy(&Policy, nullptr);
  std::vector<std::string> out;
  *error = false;
  for (size_t pos = 0; pos < data.size(); pos += step) {
    std::string chunk(data.substr(pos, step));
    std::string_view v(chunk);
    for (;;) {
      Request r;
      ScanStatus st = s.Next(&v, &r);
      if (st == ScanStatus::kCommand) {
        std::string sig = std::to_string(r.argc) + ":" + std::to_string(r.wire_bytes);
        for (size_t i = 0; i < r.args.size(); ++i) {
          if (r.args[i].size() > r.lengths[i]) abort();
          sig += "|" + std::string(r.args[i]);
        }
        out.push_back(sig);
        continue;
      }
      if (st == ScanStatus::kError) {
        *error = true;
        out.push_back("error: " + s.error());
        return out;
      }
      if (!v.empty()) abort();  // kNeedMore must consume everything
      break;
    }
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool e1 = false, e2 = false;
  auto whole = Run(in, size ? size : 1, &e1);
  auto split = Run(in, 1 + (size % 7), &e2);
  if (e1 != e2 || whole != split) abort();
  bool e3 = false;
  if (Run(in, 1, &e3) != whole || e3 != e1) abort();
  return 0;
}
