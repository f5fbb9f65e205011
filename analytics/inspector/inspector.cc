#include "analytics/inspector/inspector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "analytics/engine/engine.h"
#include "analytics/inspector/side_channel.h"
#include "analytics/jobs/job_tracker.h"

namespace respscope::inspector {

namespace {

// "key:value" lines of INFO.
uint64_t InfoField(const std::string& info, std::string_view field) {
  std::string needle = "\n" + std::string(field) + ":";
  size_t p = info.find(needle);
  if (p == std::string::npos) return 0;
  return std::strtoull(info.c_str() + p + needle.size(), nullptr, 10);
}

engine::DurationHistogram ToEngine(const analytics::jobs::HistogramSnapshot& h) {
  engine::DurationHistogram d;
  d.counts = h.counts;
  d.sum_seconds = h.sum;
  d.count = h.count;
  return d;
}

}  // namespace

std::chrono::milliseconds RetryDelay(int failures, std::chrono::milliseconds interval) {
  const std::chrono::milliseconds cap = std::min(kRetryMax, interval);
  std::chrono::milliseconds d = kRetryMin;
  for (int i = 1; i < failures && d < cap; ++i) d *= 2;
  return std::min(d, cap);
}

Inspector::Inspector(InspectorOptions options, engine::Engine* engine,
                     analytics::jobs::JobTracker* jobs, std::function<void(bool up)> on_upstream_up)
    : options_(std::move(options)),
      engine_(engine),
      jobs_(jobs),
      on_upstream_up_(std::move(on_upstream_up)) {
  if (options_.interval < kMinInterval) options_.interval = kMinInterval;
}

Inspector::~Inspector() { Stop(); }

void Inspector::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Inspector::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Inspector::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

QueueDepths Inspector::Depths() const {
  std::lock_guard lock(depth_mu_);
  return depths_;
}

// Queue depth per state for every discovered queue, as BullMQ's getJobCounts() counts them.
bool Inspector::PollDepths(SideChannel& side) {
  static const std::pair<const char*, const char*> kStates[] = {
      {"waiting", "wait"},
      {"active", "active"},
      {"paused", "paused"},
      {"delayed", "delayed"},
      {"prioritized", "prioritized"},
      {"completed", "completed"},
      {"failed", "failed"},
      {"waiting_children", "waiting-children"}};
  QueueDepths fresh;
  for (const auto& [prefix, queue] : jobs_->Queues()) {
    auto& states = fresh[prefix + ":" + queue];
    for (const auto& [state, suffix] : kStates) {
      std::string key = prefix + ":" + queue + ":" + suffix;
      std::string type = side.CommandRaw({"TYPE", key});
      // The connection broke and one reconnect failed: stop here rather than wait a connect
      // timeout per key; the next round retries.
      if (type.empty()) return false;
      std::string raw;
      if (type.rfind("+list", 0) == 0) {
        raw = side.CommandRaw({"LLEN", key});
      } else if (type.rfind("+zset", 0) == 0) {
        raw = side.CommandRaw({"ZCARD", key});
      } else {
        states.emplace(state, 0);
        continue;
      }
      if (raw.size() > 1 && raw[0] == ':') {
        states[state] += std::strtoll(raw.c_str() + 1, nullptr, 10);
      }
    }
  }
  std::lock_guard lock(depth_mu_);
  depths_ = std::move(fresh);
  return true;
}

std::chrono::milliseconds Inspector::AfterAttempt(bool up, const std::string& error) {
  if (up) {
    if (failures_ > 0) {
      spdlog::info("side channel: upstream {} answers again after {} failed attempt(s)",
                   options_.upstream.ToString(), failures_);
    }
    failures_ = 0;
    return options_.interval;
  }
  ++failures_;
  std::chrono::milliseconds next = RetryDelay(failures_, options_.interval);
  if (auto suppressed = down_log_.Allow()) {
    spdlog::warn(
        "side channel: upstream {} not reachable ({}); {} failed attempt(s) in a row, next in "
        "{} ms; INFO figures, queue depths and respscope_upstream_up wait for it ({} similar "
        "lines suppressed)",
        options_.upstream.ToString(), error, failures_, next.count(), *suppressed);
  }
  return next;
}

void Inspector::PublishQueues() {
  analytics::jobs::JobsSnapshot snap = jobs_->Snapshot();
  std::vector<engine::QueueMetrics> out;
  std::lock_guard lock(depth_mu_);
  for (const auto& q : snap.queues) {
    engine::QueueMetrics m;
    m.queue = q.prefix == "bull" ? q.name : q.prefix + ":" + q.name;
    for (size_t i = 0; i < q.transitions.size(); ++i) {
      m.transitions[std::string(analytics::jobs::kTransitionNames[i])] = q.transitions[i];
    }
    m.wait = ToEngine(q.wait_seconds);
    m.process = ToEngine(q.process_seconds);
    const analytics::jobs::JobRetentionCounts& r = q.retention;
    m.adds_read = r.adds_read;
    m.adds_keep_completed = r.adds_keep_completed;
    m.adds_keep_failed = r.adds_keep_failed;
    m.completed_read = r.completed_read;
    m.completed_keep_all = r.completed_keep_all;
    m.failed_read = r.failed_read;
    m.failed_keep_all = r.failed_keep_all;
    m.oldest_runnable_ms = q.oldest_runnable_ms;
    if (auto it = depths_.find(q.prefix + ":" + q.name); it != depths_.end()) m.depth = it->second;
    out.push_back(std::move(m));
  }
  engine_->UpdateQueues(std::move(out));
}

void Inspector::Loop() {
  config::UpstreamUrl target = options_.upstream;
  auto side = std::make_unique<SideChannel>(target, options_.connect_timeout, options_.tls);
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_ = false;
    lock.unlock();
    std::optional<config::UpstreamUrl> current = options_.upstream;
    if (options_.current_upstream) current = options_.current_upstream();
    if (current && !(*current == target)) {
      // The master moved: a new side channel to the new one (the old one is closed).
      target = *current;
      side = std::make_unique<SideChannel>(target, options_.connect_timeout, options_.tls);
    }
    std::string raw = current ? side->CommandRaw({"INFO"}) : std::string();
    std::string error = raw.empty() ? (current ? side->error() : "no master known")
                                    : std::string();
    engine::RedisInfo info;
    // Any reply means Redis is reachable (applications authenticate themselves): an error here
    // (NOAUTH, NOPERM without credentials in the URL) only costs the INFO figures.
    info.up = !raw.empty();
    if (info.up && raw[0] == '-' && !warned_refused_) {
      warned_refused_ = true;
      spdlog::warn("side channel: the upstream refused INFO ({}); memory and keyspace figures "
                   "and queue depths need credentials in the upstream URL",
                   raw.substr(1, std::min<size_t>(raw.find('\r'), 80)));
    }
    if (info.up && raw[0] == '$') {
      info.used_memory = InfoField(raw, "used_memory");
      info.maxmemory = InfoField(raw, "maxmemory");
      info.keyspace_hits = InfoField(raw, "keyspace_hits");
      info.keyspace_misses = InfoField(raw, "keyspace_misses");
    }
    engine_->UpdateRedis(info);
    if (jobs_) {
      if (info.up && raw[0] == '$' && !PollDepths(*side)) {
        info.up = false;
        error = side->error();
      }
      PublishQueues();
    }
    engine_->SetUpstreamUp(info.up);
    if (on_upstream_up_) on_upstream_up_(info.up);
    std::chrono::milliseconds wait = AfterAttempt(info.up, error);
    lock.lock();
    cv_.wait_for(lock, wait, [&] { return stop_ || wake_; });
  }
}

}  // namespace respscope::inspector
