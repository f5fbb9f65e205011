// libFuzzer target: ParseResp must never crash, hang or read out of bounds on hostile replies.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "analytics/jobs/resp_value.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using respscope::analytics::jobs::ParseRespPrefix;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t used = 0;
  if (auto v = ParseRespPrefix(in, &used); v) {
    if (used == 0 || used > size) __builtin_trap();
  }
  return 0;
}
