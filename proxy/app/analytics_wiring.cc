#include "proxy/app/analytics_wiring.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>

#include "analytics/admin/job_routes.h"
#include "analytics/admin/notifier.h"
#include "analytics/admin/server.h"
#include "analytics/engine/engine.h"
#include "analytics/inspector/inspector.h"
#include "analytics/jobs/job_tracker.h"
#include "analytics/patterns/key_rules.h"
#include "analytics/recorder/recorder.h"
#include "config/loader.h"
#include "proxy/net/server.h"

namespace respscope::app {

namespace {

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
    r.selector = !a.pattern.empty() ? a.pattern
                 : !a.queue.empty() ? a.queue
                 : !a.kind.empty()  ? a.kind
                                    : "*";
    r.above = a.comparison == config::Comparison::kAbove;
    r.threshold = a.threshold;
    r.for_ms = std::chrono::duration_cast<std::chrono::milliseconds>(a.for_duration).count();
    r.cooldown_ms = std::chrono::duration_cast<std::chrono::milliseconds>(a.cooldown).count();
    r.severity = std::string(config::ToString(a.severity));
    out.push_back(std::move(r));
  }
  return out;
}

engine::InsightOptions BuildInsights(const config::Config& cfg) {
  const config::InsightsConfig& c = cfg.insights;
  auto ms = [](config::Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  engine::InsightOptions o;
  o.enabled = c.enabled;
  o.window_ms = ms(c.window);
  o.full_scan_bytes = c.full_scan_bytes;
  o.big_value_bytes = c.big_value_bytes;
  o.hot_key_share = c.hot_key_share;
  o.hot_key_min_commands = c.hot_key_min_commands;
  o.hot_key_ignore_prefixes = cfg.bullmq.prefixes;
  o.low_hit_rate = c.low_hit_rate;
  o.min_lookups = c.min_lookups;
  o.warmup_ms = ms(c.warmup);
  o.backlog_min_waiting = c.backlog_min_waiting;
  o.slow_job_s = std::chrono::duration<double>(c.slow_job).count();
  o.very_slow_job_s = std::chrono::duration<double>(c.very_slow_job).count();
  o.job_failure_warning = c.job_failure_warning;
  o.job_failure_critical = c.job_failure_critical;
  o.min_jobs = c.min_jobs;
  o.baseline_windows = static_cast<int>(c.baseline_windows);
  o.regression_ratio = c.regression_ratio;
  o.regression_min_ms = std::chrono::duration<double, std::milli>(c.regression_min).count();
  o.regression_min_calls = c.regression_min_calls;
  o.churn_connections_per_command = c.churn_connections_per_command;
  o.churn_min_connections = c.churn_min_connections;
  o.no_ttl_min_keys = c.no_ttl_min_keys;
  o.n_plus_one_min_reads = c.n_plus_one_min_reads;
  o.job_history_min_jobs = c.job_history_min_jobs;
  return o;
}

// Notification channels; the HMAC keys come from the environment variables the file names.
std::vector<admin::ChannelOptions> BuildChannels(const config::Config& cfg) {
  std::vector<admin::ChannelOptions> out;
  for (const auto& n : cfg.notifications) {
    admin::ChannelOptions c;
    c.name = n.name;
    c.kind = n.type == config::ChannelType::kSlack ? admin::ChannelKind::kSlack
                                                   : admin::ChannelKind::kWebhook;
    c.url = n.url;
    c.min_severity = engine::SeverityRank(config::ToString(n.min_severity));
    if (!n.hmac_secret_env.empty()) {
      const char* secret = std::getenv(n.hmac_secret_env.c_str());
      if (secret == nullptr || *secret == '\0') {
        throw std::runtime_error("notification channel " + n.name + ": hmac_secret_env " +
                                 n.hmac_secret_env + " is not set in the environment");
      }
      c.hmac_secret = secret;
    }
    c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(n.timeout);
    c.max_attempts = n.max_attempts;
    c.backoff = std::chrono::duration_cast<std::chrono::milliseconds>(n.backoff);
    out.push_back(std::move(c));
  }
  return out;
}

// One IO thread's sink: the recorder shard, and the job tracker for the commands it wants
// (scripts, and plain commands on the configured prefixes, which the tracker filters itself).
class TeeSink : public analytics::ObservationSink {
 public:
  TeeSink(recorder::Recorder* recorder, analytics::jobs::JobTracker* jobs)
      : recorder_(recorder), jobs_(jobs) {}
  void Record(const analytics::Observation& o) override {
    recorder_->Record(o);
    if (jobs_ && !(o.flags & analytics::kObsNoReply)) jobs_->Record(o);
  }
  void OnEvent(analytics::SessionEvent e, uint64_t id) override { recorder_->OnEvent(e, id); }
  void OnBytes(uint64_t in, uint64_t out) override { recorder_->OnBytes(in, out); }
  void Tick() override { recorder_->Tick(); }

 private:
  recorder::Recorder* recorder_;
  analytics::jobs::JobTracker* jobs_;
};

}  // namespace

