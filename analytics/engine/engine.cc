#include "analytics/engine/engine.h"

#include <algorithm>

#include "analytics/recorder/distinct_sketch.h"

namespace respscope::engine {

Engine::Engine(EngineOptions options, std::vector<std::shared_ptr<recorder::Recorder>> shards)
    : options_(std::move(options)),
      shards_(std::move(shards)),
      started_(std::chrono::steady_clock::now()),
      history_(options_.history),
      insights_(options_.insights),
      sample_rate_(options_.sample_rate) {
  alerts_.SetRules(options_.alerts);
  current_ = std::make_shared<const Snapshot>();
}

Engine::~Engine() { Stop(); }

void Engine::Start() {
  std::lock_guard lock(run_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Engine::Stop() {
  {
    std::lock_guard lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Engine::Run() {
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(run_mu_);
  while (!stop_) {
    lock.unlock();
    Refresh(/*periodic=*/true);
    lock.lock();
    next += options_.interval;
    auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + options_.interval;  // fell behind: skip, do not burst
    run_cv_.wait_until(lock, next, [this] { return stop_; });
  }
}

void Engine::FoldPatterns(recorder::StatsView& stats) {
  // The merged pattern set stays bounded: names are admitted first come (stable across
  // refreshes so that counters never move between series) and the rest fold into "other".
  recorder::PatternView* other = nullptr;
  for (auto it = stats.patterns.begin(); it != stats.patterns.end();) {
    const std::string& name = it->first;
    if (name == "other" || admitted_patterns_.count(name)) {
      ++it;
      continue;
    }
    if (admitted_patterns_.size() < options_.max_patterns) {
      admitted_patterns_.insert(name);
      ++it;
      continue;
    }
    if (other == nullptr) other = &stats.patterns["other"];
    recorder::PatternView& p = it->second;
    other->read += p.read;
    other->write += p.write;
    other->other += p.other;
    other->hits += p.hits;
    other->misses += p.misses;
    other->bytes_in += p.bytes_in;
    other->bytes_out += p.bytes_out;
    other->latency.Merge(p.latency);
    it = stats.patterns.erase(it);
  }
}

void Engine::Build(Snapshot& s) {
  for (const auto& shard : shards_) shard->CollectInto(s.stats);
  FoldPatterns(s.stats);
  // Distinct keys written without an expiry: the shards' sketches were merged by name; the
  // registers are not kept in the snapshot.
  for (auto& [name, p] : s.stats.patterns) {
    if (p.no_ttl_registers.size() == recorder::DistinctSketch::kRegisters) {
      recorder::DistinctSketch::Registers regs;
      std::copy(p.no_ttl_registers.begin(), p.no_ttl_registers.end(), regs.begin());
      p.no_ttl_keys = recorder::DistinctSketch::Estimate(regs);
    }
    std::vector<uint8_t>().swap(p.no_ttl_registers);
  }
  for (const auto& [name, c] : s.stats.commands) {
    s.commands += c.ok + c.error;
    s.errors += c.error;
    s.all_latency.Merge(c.latency);
  }
  for (const auto& [name, p] : s.stats.patterns) {
    s.hits += p.hits;
    s.misses += p.misses;
  }
  // Hot keys: finalise the Space-Saving merge and keep the top K.
  for (auto& [key, hk] : s.stats.hot_keys) {
    s.hot_keys.push_back({key, hk.pattern, hk.count,
                          hk.error + (s.stats.hot_key_min_total - hk.present_min)});
  }
  size_t k = std::min(options_.top_keys, s.hot_keys.size());
  std::partial_sort(s.hot_keys.begin(), s.hot_keys.begin() + k, s.hot_keys.end(),
                    [](const HotKey& a, const HotKey& b) { return a.count > b.count; });
  s.hot_keys.resize(k);
  s.slow_log = std::move(s.stats.slow_log);
  s.stats.slow_log.clear();
  // Shards hand their entries over oldest first: reversed, a stable sort on the millisecond
  // keeps the newest first among entries of the same millisecond too.
  std::reverse(s.slow_log.begin(), s.slow_log.end());
  std::stable_sort(s.slow_log.begin(), s.slow_log.end(),
                   [](const auto& a, const auto& b) { return a.wall_ms > b.wall_ms; });
  if (s.slow_log.size() > options_.slow_log_size) s.slow_log.resize(options_.slow_log_size);
}

std::shared_ptr<const Snapshot> Engine::Refresh(bool periodic) {
  std::lock_guard lock(mu_);
  auto s = std::make_shared<Snapshot>();
  s->wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  s->uptime_s = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::steady_clock::now() - started_)
                    .count();
  s->sequence = ++sequence_;
  s->slow_threshold_ns = options_.slow_threshold_ns;
  s->sample_rate = sample_rate_;
  s->upstream_up = upstream_up_source_ ? upstream_up_source_() : upstream_up_;
  s->redis = redis_;
  s->queues = queues_;
  if (pool_source_) {
    s->pool = pool_source_();
    metrics_.UpdatePool(s->pool);
  }
  if (sentinel_source_) metrics_.UpdateSentinel(sentinel_source_());
  Build(*s);
  if (periodic) window_.Observe(*s);
  s->recent = window_.Compute(*s);
  s->health_score = ComputeHealth(s->recent, options_.slow_threshold_ns / 1e6, s->upstream_up,
                                  &s->health_reasons);
  if (periodic) {
    history_.Observe(*s);
    if (options_.insights.enabled) {
      findings_ = insights_.Evaluate(*s);
      baselines_ = insights_.Baselines();
    }
    s->insights = findings_;  // insight alerts read them
    std::vector<FiringAlert> firing = alerts_.Evaluate(*s, window_);
    std::vector<AlertEvent> events = AlertTransitions(firing_, firing, s->wall_ms);
    firing_ = std::move(firing);
    if (!events.empty() && alert_listener_) alert_listener_(events);
  }
  s->insights = findings_;
  s->baselines = baselines_;
  s->health_status = HealthStatus(s->health_score, s->upstream_up, s->insights, nullptr);
  s->alerts = firing_;
  std::vector<std::pair<std::string, std::string>> rules;
  for (const auto& r : alerts_.rules()) rules.emplace_back(r.name, r.severity);
  metrics_.Update(*s, rules);
  std::shared_ptr<const Snapshot> published = std::move(s);
  {
    std::lock_guard cl(current_mu_);
    current_ = published;
  }
  return published;
}

std::shared_ptr<const Snapshot> Engine::Current() const {
  std::lock_guard lock(current_mu_);
  return current_;
}

std::string Engine::ScrapeMetrics() {
  Refresh(false);
  return metrics_.Render();
}

std::vector<HistoryPoint> Engine::QueryHistory(int64_t from_ms, int64_t to_ms, int step_s) const {
  std::lock_guard lock(mu_);
  return history_.Query(from_ms, to_ms, step_s);
}

Correlation Engine::Correlate(int64_t at_ms) const {
  std::lock_guard lock(mu_);
  return insights_.Correlate(at_ms);
}

void Engine::SetPoolSource(std::function<PoolMetrics()> source) {
  std::lock_guard lock(mu_);
  pool_source_ = std::move(source);
}

void Engine::SetSentinelSource(std::function<SentinelMetrics()> source) {
  std::lock_guard lock(mu_);
  sentinel_source_ = std::move(source);
}

void Engine::UpdateQueues(std::vector<QueueMetrics> queues) {
  metrics_.UpdateQueues(queues);
  std::lock_guard lock(mu_);
  queues_ = std::move(queues);
}

void Engine::UpdateRedis(RedisInfo info) {
  metrics_.UpdateRedis(info);
  std::lock_guard lock(mu_);
  redis_ = info;
}

void Engine::SetUpstreamUp(bool up) {
  std::lock_guard lock(mu_);
  upstream_up_ = up;
}

void Engine::SetUpstreamUpSource(std::function<bool()> source) {
  std::lock_guard lock(mu_);
  upstream_up_source_ = std::move(source);
}

void Engine::SetAlertRules(std::vector<AlertRule> rules) {
  std::lock_guard lock(mu_);
  alerts_.SetRules(std::move(rules));
}

void Engine::SetAlertListener(std::function<void(const std::vector<AlertEvent>&)> listener) {
  std::lock_guard lock(mu_);
  alert_listener_ = std::move(listener);
}

void Engine::SetSampleRate(double rate) {
  std::lock_guard lock(mu_);
  sample_rate_ = rate;
}

}  // namespace respscope::engine
