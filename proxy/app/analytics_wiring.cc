#include "proxy/app/analytics_wiring.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "analytics/admin/server.h"
#include "analytics/engine/engine.h"
#include "analytics/jobs/job_tracker.h"
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

engine::DurationHistogram ToEngine(const analytics::jobs::HistogramSnapshot& h) {
  engine::DurationHistogram d;
  d.counts = h.counts;
  d.sum_seconds = h.sum;
  d.count = h.count;
  return d;
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
  std::vector<std::unique_ptr<TeeSink>> tee_sinks;
  std::unique_ptr<analytics::jobs::JobTracker> jobs;
  std::mutex sanitizer_mu;  // the tracker's hook may be called from any IO thread
  patterns::Sanitizer sanitizer;
  std::shared_ptr<const patterns::KeyRules> sanitizer_rules;
  std::mutex depth_mu;
  std::map<std::string, std::map<std::string, int64_t>> depths;  // "prefix:queue" -> state -> n
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<admin::AdminServer> admin;
  net::Server* server = nullptr;

  // Inspector: INFO and upstream reachability over a side channel, every inspector_interval.
  std::thread inspector;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;

  // Queue depth per state for every discovered queue, as BullMQ's getJobCounts() counts them.
  void PollDepths(SideChannel& side) {
    static const std::pair<const char*, const char*> kStates[] = {
        {"waiting", "wait"},          {"active", "active"},       {"paused", "paused"},
        {"delayed", "delayed"},       {"prioritized", "prioritized"},
        {"completed", "completed"},   {"failed", "failed"},
        {"waiting_children", "waiting-children"}};
    std::map<std::string, std::map<std::string, int64_t>> fresh;
    for (const auto& [prefix, queue] : jobs->Queues()) {
      auto& states = fresh[prefix + ":" + queue];
      for (const auto& [state, suffix] : kStates) {
        std::string key = prefix + ":" + queue + ":" + suffix;
        std::string type = side.CommandRaw({"TYPE", key});
        std::string raw;
        if (type.rfind("+list", 0) == 0) {
          raw = side.CommandRaw({"LLEN", key});
        } else if (type.rfind("+zset", 0) == 0) {
          raw = side.CommandRaw({"ZCARD", key});
        } else {
          states.emplace(state, 0);
          continue;
        }
        if (raw.size() > 1 && raw[0] == ':') states[state] += std::strtoll(raw.c_str() + 1, nullptr, 10);
      }
    }
    std::lock_guard lock(depth_mu);
    depths = std::move(fresh);
  }

  void PublishQueues() {
    analytics::jobs::JobsSnapshot snap = jobs->Snapshot();
    std::vector<engine::QueueMetrics> out;
    std::lock_guard lock(depth_mu);
    for (const auto& q : snap.queues) {
      engine::QueueMetrics m;
      m.queue = q.prefix == "bull" ? q.name : q.prefix + ":" + q.name;
      for (size_t i = 0; i < q.transitions.size(); ++i) {
        m.transitions[std::string(analytics::jobs::kTransitionNames[i])] = q.transitions[i];
      }
      m.wait = ToEngine(q.wait_seconds);
      m.process = ToEngine(q.process_seconds);
      if (auto it = depths.find(q.prefix + ":" + q.name); it != depths.end()) m.depth = it->second;
      out.push_back(std::move(m));
    }
    engine->UpdateQueues(std::move(out));
  }

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
      if (jobs) {
        if (info.up) PollDepths(side);
        PublishQueues();
      }
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
  impl_->engine = std::make_unique<engine::Engine>(eo, impl_->shards);
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

std::vector<uint16_t> AnalyticsWiring::CaptureCommands(const commands::CommandTable&) const {
  return {};
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
  return m;
}
}  // namespace

void AnalyticsWiring::Start(net::Server* server) {
  impl_->server = server;
  impl_->engine->SetPoolSource([server] { return PoolMetricsOf(*server); });
  if (!impl_->enabled) spdlog::warn("RESPSCOPE_ANALYTICS=off: commands are forwarded, not observed");
  impl_->engine->Start();
  admin::AdminOptions ao;
  ao.address = impl_->cfg.admin.listen.host;
  ao.port = impl_->cfg.admin.listen.port;
  ao.token = impl_->cfg.admin.token;
  ao.protect_metrics = impl_->cfg.admin.protect_metrics;
  impl_->admin = std::make_unique<admin::AdminServer>(ao, *impl_->engine,
                                                      [server] { return server->upstream_up(); });
  if (impl_->jobs) AddJobRoutes();
  if (std::error_code ec = impl_->admin->Start()) {
    throw std::runtime_error("admin server on " + impl_->cfg.admin.listen.ToString() + ": " +
                             ec.message());
  }
  spdlog::info("admin HTTP on {} (/metrics, /api/v1, /healthz, /readyz){}",
               impl_->cfg.admin.listen.ToString(),
               impl_->cfg.admin.token.empty() ? "" : ", bearer token required");
  impl_->inspector = std::thread([this] { impl_->InspectLoop(); });
}