struct AnalyticsWiring::Impl {
  config::Config cfg;
  bool enabled = true;
  std::string hash_key;
  std::shared_ptr<patterns::RulesHub> hub;
  std::vector<std::shared_ptr<recorder::Recorder>> shards;
  std::vector<std::unique_ptr<NullSink>> null_sinks;
  std::vector<std::unique_ptr<TeeSink>> tee_sinks;
  std::unique_ptr<analytics::jobs::JobTracker> jobs;
  std::mutex sanitizer_mu;  // the tracker's hook may be called from any IO thread
  patterns::Sanitizer sanitizer;
  std::shared_ptr<const patterns::KeyRules> sanitizer_rules;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<admin::Notifier> notifier;
  std::unique_ptr<admin::AdminServer> admin;
  std::unique_ptr<inspector::Inspector> inspector;
  std::function<std::optional<config::UpstreamUrl>()> current_upstream;
  std::function<engine::SentinelMetrics()> sentinel_metrics;
};

AnalyticsWiring::AnalyticsWiring(const config::Config& cfg, int threads)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = cfg;
  const char* off = std::getenv("RESPSCOPE_ANALYTICS");
  impl_->enabled = !(off && std::string_view(off) == "off");
  const char* key = std::getenv("RESPSCOPE_HASH_KEY");
  impl_->hash_key = key ? key : "";
  if (impl_->hash_key.empty() && cfg.sanitization.mode == config::SanitizeMode::kHash) {
    spdlog::warn(
        "RESPSCOPE_HASH_KEY is not set: sensitive keys are hashed with a random key, "
        "stable only until respscope restarts");
  }
  impl_->hub = std::make_shared<patterns::RulesHub>(BuildRules(cfg, impl_->hash_key));

  if (cfg.bullmq.enabled) {
    analytics::jobs::JobTrackerOptions jo;
    jo.prefixes = cfg.bullmq.prefixes;
    impl_->sanitizer_rules = impl_->hub->Get();
    impl_->sanitizer.Bind(*impl_->sanitizer_rules);
    Impl* impl = impl_.get();
    // Failure reasons go through the same sanitiser as every other text respscope emits.
    jo.sanitise_text = [impl](std::string_view text) {
      std::lock_guard lock(impl->sanitizer_mu);
      return std::string(impl->sanitizer.Text(text));
    };
    jo.audit_logger = spdlog::default_logger();
    impl_->jobs = std::make_unique<analytics::jobs::JobTracker>(std::move(jo));
  }

  recorder::RecorderOptions ro;
  ro.slow_threshold_ns = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.analytics.slow_command_threshold)
          .count());
  ro.slow_log_size = cfg.analytics.slowlog_size;
  ro.key_lifecycle = cfg.insights.enabled;
  for (int i = 0; i < threads; ++i) {
    impl_->shards.push_back(std::make_shared<recorder::Recorder>(ro, impl_->hub));
    impl_->null_sinks.push_back(std::make_unique<NullSink>());
    impl_->tee_sinks.push_back(
        std::make_unique<TeeSink>(impl_->shards.back().get(), impl_->jobs.get()));
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
  eo.insights = BuildInsights(cfg);
  impl_->engine = std::make_unique<engine::Engine>(eo, impl_->shards);
  if (!cfg.notifications.empty()) {
    impl_->notifier = std::make_unique<admin::Notifier>(BuildChannels(cfg));
    admin::Notifier* notifier = impl_->notifier.get();
    impl_->engine->SetAlertListener(
        [notifier](const std::vector<engine::AlertEvent>& events) { notifier->Enqueue(events); });
    impl_->engine->metrics().SetNotificationSource([notifier] {
      std::vector<engine::NotificationCounts> out;
      for (const auto& [name, st] : notifier->stats()) {
        out.push_back({name, st.sent, st.failed, st.dropped, st.retries});
      }
      return out;
    });
  }
}

