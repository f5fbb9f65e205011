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
void Inspector::PollDepths(SideChannel& side) {
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
    if (auto it = depths_.find(q.prefix + ":" + q.name); it != depths_.end()) m.depth = it->second;
    out.push_back(std::move(m));
  }
  engine_->UpdateQueues(std::move(out));
}

void Inspector::Loop() {
  config::UpstreamUrl target = options_.upstream;
  auto side = std::make_unique<SideChannel>(target, options_.connect_timeout);
  std::unique_lock lock(mu_);
  while (!stop_) {
    wake_ = false;
    lock.unlock();
    std::optional<config::UpstreamUrl> current = options_.upstream;
    if (options_.current_upstream) current = options_.current_upstream();
    if (current && !(*current == target)) {
      // The master moved: a new side channel to the new one (the old one is closed).
      target = *current;
      side = std::make_unique<SideChannel>(target, options_.connect_timeout);
    }
    std::string raw = current ? side->CommandRaw({"INFO"}) : std::string();
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
    engine_->SetUpstreamUp(info.up);
    if (jobs_) {
      if (info.up && raw[0] == '$') PollDepths(*side);
      PublishQueues();
    }
    if (on_upstream_up_) on_upstream_up_(info.up);
    lock.lock();
    cv_.wait_for(lock, options_.interval, [&] { return stop_ || wake_; });
  }
}

}  // namespace respscope::inspector
