// Everything analytics the app owns: one Recorder per IO thread, the engine, the admin HTTP
// server, the job tracker and the inspector. The data plane only sees the sinks.
#pragma once

#include <memory>
#include <vector>

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
  void Start(net::Server* server);
  void Reload();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace respscope::app