AnalyticsWiring::~AnalyticsWiring() { Stop(); }

std::vector<analytics::ObservationSink*> AnalyticsWiring::sinks() {
  std::vector<analytics::ObservationSink*> out;
  for (size_t i = 0; i < impl_->shards.size(); ++i) {
    if (impl_->enabled) {
      out.push_back(impl_->tee_sinks[i].get());
    } else {
      out.push_back(impl_->null_sinks[i].get());
    }
  }
  return out;
}

namespace {
// The data plane's pool counters of every IO thread, summed for the engine.
engine::PoolMetrics PoolMetricsOf(const net::Server& server) {
  engine::PoolMetrics m;
  const std::vector<const net::PoolStats*> threads = server.pool_stats();
  m.pooling = !threads.empty();
  for (int b : net::PoolStats::kWriteBuckets) m.write_bounds.push_back(b);
  m.write_counts.assign(net::PoolStats::kBuckets, 0);
  for (size_t r = 0; r < static_cast<size_t>(net::PinReason::kCount); ++r) {
    m.pins[net::PinReasonName(static_cast<net::PinReason>(r))] = 0;
  }
  for (const net::PoolStats* t : threads) {
    m.shared += t->shared.Load();
    m.spare += t->spare.Load();
    m.pinned += t->pinned.Load();
    for (size_t r = 0; r < static_cast<size_t>(net::PinReason::kCount); ++r) {
      m.pins[net::PinReasonName(static_cast<net::PinReason>(r))] +=
          static_cast<uint64_t>(t->pins[r].Load());
    }
    for (size_t b = 0; b < net::PoolStats::kBuckets; ++b) {
      m.write_counts[b] += static_cast<uint64_t>(t->write_buckets[b].Load());
    }
    m.write_commands += static_cast<uint64_t>(t->write_commands.Load());
    m.shared_drops += static_cast<uint64_t>(t->shared_drops.Load());
    m.slow_client_closes += static_cast<uint64_t>(t->slow_client_closes.Load());
    m.spare_misses += static_cast<uint64_t>(t->spare_misses.Load());
  }
  if (const auto& tls = server.options().tls) {
    m.tls = true;
    m.tls_verify_disabled = !tls->options().verify;
    for (size_t r = 0; r < static_cast<size_t>(common::TlsFailure::kCount); ++r) {
      const auto f = static_cast<common::TlsFailure>(r);
      m.tls_handshake_failures[common::TlsFailureName(f)] = tls->failures(f);
    }
  }
  return m;
}
}  // namespace

void AnalyticsWiring::FollowSentinel(std::function<std::optional<config::UpstreamUrl>()> current,
                                     std::function<engine::SentinelMetrics()> metrics) {
  impl_->current_upstream = std::move(current);
  impl_->sentinel_metrics = std::move(metrics);
}