namespace {
boost::json::object QueueJson(const analytics::jobs::QueueJobsSnapshot& q,
                              const std::map<std::string, int64_t>* depth) {
  boost::json::object o;
  o["prefix"] = q.prefix;
  o["name"] = q.name;
  boost::json::object t;
  for (size_t i = 0; i < q.transitions.size(); ++i) {
    t[std::string(analytics::jobs::kTransitionNames[i])] = q.transitions[i];
  }
  o["transitions"] = std::move(t);
  auto hist = [](const analytics::jobs::HistogramSnapshot& h) {
    boost::json::object j;
    j["count"] = h.count;
    j["mean_seconds"] = h.count ? h.sum / static_cast<double>(h.count) : 0.0;
    return j;
  };
  o["wait"] = hist(q.wait_seconds);
  o["process"] = hist(q.process_seconds);
  o["attempts"] = hist(q.attempts);
  boost::json::object d;
  if (depth) {
    for (const auto& [state, n] : *depth) d[state] = n;
  }
  o["depth"] = std::move(d);
  return o;
}

boost::json::object JobJson(const analytics::jobs::RecentJobSnapshot& j) {
  boost::json::object o;
  o["prefix"] = j.prefix;
  o["queue"] = j.queue;
  o["label"] = j.prefix == "bull" ? j.queue : j.prefix + ":" + j.queue;
  o["id"] = j.id;
  o["name"] = j.name;
  o["state"] = std::string(analytics::jobs::JobStateName(j.state));
  o["added_ms"] = j.added_ms;
  o["processed_ms"] = j.processed_ms;
  o["finished_ms"] = j.finished_ms;
  o["attempts"] = j.attempts;
  o["failed_reason"] = j.failed_reason;
  o["updated_ms"] = j.updated_unix_ms;
  return o;
}
}  // namespace

void AnalyticsWiring::AddJobRoutes() {
  Impl* impl = impl_.get();
  // /api/v1/queues and /api/v1/queues/{name} (name, or prefix:name for other prefixes).
  impl_->admin->AddRoute("/api/v1/queues", [impl](const admin::HttpRequest& req) {
    admin::HttpResponse res;
    analytics::jobs::JobsSnapshot snap = impl->jobs->Snapshot();
    std::string want;
    if (req.path.size() > std::string_view("/api/v1/queues/").size()) {
      want = req.path.substr(std::string_view("/api/v1/queues/").size());
    }
    std::lock_guard lock(impl->depth_mu);
    boost::json::array queues;
    for (const auto& q : snap.queues) {
      std::string full = q.prefix + ":" + q.name;
      if (!want.empty() && want != q.name && want != full) continue;
      auto it = impl->depths.find(full);
      queues.push_back(QueueJson(q, it == impl->depths.end() ? nullptr : &it->second));
    }
    if (!want.empty()) {
      if (queues.empty()) {
        res.status = 404;
        res.body = R"({"error":"no such queue"})";
      } else {
        res.body = boost::json::serialize(queues[0]);
      }
      return res;
    }
    boost::json::object o;
    o["queues"] = std::move(queues);
    res.body = boost::json::serialize(o);
    return res;
  });
  impl_->admin->AddRoute("/api/v1/jobs/recent", [impl](const admin::HttpRequest& req) {
    admin::HttpResponse res;
    analytics::jobs::JobsSnapshot snap = impl->jobs->Snapshot();
    auto q = req.query.find("queue");
    auto st = req.query.find("state");
    boost::json::array jobs;
    for (const auto& j : snap.recent) {
      // queue= takes the metrics label ("name" for prefix bull, else "prefix:name"), the
      // full "prefix:name", or the bare name (any prefix).
      if (q != req.query.end() && q->second != j.queue && q->second != j.prefix + ":" + j.queue) {
        continue;
      }
      if (st != req.query.end() && st->second != analytics::jobs::JobStateName(j.state)) continue;
      jobs.push_back(JobJson(j));
    }
    boost::json::object o;
    o["jobs"] = std::move(jobs);
    res.body = boost::json::serialize(o);
    return res;
  });
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
