// libFuzzer: the session state machine over interleaved client and upstream streams. The first
// byte of each chunk picks the direction, the next its length. Invariants: no crash; pending
// never exceeds the limit; once observation stops it stays stopped; every observation is well
// formed (lookups match keys, times ordered).
#include <cstdint>
#include <cstdlib>

#include "proxy/session/session_core.h"

namespace {
class CheckingSink : public respscope::analytics::ObservationSink {
 public:
  void Record(const respscope::analytics::Observation& o) override {
    if (!o.lookups.empty() && o.lookups.size() != o.keys.size()) abort();
    if (o.keys.size() != o.key_lengths.size()) abort();
    for (size_t i = 0; i < o.keys.size(); ++i) {
      if (o.keys[i].size() > o.key_lengths[i]) abort();
    }
    if (o.end_ns < o.start_ns) abort();
    if (o.command.empty()) abort();
  }
  void OnEvent(respscope::analytics::SessionEvent, uint64_t) override {}
  void OnBytes(uint64_t, uint64_t) override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static auto table = respscope::commands::CommandTable::BuiltIn();
  CheckingSink sink;
  respscope::session::SessionCore core(table, &sink, 1, "fuzz");
  size_t pos = 0;
  int64_t now = 1000;
  bool was_observing = true;
  while (pos + 2 <= size) {
    bool upstream = data[pos] & 1;
    size_t n = data[pos + 1];
    pos += 2;
    n = std::min(n, size - pos);
    std::string_view chunk(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    now += 10;
    if (upstream) {
      core.OnUpstreamBytes(chunk, now);
    } else {
      core.OnClientBytes(chunk, now);
    }
    if (!was_observing && core.observing()) abort();
    was_observing = core.observing();
    if (core.pending() > respscope::session::SessionCore::kMaxPending) abort();
  }
  return 0;
}
