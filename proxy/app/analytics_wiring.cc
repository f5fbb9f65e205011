#include "proxy/app/analytics_wiring.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "analytics/admin/server.h"
#include "analytics/engine/engine.h"
#include "analytics/patterns/key_rules.h"
#include "analytics/recorder/recorder.h"
#include "config/loader.h"
#include "proxy/app/side_channel.h"
#include "proxy/net/server.h"

namespace respscope::app {

namespace {

using Micros = std::chrono::microseconds;

// Drops everything: RESPSCOPE_ANALYTICS=off, for measuring what analytics cost (bench/).
class NullSink : public analytics::ObservationSink {
 public:
  void Record(const analytics::Observation&) override {}
  void OnEvent(analytics::SessionEvent, uint64_t) override {}
  void OnBytes(uint64_t, uint64_t) override {}
};

std::shared_ptr<const patterns::KeyRules> BuildRules(const config::Config& cfg,
                                                     const std::string& hash_key) {
  patterns::PatternOptions po;
  po.auto_patterns = cfg.key_patterns.auto_patterns;
  po.max_patterns = cfg.key_patterns.max_patterns;
  for (const auto& r : cfg.key_patterns.rules) po.rules.push_back({r.match, r.name});
  patterns::SanitizeOptions so;
  so.sensitive_key_patterns = cfg.sanitization.sensitive_key_patterns;
  so.mode = cfg.sanitization.mode == config::SanitizeMode::kHash ? patterns::SanitizeMode::kHash
                                                                  : patterns::SanitizeMode::kRedact;
  so.hash_key = hash_key;
  so.capture_values = cfg.sanitization.capture_values;
  so.max_value_size = cfg.sanitization.max_value_size;
  so.max_key_length = cfg.sanitization.max_key_length;
  so.exclude_key_patterns = cfg.sanitization.exclude_key_patterns;
  so.sample_rate = cfg.sanitization.sample_rate;
  return patterns::KeyRules::Build(po, so);
}

std::vector<engine::AlertRule> BuildAlerts(const config::Config& cfg) {
  std::vector<engine::AlertRule> out;
  for (const auto& a : cfg.alerts) {
    engine::AlertRule r;
    r.name = a.name;
    r.metric = std::string(config::ToString(a.metric));
    r.selector = !a.pattern.empty() ? a.pattern : (!a.queue.empty() ? a.queue : "*");
    r.above = a.comparison == config::Comparison::kAbove;
    r.threshold = a.threshold;
    r.for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(a.for_duration).count();
    r.cooldown_ms = std::chrono::duration_cast<std::chrono::milliseconds>(a.cooldown).count();
    r.severity = std::string(config::ToString(a.severity));
    out.push_back(std::move(r));
  }
  return out;
}

// "key:value" lines of INFO.
uint64_t InfoField(const std::string& info, std::string_view field) {
  std::string needle = "\n" + std::string(field) + ":";
  size_t p = info.find(needle);
  if (p == std::string::npos) return 0;
  return std::strtoull(info.c_str() + p + needle.size(), nullptr, 10);
}

}  // namespace

struct AnalyticsWiring::Impl {
  config::Config cfg;
  bool enabled = true;
  std::string hash_key;
  std::shared_ptr<patterns::RulesHub> hub;
  std::vector<std::shared_ptr<recorder::Recorder>> shards;
  std::vector<std::unique_ptr<NullSink>> null_sinks;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<admin::AdminServer> admin;
  net::Server* server = nullptr;

  // Inspector: INFO and upstream reachability over a side channel, every inspector_interval.
  std::thread inspector;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;

  void InspectLoop() {
    SideChannel side(cfg.upstream, std::chrono::duration_cast<std::chrono::milliseconds>(
                                       cfg.limits.connect_timeout));
    auto interval = std::chrono::duration_cast<std::chrono::milliseconds>(
        cfg.bullmq.inspector_interval);
    if (interval < std::chrono::milliseconds(500)) interval = std::chrono::milliseconds(500);
    std::unique_lock lock(mu);
    while (!stop) {
      lock.unlock();
      std::string raw = side.CommandRaw({"INFO"});
      engine::RedisInfo info;
      info.up = !raw.empty() && raw[0] == '$';
      if (info.up) {
        info.used_memory = InfoField(raw, "used_memory");
        info.keyspace_hits = InfoField(raw, "keyspace_hits");
        info.keyspace_misses = InfoField(raw, "keyspace_misses");
      }
      engine->UpdateRedis(info);
      engine->SetUpstreamUp(info.up);
      if (server) server->SetUpstreamUp(info.up);
      lock.lock();
      cv.wait_for(lock, interval, [&] { return stop; });
    }
  }
};

AnalyticsWiring::AnalyticsWiring(const config::Config& cfg,
                                 std::shared_ptr<const commands::CommandTable> table, int threads)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = cfg;
  const char* off = std::getenv("RESPSCOPE_ANALYTICS");
  impl_->enabled = !(off && std::string_view(off) == "off");
  const char* key = std::getenv("RESPSCOPE_HASH_KEY");
  impl_->hash_key = key ? key : "";
  if (impl_->hash_key.empty() && cfg.sanitization.mode == config::SanitizeMode::kHash) {
    spdlog::warn("RESPSCOPE_HASH_KEY is not set: sensitive keys are hashed with a random key, "
                 "stable only until respscope restarts");
  }
  impl_->hub = std::make_shared<patterns::RulesHub>(BuildRules(cfg, impl_->hash_key));

