// libFuzzer target: DecodeMsgpack must never crash, hang or read out of bounds, and anything it
// accepts must be self-consistent.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "analytics/jobs/msgpack.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using respscope::analytics::jobs::DecodeMsgpackPrefix;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  size_t used = 0;
  if (auto v = DecodeMsgpackPrefix(in, &used); v) {
    if (used == 0 || used > size) __builtin_trap();
    (void)v->AsInt();
    (void)v->Get("delay");
  }
  return 0;
}
