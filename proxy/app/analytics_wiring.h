// Everything analytics the app owns: one Recorder per IO thread, the engine, the admin HTTP
// server, the job tracker and the inspector. The data plane only sees the sinks.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "analytics/engine/external.h"
#include "analytics/observation.h"
#include "config/config.h"

namespace respscope::net {
class Server;
}

namespace respscope::app {

class AnalyticsWiring {
 public:
  AnalyticsWiring(const config::Config& cfg, int threads);
  ~AnalyticsWiring();

  std::vector<analytics::ObservationSink*> sinks();
  // A redis+sentinel:// upstream: the side channel questions `current` (the master, nullopt
  // while none is known) and the metrics show `metrics`. Before Start().
  void FollowSentinel(std::function<std::optional<config::UpstreamUrl>()> current,
                      std::function<engine::SentinelMetrics()> metrics);
  // The upstream moved: the side channel asks the new one now. Any thread.
  void UpstreamMoved();
  void Start(net::Server* server);
  void Reload();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace respscope::app
