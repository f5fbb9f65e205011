// ReplyRouter: who is owed each reply on one shared upstream connection.
//
// Clients' complete commands are appended to a shared connection in runs; each run is one
// Expect(owner, n). Redis answers in the order it read, so the replies are cut at reply
// boundaries (ReplyScanner) and handed back in runs, one Deliver(owner, bytes, n) per stretch
// of bytes owed to one owner:
//
//   sent:      [A: 2 commands][B: 1][A: 1]          routes: (A,2) (B,1) (A,1)
//   received:  |+OK\r\n$1\r\nx\r\n|:1\r\n|$-1\r\n|
//   delivered: A <- "+OK\r\n$1\r\nx\r\n" (2), B <- ":1\r\n" (1), A <- "$-1\r\n" (1)
//
// A run never spans two routes: a route boundary is where the owner's own order puts
// something else (Expect without merge). A reply split across reads is delivered in pieces as it arrives (a 512 MiB value is never
// held): a piece that completes no reply carries n = 0. No I/O; no allocation per reply in
// steady state (the route ring grows to its high-water mark).
//
// The same scan serves the owners' observation: Feed can also hand each owner the ReplyInfo of
// every reply it completes, and ask before a reply starts whether its raw bytes are wanted (a
// script's reply), so that nobody scans the bytes a second time.
//
// Owner: any copyable type compared with ==; a default-constructed (null) owner's replies are
// read and dropped (respscope's own handshake commands).
// Thread: none; one router per shared connection.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/resp/reply_scanner.h"

namespace respscope::net {

template <typename Owner>
class ReplyRouter {
 public:
  static constexpr size_t kMaxDepth = 1 << 16;

  // The next `replies` replies belong to `owner`, after everything expected before. With
  // `merge`, they join the last route when it is the same owner's, and are delivered with it;
  // without, a run ends between the two (the owner has something to say in between).
  void Expect(const Owner& owner, uint32_t replies, bool merge = true) {
    if (replies == 0) return;
    outstanding_ += replies;
    if (merge && count_ > 0) {
      Route& tail = At(count_ - 1);
      if (tail.owner == owner && tail.replies <= UINT32_MAX - replies) {
        tail.replies += replies;
        return;
      }
    }
    if (count_ == ring_.size()) Grow();
    At(count_) = Route{owner, replies};
    ++count_;
  }

  // Replies expected and not yet complete.
  uint64_t outstanding() const { return outstanding_; }
  // True while a reply has been partly delivered.
  bool mid_reply() const { return scanner_.frame_in_progress(); }

  // Cuts `bytes` into runs and calls deliver(const Owner&, std::string_view, uint32_t
  // completed) for each, in order. Returns false when the bytes are not RESP or nobody is owed
  // them: the connection is out of step and must be dropped (already delivered runs stand).
  template <typename Deliver>
  bool Feed(std::string_view bytes, Deliver&& deliver) {
    return Feed(bytes, deliver, [](const Owner&) { return size_t{0}; },
                [](const Owner&, const resp::ReplyInfo&) {});
  }

  // As above, and: raw_wanted(const Owner&) -> size_t is asked before each reply starts (a
  // limit in bytes for its raw capture, 0 for none); observe(const Owner&, const ReplyInfo&)
  // gets each completed reply, before the run holding it is delivered.
  template <typename Deliver, typename RawWanted, typename Observe>
  bool Feed(std::string_view bytes, Deliver&& deliver, RawWanted&& raw_wanted,
            Observe&& observe) {
    resp::ReplyInfo info;
    while (!bytes.empty()) {
      if (count_ == 0) return false;
      const Owner owner = At(0).owner;
      const char* begin = bytes.data();
      uint32_t done = 0;
      bool route_open = true;
      while (!bytes.empty() && route_open) {
        if (!scanner_.frame_in_progress()) {
          if (const size_t limit = raw_wanted(owner)) scanner_.CaptureNextRaw(limit);
        }
        resp::ScanStatus st = scanner_.Next(&bytes, &info);
        if (st == resp::ScanStatus::kError) return false;
        if (st == resp::ScanStatus::kNeedMore) break;
        observe(owner, info);
        ++done;
        --outstanding_;
        if (--At(0).replies == 0) {
          At(0) = Route{};
          head_ = (head_ + 1) & (ring_.size() - 1);
          --count_;
          route_open = false;  // a run is one route: Expect merged what could go together
        }
      }
      deliver(owner, std::string_view(begin, static_cast<size_t>(bytes.data() - begin)), done);
    }
    return true;
  }

  // Calls f(const Owner&) for every route still owed a reply, oldest first.
  template <typename F>
  void ForEachOwner(F&& f) const {
    for (size_t i = 0; i < count_; ++i) f(At(i).owner);
  }

  // Forgets every route and any partial reply (the connection is gone).
  void Clear() {
    for (size_t i = 0; i < count_; ++i) At(i) = Route{};
    head_ = count_ = 0;
    outstanding_ = 0;
    scanner_.Reset();
  }

 private:
  struct Route {
    Owner owner{};
    uint32_t replies = 0;
  };
  Route& At(size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  const Route& At(size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
  void Grow() {
    std::vector<Route> bigger(ring_.empty() ? 16 : ring_.size() * 2);
    for (size_t i = 0; i < count_; ++i) bigger[i] = std::move(At(i));
    ring_.swap(bigger);
    head_ = 0;
  }

  std::vector<Route> ring_;  // power-of-two size
  size_t head_ = 0;
  size_t count_ = 0;
  uint64_t outstanding_ = 0;
  // Framing is forwarding here: whatever Redis nests (a Lua table can be thousands deep) must
  // be cut correctly, so the depth limit is far above the observers'.
  resp::ReplyScanner scanner_{kMaxDepth};
};

}  // namespace respscope::net
