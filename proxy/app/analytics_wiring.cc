#include "proxy/app/analytics_wiring.h"

#include <spdlog/spdlog.h>

#include <atomic>

#include "proxy/net/server.h"

namespace respscope::app {

namespace {
// Placeholder until the analytics engine is wired: exact totals only.
class CountingSink : public analytics::ObservationSink {
 public:
  void Record(const analytics::Observation& o) override {
    commands.fetch_add(1, std::memory_order_relaxed);
    if (o.flags & analytics::kObsError) errors.fetch_add(1, std::memory_order_relaxed);
  }
  void OnEvent(analytics::SessionEvent, uint64_t) override {}
  void OnBytes(uint64_t, uint64_t) override {}
  std::atomic<uint64_t> commands{0}, errors{0};
};
}  // namespace

struct AnalyticsWiring::Impl {
  std::vector<std::unique_ptr<CountingSink>> sinks;
};

AnalyticsWiring::AnalyticsWiring(const config::Config& cfg,
                                 std::shared_ptr<const commands::CommandTable> table, int threads)
    : impl_(std::make_unique<Impl>()) {
  for (int i = 0; i < threads; ++i) impl_->sinks.push_back(std::make_unique<CountingSink>());
}

AnalyticsWiring::~AnalyticsWiring() = default;

std::vector<analytics::ObservationSink*> AnalyticsWiring::sinks() {
  std::vector<analytics::ObservationSink*> out;
  for (auto& s : impl_->sinks) out.push_back(s.get());
  return out;
}

std::vector<uint16_t> AnalyticsWiring::CaptureCommands(const commands::CommandTable&) const {
  return {};
}

void AnalyticsWiring::Start(net::Server*) {}
void AnalyticsWiring::Reload() { spdlog::info("SIGHUP: nothing to reload yet"); }
void AnalyticsWiring::Stop() {
  uint64_t total = 0;
  for (auto& s : impl_->sinks) total += s->commands.load();
  spdlog::info("observed {} commands", total);
}

}  // namespace respscope::app
