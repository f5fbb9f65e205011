#include "analytics/engine/history.h"

#include <algorithm>

#include "analytics/jobs/job_types.h"
#include "analytics/patterns/glob.h"

namespace respscope::engine {

namespace jobs_bounds = respscope::analytics::jobs;

const std::vector<double>& JobDurationBounds() {
  // The job tracker's own bounds, so that its histograms are exported bucket for bucket.
  static const std::vector<double> kBounds(jobs_bounds::kJobDurationBucketsSeconds.begin(),
                                           jobs_bounds::kJobDurationBucketsSeconds.end());
  return kBounds;
}

void DurationHistogram::Observe(double seconds) {
  const auto& b = JobDurationBounds();
  if (counts.size() != b.size() + 1) counts.assign(b.size() + 1, 0);
  size_t i = std::lower_bound(b.begin(), b.end(), seconds) - b.begin();
  ++counts[i];
  ++count;
  sum_seconds += seconds;
}

History::History(HistoryOptions options) : options_(options) {
  fine_.step_s = options.fine_step_s;
  fine_.capacity = static_cast<size_t>(options.fine_points);
  coarse_.step_s = options.coarse_step_s;
  coarse_.capacity = static_cast<size_t>(options.coarse_points);
}

void History::Observe(const Snapshot& s) {
  ObserveLevel(fine_, s);
  ObserveLevel(coarse_, s);
}

void History::ObserveLevel(Level& level, const Snapshot& s) {
  if (level.has_base && s.wall_ms - level.base_ms < int64_t{level.step_s} * 1000) return;
  if (level.has_base) {
    HistoryPoint p;
    p.wall_ms = s.wall_ms;
    p.seconds = (s.wall_ms - level.base_ms) / 1000.0;
    p.commands = s.commands - std::min(s.commands, level.commands);
    p.errors = s.errors - std::min(s.errors, level.errors);
    p.hits = s.hits - std::min(s.hits, level.hits);
    p.misses = s.misses - std::min(s.misses, level.misses);
    recorder::Histogram delta = s.all_latency;
    delta.Subtract(level.latency);
    p.p50_ms = delta.Quantile(0.5) / 1e6;
    p.p99_ms = delta.Quantile(0.99) / 1e6;
    level.points.push_back(p);
    while (level.points.size() > level.capacity) level.points.pop_front();
  }
  level.has_base = true;
  level.base_ms = s.wall_ms;
  level.commands = s.commands;
  level.errors = s.errors;
  level.hits = s.hits;
  level.misses = s.misses;
  level.latency = s.all_latency;
}

std::vector<HistoryPoint> History::Query(int64_t from_ms, int64_t to_ms, int step_s) const {
  const Level* level = &coarse_;
  if (step_s < coarse_.step_s &&
      (fine_.points.empty() || fine_.points.front().wall_ms - fine_.step_s * 1000 <= from_ms ||
       fine_.points.size() < fine_.capacity)) {
    level = &fine_;
  }
  std::vector<HistoryPoint> out;
  const int64_t step_ms = std::max<int64_t>(int64_t{step_s} * 1000, int64_t{level->step_s} * 1000);
  for (const HistoryPoint& p : level->points) {
    if (p.wall_ms < from_ms || p.wall_ms > to_ms) continue;
    // Group into buckets of step_ms aligned to from_ms.
    if (!out.empty() && (p.wall_ms - from_ms - 1) / step_ms == (out.back().wall_ms - from_ms - 1) / step_ms &&
        step_ms > int64_t{level->step_s} * 1000) {
      HistoryPoint& b = out.back();
      double p50_weight = double(b.commands) + double(p.commands);
      b.p50_ms = p50_weight > 0 ? (b.p50_ms * b.commands + p.p50_ms * p.commands) / p50_weight : 0;
      b.p99_ms = std::max(b.p99_ms, p.p99_ms);
      b.commands += p.commands;
      b.errors += p.errors;
      b.hits += p.hits;
      b.misses += p.misses;
      b.seconds += p.seconds;
      b.wall_ms = p.wall_ms;
      continue;
    }
    out.push_back(p);
  }
  return out;
}

void RecentWindow::Observe(const Snapshot& s) {
  Sample sample;
  sample.wall_ms = s.wall_ms;
  sample.commands = s.commands;
  sample.errors = s.errors;
  sample.latency = s.all_latency;
  for (const auto& [name, p] : s.stats.patterns) sample.lookups[name] = {p.hits, p.misses};
  for (const auto& q : s.queues) {
    auto get = [&](const char* t) {
      auto it = q.transitions.find(t);
      return it == q.transitions.end() ? uint64_t{0} : it->second;
    };
    sample.jobs[q.queue] = {get("completed"), get("failed"), get("stalled"), q.process.count,
                            q.process.sum_seconds};
  }
  samples_.push_back(std::move(sample));
  // Keep exactly one sample at or before the window start as the base.
  while (samples_.size() >= 2 && samples_[1].wall_ms <= s.wall_ms - int64_t{span_s_} * 1000) {
    samples_.pop_front();
  }
}

Rates RecentWindow::Compute(const Snapshot& now) const {
  Rates r;
  const Sample* base = Oldest();
  uint64_t base_commands = base ? base->commands : 0, base_errors = base ? base->errors : 0;
  r.window_s = base ? (now.wall_ms - base->wall_ms) / 1000.0 : 0;
  r.commands = now.commands - std::min(now.commands, base_commands);
  r.errors = now.errors - std::min(now.errors, base_errors);
  const auto [hits, misses] = LookupsSince(now, nullptr);
  r.hits = hits;
  r.misses = misses;
  r.hit_rate = hits + misses ? double(hits) / double(hits + misses) : -1;
  r.error_rate = r.commands ? double(r.errors) / double(r.commands) : 0;
  if (r.window_s > 0) {
    r.commands_per_s = r.commands / r.window_s;
    r.errors_per_s = r.errors / r.window_s;
  }
  recorder::Histogram delta = now.all_latency;
  if (base) delta.Subtract(base->latency);
  r.p50_ms = delta.Quantile(0.5) / 1e6;
  r.p99_ms = delta.Quantile(0.99) / 1e6;
  return r;
}

std::pair<uint64_t, uint64_t> RecentWindow::LookupsSince(const Snapshot& now,
                                                         const std::string* glob) const {
  const Sample* base = Oldest();
  uint64_t hits = 0, misses = 0;
  for (const auto& [name, p] : now.stats.patterns) {
    if (glob && !patterns::GlobMatch(*glob, name)) continue;
    uint64_t bh = 0, bm = 0;
    if (base) {
      if (auto it = base->lookups.find(name); it != base->lookups.end()) {
        bh = it->second.first;
        bm = it->second.second;
      }
    }
    hits += p.hits - std::min(p.hits, bh);
    misses += p.misses - std::min(p.misses, bm);
  }
  return {hits, misses};
}

double RecentWindow::PatternHitRate(const Snapshot& now, const std::string& glob) const {
  const auto [hits, misses] = LookupsSince(now, &glob);
  return hits + misses ? double(hits) / double(hits + misses) : -1;
}

bool RecentWindow::JobsSince(const Snapshot& now, const std::string& glob,
                             Sample::Jobs* out) const {
  const Sample* base = Oldest();
  bool any = false;
  for (const auto& q : now.queues) {
    if (!patterns::GlobMatch(glob, q.queue)) continue;
    any = true;
    auto get = [&](const char* t) {
      auto it = q.transitions.find(t);
      return it == q.transitions.end() ? uint64_t{0} : it->second;
    };
    Sample::Jobs b;
    if (base) {
      if (auto it = base->jobs.find(q.queue); it != base->jobs.end()) b = it->second;
    }
    out->completed += get("completed") - std::min(get("completed"), b.completed);
    out->failed += get("failed") - std::min(get("failed"), b.failed);
    out->stalled += get("stalled") - std::min(get("stalled"), b.stalled);
    out->processed += q.process.count - std::min(q.process.count, b.processed);
    out->process_seconds += std::max(0.0, q.process.sum_seconds - b.process_seconds);
  }
  return any;
}

double RecentWindow::JobFailureRate(const Snapshot& now, const std::string& glob) const {
  Sample::Jobs d;
  JobsSince(now, glob, &d);
  return d.completed + d.failed ? double(d.failed) / double(d.completed + d.failed) : -1;
}

double RecentWindow::StalledJobs(const Snapshot& now, const std::string& glob) const {
  Sample::Jobs d;
  return JobsSince(now, glob, &d) ? static_cast<double>(d.stalled) : -1;
}

double RecentWindow::MeanProcessSeconds(const Snapshot& now, const std::string& glob) const {
  Sample::Jobs d;
  JobsSince(now, glob, &d);
  return d.processed ? d.process_seconds / double(d.processed) : -1;
}

}  // namespace respscope::engine