void AnalyticsWiring::UpstreamMoved() {
  if (impl_->inspector) impl_->inspector->Wake();
}

void AnalyticsWiring::Start(net::Server* server) {
  impl_->engine->SetPoolSource([server] { return PoolMetricsOf(*server); });
  impl_->engine->SetUpstreamUpSource([server] { return server->upstream_up(); });
  if (impl_->sentinel_metrics) impl_->engine->SetSentinelSource(impl_->sentinel_metrics);
  if (!impl_->enabled) {
    spdlog::warn("RESPSCOPE_ANALYTICS=off: commands are forwarded, not observed");
  }
  impl_->engine->Start();
  admin::AdminOptions ao;
  ao.address = impl_->cfg.admin.listen.host;
  ao.port = impl_->cfg.admin.listen.port;
  ao.token = impl_->cfg.admin.token;
  ao.protect_metrics = impl_->cfg.admin.protect_metrics;
  ao.max_connections = impl_->cfg.admin.max_connections;
  ao.header_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(impl_->cfg.admin.header_timeout);
  ao.idle_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(impl_->cfg.admin.idle_timeout);
  impl_->admin = std::make_unique<admin::AdminServer>(ao, *impl_->engine,
                                                      [server] { return server->upstream_up(); });
  inspector::InspectorOptions io;
  io.upstream = impl_->cfg.upstream;
  io.tls = server->options().tls;
  io.current_upstream = impl_->current_upstream;
  io.connect_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(impl_->cfg.limits.connect_timeout);
  io.interval =
      std::chrono::duration_cast<std::chrono::milliseconds>(impl_->cfg.bullmq.inspector_interval);
  impl_->inspector = std::make_unique<inspector::Inspector>(
      io, impl_->engine.get(), impl_->jobs.get(), [server](bool up) { server->SetUpstreamUp(up); });
  if (impl_->jobs) {
    inspector::Inspector* insp = impl_->inspector.get();
    admin::AddJobRoutes(impl_->admin.get(), impl_->jobs.get(), [insp] { return insp->Depths(); });
  }
  if (std::error_code ec = impl_->admin->Start()) {
    throw std::runtime_error("admin server on " + impl_->cfg.admin.listen.ToString() + ": " +
                             ec.message());
  }
  spdlog::info("admin HTTP on {} (/metrics, /api/v1, /healthz, /readyz){}",
               impl_->cfg.admin.listen.ToString(),
               impl_->cfg.admin.token.empty() ? "" : ", bearer token required");
  impl_->inspector->Start();
}

void AnalyticsWiring::Reload() {
  const std::string& path = impl_->cfg.config_file;
  if (path.empty()) {
    spdlog::info("SIGHUP: no configuration file to reload");
    return;
  }
  try {
    config::Config fresh = config::LoadConfigFile(path);
    auto rules = BuildRules(fresh, impl_->hash_key);
    impl_->hub->Publish(rules);
    {
      std::lock_guard lock(impl_->sanitizer_mu);
      impl_->sanitizer_rules = rules;
      impl_->sanitizer.Bind(*rules);
    }
    impl_->engine->SetAlertRules(BuildAlerts(fresh));
    impl_->engine->SetSampleRate(fresh.sanitization.sample_rate);
    spdlog::info(
        "SIGHUP: reloaded key patterns ({} rules), sanitisation and {} alert rules from {}",
        fresh.key_patterns.rules.size(), fresh.alerts.size(), path);
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: {} rejected, previous configuration kept: {}", path, e.what());
  }
}

void AnalyticsWiring::Stop() {
  if (impl_->inspector) impl_->inspector->Stop();
  if (impl_->admin) impl_->admin->Stop();
  if (impl_->engine) impl_->engine->Stop();
  if (impl_->notifier) impl_->notifier->Stop();
}

}  // namespace respscope::app
