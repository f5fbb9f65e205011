// libFuzzer target: the RESP value reader (proxy/resp/resp_value.h) must never crash, hang or
// read out of bounds on hostile replies, and must report consistently: a parsed prefix is
// non-empty and inside the input, a failure says why. Run once with the default limits (the job
// tracker's) and once with a tight depth, as the command table's reader sets one of its own.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/resp/resp_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using respscope::resp::ParseResp;
  using respscope::resp::ParseRespPrefix;
  using respscope::resp::RespLimits;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  RespLimits tight;
  tight.max_depth = 2;
  for (const RespLimits& limits : {RespLimits{}, tight}) {
    size_t used = 0;
    std::string error;
    if (auto v = ParseRespPrefix(in, &used, limits, &error); v) {
      if (used == 0 || used > size || !error.empty()) __builtin_trap();
      // The whole-input form agrees with the prefix form.
      if (ParseResp(in, limits).has_value() != (used == size)) __builtin_trap();
    } else if (error.empty()) {
      __builtin_trap();
    }
  }
  return 0;
}
