// libFuzzer: the shared-connection router, many clients' frames in, replies out. The input's
// first bytes say how many replies each of up to 8 owners is owed (in route order); the rest is
// what the upstream sends, fed at the split the input chooses. Invariants: never crash; the
// delivered runs concatenate to the bytes fed (up to an error); a run never reports more
// replies than its route was owed; owners are served in route order; replies delivered plus
// outstanding equal replies expected.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "proxy/net/reply_router.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const size_t routes = 1 + data[0] % 8;
  if (size < 2 + routes) return 0;
  const size_t step = 1 + data[1] % 64;
  respscope::net::ReplyRouter<int> r;
  std::vector<std::pair<int, uint32_t>> expected;
  uint64_t total = 0;
  for (size_t i = 0; i < routes; ++i) {
    const int owner = 1 + data[2 + i] % 4;
    const uint32_t n = 1 + (data[2 + i] >> 2) % 16;
    const bool merge = (data[2 + i] & 0x80) != 0;
    r.Expect(owner, n, merge);
    expected.emplace_back(owner, n);
    total += n;
  }
  std::string_view wire(reinterpret_cast<const char*>(data) + 2 + routes, size - 2 - routes);
  std::string delivered;
  uint64_t done = 0;
  size_t route = 0;
  uint32_t left = expected.empty() ? 0 : expected[0].second;
  bool ok = true;
  for (size_t pos = 0; pos < wire.size() && ok; pos += step) {
    std::string chunk(wire.substr(pos, step));
    ok = r.Feed(chunk, [&](int owner, std::string_view b, uint32_t n) {
      // Skip routes already complete; merged routes of one owner count as one.
      while (route < expected.size() && left == 0) {
        ++route;
        if (route < expected.size()) left = expected[route].second;
      }
      if (route >= expected.size()) abort();
      uint32_t avail = left;
      for (size_t k = route + 1; k < expected.size() && expected[k].first == owner; ++k) {
        avail += expected[k].second;  // may have been merged with the route before
      }
      if (owner != expected[route].first || n > avail) abort();
      while (n > 0) {
        uint32_t take = std::min(n, left);
        left -= take;
        n -= take;
        done += take;
        if (left == 0 && n > 0) {
          ++route;
          left = expected[route].second;
        }
      }
      delivered.append(b);
    });
    if (ok && delivered != wire.substr(0, std::min(wire.size(), pos + step))) abort();
  }
  if (done + r.outstanding() != total && ok) abort();
  return 0;
}
