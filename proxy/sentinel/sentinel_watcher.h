// SentinelWatcher: finds the master of a redis+sentinel:// upstream and follows its failovers.
//
// What it does, on a thread of its own (blocking hiredis calls, each bounded by
// upstream_sentinel.timeout; never on an IO thread):
//
//   no master known --ask every sentinel SENTINEL get-master-addr-by-name--> candidates
//        ^   |         (first answers first; a dead sentinel costs one timeout)
//        |   +--ROLE on the candidate says "master"--> master known: listener(master)
//        |   +--nothing verified--> listener(nullopt, why); retry after a backoff
//        |                          (100 ms doubling to 5 s)
//   master known --SUBSCRIBE +switch-master on one reachable sentinel
//        |   +--"+switch-master NAME old-ip old-port new-ip new-port"--> ROLE on the new one
//        |   +--every check_interval, or at once (rate limited) after Nudge(): a full round
//        |   +--no sentinel names anyone, the known master still says ROLE master--> kept
//        +---+--the round finds no working master--> no master known
//
// The listener is what moves the data plane (net::Server::SetUpstream) and the side channel.
// It is called on the watcher's thread (or on the caller's, from ResolveNow()), only when the
// answer changes.
//
// Sentinel credentials (upstream_sentinel.username/password) authenticate to the sentinels;
// the URL's credentials authenticate the ROLE check on the master. A master that refuses ROLE
// for want of credentials (NOAUTH, NOPERM) is taken on the sentinels' word: clients bring
// their own AUTH.
//
// Thread: construct, ResolveNow(), Start() and Stop() on one owner thread; Nudge(), master()
// and stats() from any thread (Nudge() never blocks: an IO thread calls it).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.h"

namespace respscope::sentinel {

// The payload of a +switch-master message: "NAME OLD-IP OLD-PORT NEW-IP NEW-PORT". Returns the
// new address when NAME is `master_name`, else nullopt (another master, or malformed).
std::optional<config::HostPort> ParseSwitchMaster(std::string_view payload,
                                                  std::string_view master_name);

struct SentinelStats {
  uint64_t master_changes = 0;    // the master moved from one known address to another
  uint64_t resolve_failures = 0;  // rounds that ended with no working master
  int reachable = 0;              // sentinels that answered in the last round
  int configured = 0;             // sentinels in the URL
  std::string master;             // "ip:port", empty while none is known
  std::string last_error;         // why the last failed round found no master
};

class SentinelWatcher {
 public:
  // master: the new master (host is an IP address), or nullopt while none is known, with why.
  using Listener =
      std::function<void(const std::optional<config::HostPort>& master, const std::string& why)>;

  // url: a redis+sentinel upstream (IsSentinel()).
  SentinelWatcher(config::UpstreamUrl url, config::SentinelConfig options, Listener listener);
  ~SentinelWatcher();  // Stop()
  SentinelWatcher(const SentinelWatcher&) = delete;
  SentinelWatcher& operator=(const SentinelWatcher&) = delete;

  // One round now, on the caller's thread (start-up: the command table wants a master).
  // Calls the listener with the outcome. Before Start() only.
  std::optional<config::HostPort> ResolveNow();
  void Start();
  // Wakes the loop and joins it. Idempotent.
  void Stop();
  // A connection to the master failed: check again soon (at most one round per
  // kNudgeInterval). Any thread, non-blocking.
  void Nudge() { nudged_.store(true, std::memory_order_relaxed); }

  std::optional<config::HostPort> master() const;
  SentinelStats stats() const;

  static constexpr std::chrono::milliseconds kBackoffMin{100};
  static constexpr std::chrono::milliseconds kBackoffMax{5000};
  static constexpr std::chrono::milliseconds kNudgeInterval{500};

 private:
  struct Answer;
  void Loop();
  // Asks every sentinel, verifies the candidates, publishes the outcome. True when a master is
  // known afterwards.
  bool Round(const char* cause);
  // Publishes `m` (nullopt: none known) when it differs from the current answer.
  void Publish(const std::optional<config::HostPort>& m, const std::string& why,
               const std::string& how);
  bool VerifyMaster(const config::HostPort& m, std::string* error);
  void Subscribe();
  // Waits up to `wait` on the subscription (or the clock); handles +switch-master.
  void WaitForEvents(std::chrono::milliseconds wait);
  void DropSubscription();
  bool Sleep(std::chrono::milliseconds wait);  // false when stopping

  config::UpstreamUrl url_;
  config::SentinelConfig options_;
  Listener listener_;

  mutable std::mutex mu_;  // master_, stats_
  std::optional<config::HostPort> master_;
  bool announced_ = false;  // the listener has heard at least once
  SentinelStats stats_;

  std::thread thread_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::atomic<bool> nudged_{false};

  // Watcher thread only.
  void* sub_ = nullptr;  // redisContext* subscribed to +switch-master
  std::string sub_name_;
  size_t next_sub_ = 0;
  std::chrono::steady_clock::time_point next_subscribe_{};  // no subscription: next try
  std::chrono::milliseconds sub_backoff_ = kBackoffMin;
  std::chrono::steady_clock::time_point last_round_{};
  std::chrono::steady_clock::time_point last_failure_log_{};
  bool warned_role_ = false;
};

}  // namespace respscope::sentinel
