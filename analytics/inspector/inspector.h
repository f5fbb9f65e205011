// The inspector: respscope's periodic questions to the upstream over its own side channel.
// Every interval it reads INFO (memory, keyspace hits and misses, reachability) into the engine,
// and, when the job tracker is on, counts the jobs of every discovered BullMQ / Bull queue per
// state (as BullMQ's getJobCounts() does) and publishes the queues' metrics to the engine.
//
// When the upstream does not answer (refused, timeout, a name that does not resolve), the next
// attempt comes after a bounded exponential backoff (RetryDelay) instead of a full interval, so
// readiness comes back soon after the upstream does, and a dead upstream costs one connect
// attempt per backoff step at most. Failures are logged on the first one and then at most once
// a minute (with a count), recovery once.
//
// Thread: Start() runs the loop on a thread of its own (blocking hiredis calls with timeouts);
// Depths() may be called from any thread; Start() and Stop() from the owner's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/descriptors.h"
#include "common/tls.h"
#include "config/config.h"

namespace respscope::engine {
class Engine;
}
namespace respscope::analytics::jobs {
class JobTracker;
}

namespace respscope::inspector {

class SideChannel;

// The wait before attempt `failures` + 1 after `failures` (>= 1) failed attempts in a row:
// kRetryMin, doubling, at most min(kRetryMax, interval).
inline constexpr std::chrono::milliseconds kRetryMin{250};
inline constexpr std::chrono::milliseconds kRetryMax{5000};
std::chrono::milliseconds RetryDelay(int failures, std::chrono::milliseconds interval);

// "prefix:queue" -> state -> jobs. States are named as in the API: waiting, active, paused,
// delayed, prioritized, completed, failed, waiting_children.
using QueueDepths = std::map<std::string, std::map<std::string, int64_t>>;

struct InspectorOptions {
  config::UpstreamUrl upstream;
  std::shared_ptr<common::UpstreamTls> tls;  // rediss://; null: plain
  // When set (a redis+sentinel:// upstream), asked before every round for the address to
  // question instead of `upstream`: the current master, or nullopt while none is known (the
  // round then reports the upstream down). Called on the inspector's thread; must not block.
  std::function<std::optional<config::UpstreamUrl>()> current_upstream;
  std::chrono::milliseconds connect_timeout{2000};
  // Time between two rounds; raised to kMinInterval.
  std::chrono::milliseconds interval{5000};
};

class Inspector {
 public:
  // A floor on the interval: every round costs the upstream an INFO and two commands per
  // queue and state, so a tiny interval must not turn the side channel into real load.
  static constexpr std::chrono::milliseconds kMinInterval{500};

  // engine and on_upstream_up outlive the Inspector; jobs is null when BullMQ tracking is off
  // (then no depth is polled). on_upstream_up is called on the inspector's thread after every
  // INFO with whether the upstream answered.
  Inspector(InspectorOptions options, engine::Engine* engine, analytics::jobs::JobTracker* jobs,
            std::function<void(bool up)> on_upstream_up);
  ~Inspector();  // Stop()
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  void Start();
  // Wakes the loop and joins it. Idempotent.
  void Stop();
  // Runs the next round now (the upstream moved). Any thread.
  void Wake();

  // The depths of the last completed poll (a copy).
  QueueDepths Depths() const;

 private:
  void Loop();
  // False when the side channel failed half way (the depths are left as they were).
  bool PollDepths(SideChannel& side);
  // Logs the outcome of an attempt (throttled) and returns the wait before the next one.
  std::chrono::milliseconds AfterAttempt(bool up, const std::string& error);
  void PublishQueues();

  InspectorOptions options_;
  engine::Engine* engine_;
  analytics::jobs::JobTracker* jobs_;
  std::function<void(bool)> on_upstream_up_;

  mutable std::mutex depth_mu_;
  QueueDepths depths_;

  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  bool warned_refused_ = false;  // the INFO refusal is logged once (inspector thread only)
  int failures_ = 0;             // failed attempts in a row (inspector thread only)
  common::LogThrottle down_log_{std::chrono::minutes(1)};
};

}  // namespace respscope::inspector