  recorder::RecorderOptions ro;
  ro.slow_threshold_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.analytics.slow_command_threshold)
          .count());
  ro.slow_log_size = cfg.analytics.slowlog_size;
  for (int i = 0; i < threads; ++i) {
    impl_->shards.push_back(std::make_shared<recorder::Recorder>(ro, impl_->hub));
    impl_->null_sinks.push_back(std::make_unique<NullSink>());
  }

  engine::EngineOptions eo;
  eo.slow_threshold_ns = ro.slow_threshold_ns;
  eo.top_keys = cfg.analytics.top_keys;
  eo.slow_log_size = cfg.analytics.slowlog_size;
  eo.max_patterns = cfg.key_patterns.max_patterns;
  eo.sample_rate = cfg.sanitization.sample_rate;
  const auto& h = cfg.analytics.history;
  auto secs = [](config::Duration d) {
    return static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
  };
  eo.history.fine_step_s = std::max(1, secs(h.fine.resolution));
  eo.history.fine_points = std::max(1, secs(h.fine.retention) / eo.history.fine_step_s);
  eo.history.coarse_step_s = std::max(1, secs(h.coarse.resolution));
  eo.history.coarse_points = std::max(1, secs(h.coarse.retention) / eo.history.coarse_step_s);
  eo.alerts = BuildAlerts(cfg);
  impl_->engine = std::make_unique<engine::Engine>(eo, impl_->shards);
}

AnalyticsWiring::~AnalyticsWiring() { Stop(); }

std::vector<analytics::ObservationSink*> AnalyticsWiring::sinks() {
  std::vector<analytics::ObservationSink*> out;
  for (size_t i = 0; i < impl_->shards.size(); ++i) {
    if (impl_->enabled) {
      out.push_back(impl_->shards[i].get());
    } else {
      out.push_back(impl_->null_sinks[i].get());
    }
  }
  return out;
}

std::vector<uint16_t> AnalyticsWiring::CaptureCommands(const commands::CommandTable&) const {
  return {};
}

void AnalyticsWiring::Start(net::Server* server) {
  impl_->server = server;
  if (!impl_->enabled) spdlog::warn("RESPSCOPE_ANALYTICS=off: commands are forwarded, not observed");
  impl_->engine->Start();
  admin::AdminOptions ao;
  ao.address = impl_->cfg.admin.listen.host;
  ao.port = impl_->cfg.admin.listen.port;
  ao.token = impl_->cfg.admin.token;
  ao.protect_metrics = impl_->cfg.admin.protect_metrics;
  impl_->admin = std::make_unique<admin::AdminServer>(ao, *impl_->engine,
                                                      [server] { return server->upstream_up(); });
  if (std::error_code ec = impl_->admin->Start()) {
    throw std::runtime_error("admin server on " + impl_->cfg.admin.listen.ToString() + ": " +
                             ec.message());
  }
  spdlog::info("admin HTTP on {} (/metrics, /api/v1, /healthz, /readyz){}",
               impl_->cfg.admin.listen.ToString(),
               impl_->cfg.admin.token.empty() ? "" : ", bearer token required");
  impl_->inspector = std::thread([this] { impl_->InspectLoop(); });
}

void AnalyticsWiring::Reload() {
  const std::string& path = impl_->cfg.config_file;
  if (path.empty()) {
    spdlog::info("SIGHUP: no configuration file to reload");
    return;
  }
  try {
    config::Config fresh = config::LoadConfigFile(path);
    impl_->hub->Publish(BuildRules(fresh, impl_->hash_key));
    impl_->engine->SetAlertRules(BuildAlerts(fresh));
    impl_->engine->SetSampleRate(fresh.sanitization.sample_rate);
    spdlog::info("SIGHUP: reloaded key patterns ({} rules), sanitisation and {} alert rules from {}",
                 fresh.key_patterns.rules.size(), fresh.alerts.size(), path);
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: {} rejected, previous configuration kept: {}", path, e.what());
  }
}

void AnalyticsWiring::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->inspector.joinable()) impl_->inspector.join();
  if (impl_->admin) impl_->admin->Stop();
  if (impl_->engine) impl_->engine->Stop();
}

}  // namespace respscope::app
