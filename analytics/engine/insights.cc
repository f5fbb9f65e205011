#include "analytics/engine/insights.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

namespace respscope::engine {
namespace {

// Commands that read a whole key at once: with a large reply they are the "SCAN-less full scan"
// of a collection (the command table names them in lower case).
const std::set<std::string, std::less<>>& FullReadCommands() {
  static const std::set<std::string, std::less<>> kFull = {
      "smembers",      "hgetall",   "hvals",  "hkeys",  "lrange", "zrange",
      "zrangebyscore", "zrevrange", "xrange", "sunion", "sinter", "sdiff"};
  return kFull;
}

// Reads of one value: a big reply of these is a big value, not a scan.
const std::set<std::string, std::less<>>& SingleReadCommands() {
  static const std::set<std::string, std::less<>> kSingle = {
      "get",   "getex", "getdel", "getrange", "getset", "hget",
      "hmget", "mget",  "lindex", "lpop",     "rpop",   "json.get"};
  return kSingle;
}

uint64_t Delta(uint64_t now, uint64_t base) { return now - std::min(now, base); }

std::string Fmt(const char* format, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), format, a, b, c);
  return buf;
}

std::string Bytes(double b) {
  if (b >= 1024.0 * 1024.0) return Fmt("%.1f MiB", b / (1024.0 * 1024.0));
  if (b >= 1024.0) return Fmt("%.1f KiB", b / 1024.0);
  return Fmt("%.0f bytes", b);
}

uint64_t Transition(const QueueMetrics& q, const char* name) {
  auto it = q.transitions.find(name);
  return it == q.transitions.end() ? 0 : it->second;
}

std::string Trend(const std::deque<double>& p95) {
  if (p95.size() < 6) return "stable";
  auto mean = [&](size_t from) { return (p95[from] + p95[from + 1] + p95[from + 2]) / 3.0; };
  double recent = mean(p95.size() - 3), before = mean(p95.size() - 6);
  if (before <= 0) return "stable";
  if (recent > before * 1.1) return "degrading";
  if (recent < before * 0.9) return "improving";
  return "stable";
}

}  // namespace

int SeverityRank(std::string_view severity) {
  if (severity == "info") return 0;
  if (severity == "warning") return 1;
  if (severity == "error") return 2;
  if (severity == "critical") return 3;
  return -1;
}

Insights::Insights(InsightOptions options) : options_(std::move(options)) {}

Insights::Reading Insights::Read(const Snapshot& s) const {
  Reading r;
  r.wall_ms = s.wall_ms;
  r.commands = s.commands;
  auto calls = [&](std::string_view name) -> uint64_t {
    auto it = s.stats.commands.find(name);
    return it == s.stats.commands.end() ? 0 : it->second.ok + it->second.error;
  };
  r.keys_calls = calls("keys");
  r.flushes = calls("flushall") + calls("flushdb");
  r.connections_opened = s.stats.events.connections_opened;
  for (const auto& [name, p] : s.stats.patterns) {
    PatternReading& pr = r.patterns[name];
    pr = {p.read + p.write + p.other, p.hits, p.misses, p.bytes_in + p.bytes_out,
          p.read, p.bytes_out};
    pr.no_ttl_writes = p.no_ttl_writes;
    pr.ttl_sets = p.ttl_sets;
    pr.deletes = p.deletes;
    pr.no_ttl_keys = p.no_ttl_keys;
    pr.runs = p.runs;
    pr.run_reads = p.run_reads;
    pr.run_gap_ns = p.run_gap_ns;
  }
  for (const auto& k : s.hot_keys) r.hot_keys[k.key] = k.count;
  for (const auto& q : s.queues) {
    QueueReading& qr = r.queues[q.queue];
    qr.added = Transition(q, "added");
    qr.completed = Transition(q, "completed");
    qr.failed = Transition(q, "failed");
    qr.stalled = Transition(q, "stalled");
    qr.process_count = q.process.count;
    qr.process_sum = q.process.sum_seconds;
    if (auto it = q.depth.find("waiting"); it != q.depth.end()) qr.waiting = it->second;
    if (auto it = q.depth.find("completed"); it != q.depth.end()) qr.completed_depth = it->second;
    if (auto it = q.depth.find("failed"); it != q.depth.end()) qr.failed_depth = it->second;
    qr.oldest_runnable_ms = q.oldest_runnable_ms;
    qr.adds_read = q.adds_read;
    qr.adds_keep_completed = q.adds_keep_completed;
    qr.adds_keep_failed = q.adds_keep_failed;
    qr.completed_read = q.completed_read;
    qr.completed_keep_all = q.completed_keep_all;
    qr.failed_read = q.failed_read;
    qr.failed_keep_all = q.failed_keep_all;
  }
  for (const auto& [name, c] : s.stats.clients) r.clients[name] = c.commands;
  for (const auto& name : FullReadCommands()) {
    if (uint64_t n = calls(name)) r.full_reads[name] = n;
  }
  return r;
}

bool Insights::Ignored(std::string_view pattern) const {
  for (const auto& prefix : options_.hot_key_ignore_prefixes) {
    if (pattern.size() > prefix.size() && pattern.compare(0, prefix.size(), prefix) == 0 &&
        pattern[prefix.size()] == ':') {
      return true;
    }
  }
  return false;
}

void Insights::PatternLifecycleFindings(const std::string& name, const PatternReading& p,
                                        const PatternReading& pb,
                                        const recorder::PatternView& view,
                                        std::vector<Finding>& out, double window_s) const {
  // no_ttl_pattern: distinct keys written without an expiry keep growing (net of deletes) and
  // are not expired afterwards (fewer expiries than half the new keys).
  const double new_keys = std::max(0.0, p.no_ttl_keys - pb.no_ttl_keys);
  const uint64_t writes = Delta(p.no_ttl_writes, pb.no_ttl_writes);
  const uint64_t expiries = Delta(p.ttl_sets, pb.ttl_sets);
  const uint64_t deletes = Delta(p.deletes, pb.deletes);
  const double growth = new_keys - double(deletes);
  if (writes > 0 && growth >= double(options_.no_ttl_min_keys) &&
      double(expiries) < 0.5 * new_keys) {
    Finding& f = out.emplace_back();
    f.kind = "no_ttl_pattern";
    f.severity = growth >= 100.0 * double(options_.no_ttl_min_keys) ? "critical" : "warning";
    f.subject = name;
    f.window_s = window_s;
    f.evidence["new_keys_without_ttl"] = std::round(new_keys);
    f.evidence["writes_without_ttl"] = static_cast<double>(writes);
    f.evidence["expiries"] = static_cast<double>(expiries);
    f.evidence["deletes"] = static_cast<double>(deletes);
    f.evidence["keys_without_ttl_since_start"] = std::round(p.no_ttl_keys);
    f.recommendation =
        "Keys of " + name + " are written without an expiry and never expired afterwards, and " +
        Fmt("about %.0f", new_keys) +
        " new ones appeared in the window: they stay in Redis until memory runs out. Give them "
        "a TTL (SET ... EX <seconds>, or EXPIRE after HSET / LPUSH / SADD / ZADD / XADD), or "
        "delete them when they are done with (a cleanup job, XTRIM / LTRIM for streams and "
        "lists).";
  }

  // n_plus_one: runs of sequential single-key reads of the pattern by one connection.
  const uint64_t reads = Delta(p.run_reads, pb.run_reads);
  const uint64_t runs = Delta(p.runs, pb.runs);
  if (reads >= options_.n_plus_one_min_reads && reads > 0 && runs > 0) {
    const uint64_t gaps = reads > runs ? reads - runs : 0;
    const double gap_ms =
        gaps > 0 ? double(Delta(p.run_gap_ns, pb.run_gap_ns)) / double(gaps) / 1e6 : 0.0;
    const std::string command = view.run_command.empty() ? "get" : view.run_command;
    const std::string client = view.run_client.empty() ? "a client" : view.run_client;
    Finding& f = out.emplace_back();
    f.kind = "n_plus_one";
    f.severity = "warning";
    f.subject = name;
    f.window_s = window_s;
    f.evidence["sequential_reads"] = static_cast<double>(reads);
    f.evidence["sequences"] = static_cast<double>(runs);
    f.evidence["reads_per_sequence"] = double(reads) / double(runs);
    f.evidence["avg_gap_ms"] = gap_ms;
    f.evidence["round_trips_saved"] = static_cast<double>(reads - runs);
    f.details["client"] = client;
    f.details["command"] = command;
    const bool strings = command == "get";
    f.recommendation =
        client + " reads " + name + " one key at a time (" + command + "), waiting for each " +
        "reply: " + Fmt("%.0f reads in %.0f sequences", double(reads), double(runs)) +
        " in the window. Fetch each sequence in one round trip -- " +
        (strings ? std::string("MGET") : std::string("a pipeline (or HMGET / MGET)")) +
        " -- which saves " + Fmt("%.0f", double(reads - runs)) + " round trips.";
  }
}

void Insights::JobHistoryFinding(const std::string& name, const QueueReading& q,
                                 const QueueReading& qb, std::vector<Finding>& out,
                                 double window_s) const {
  // unbounded_job_history, per finished set: it holds at least job_history_min_jobs jobs and
  // grew over the window (the inspector's depth; without it, the jobs kept in the window),
  // while most jobs are kept -- the workers' keepJobs over the window says so when any was
  // read, else the options of the jobs added in the window.
  struct Side {
    const char* set;
    const char* option;
    int64_t depth, base_depth;
    uint64_t kept, read, adds_kept, adds_read, kept_total;
  };
  const Side sides[] = {
      {"completed", "removeOnComplete", q.completed_depth, qb.completed_depth,
       Delta(q.completed_keep_all, qb.completed_keep_all),
       Delta(q.completed_read, qb.completed_read),
       Delta(q.adds_keep_completed, qb.adds_keep_completed), Delta(q.adds_read, qb.adds_read),
       q.completed_keep_all},
      {"failed", "removeOnFail", q.failed_depth, qb.failed_depth,
       Delta(q.failed_keep_all, qb.failed_keep_all), Delta(q.failed_read, qb.failed_read),
       Delta(q.adds_keep_failed, qb.adds_keep_failed), Delta(q.adds_read, qb.adds_read),
       q.failed_keep_all},
  };
  Finding f;
  std::string sets, options;
  double worst = 0;
  for (const Side& side : sides) {
    const bool depth_known = side.depth >= 0 && side.base_depth >= 0;
    const double stored = side.depth >= 0 ? double(side.depth) : double(side.kept_total);
    const double growth =
        depth_known ? double(side.depth - side.base_depth) : double(side.kept);
    bool keeps = false;
    if (side.read > 0) {
      keeps = 2 * side.kept >= side.read;
    } else if (side.adds_read > 0) {
      keeps = 2 * side.adds_kept >= side.adds_read;
    }
    if (!keeps || growth <= 0 || stored < double(options_.job_history_min_jobs)) continue;
    const std::string set = side.set;
    f.evidence[set + "_jobs"] = stored;
    f.evidence[set + "_growth"] = growth;
    if (side.read > 0) {
      f.evidence[set + "_kept_share"] = double(side.kept) / double(side.read);
    }
    if (side.adds_read > 0) {
      f.evidence[std::string("added_without_") + side.option + "_share"] =
          double(side.adds_kept) / double(side.adds_read);
    }
    sets += (sets.empty() ? "" : " and ") + set;
    options += (options.empty() ? "" : ", ") +
               std::string(side.set[0] == 'c' ? "removeOnComplete: {count: 1000}"
                                              : "removeOnFail: {age: 7 * 24 * 3600}");
    worst = std::max(worst, stored);
  }
  if (sets.empty()) return;
  f.kind = "unbounded_job_history";
  f.severity = worst >= 100.0 * double(options_.job_history_min_jobs) ? "critical" : "warning";
  f.subject = name;
  f.window_s = window_s;
  f.details["sets"] = sets;
  f.details["suggested"] = "{" + options + "}";
  f.recommendation =
      "Finished jobs of " + name + " are never removed: the " + sets + " set" +
      (sets.find(" and ") != std::string::npos ? "s keep" : " keeps") +
      " growing. Add {" + options +
      "} to the job options (or the queue's defaultJobOptions, or the worker's options) so "
      "that Redis keeps a bounded history.";
  out.push_back(std::move(f));
}

const Insights::Reading* Insights::Base(int64_t now_ms) const {
  // The newest reading at or before the window start; while the history is shorter than the
  // window, the oldest one (a partial window, reported as such in window_s).
  const Reading* base = readings_.empty() ? nullptr : &readings_.front();
  for (const Reading& r : readings_) {
    if (r.wall_ms > now_ms - options_.window_ms) break;
    base = &r;
  }
  return base;
}

void Insights::CloseSeries(Series& series, const recorder::Histogram& now) {
  recorder::Histogram delta = now;
  delta.Subtract(series.at_boundary);
  series.at_boundary = now;
  series.last_calls = delta.count();
  if (delta.count() < options_.regression_min_calls) {
    series.regressed = false;  // no evidence this window
    return;
  }
  double p95 = delta.Quantile(0.95) / 1e6;
  series.last_p95 = p95;
  series.p95.push_back(p95);
  while (series.p95.size() > size_t(std::max(options_.baseline_windows, 6)) * 2) {
    series.p95.pop_front();
  }
  if (series.baseline_n < options_.baseline_windows) {
    series.baseline = (series.baseline * series.baseline_n + p95) / (series.baseline_n + 1);
    ++series.baseline_n;
    series.regressed = false;
    return;
  }
  series.regressed = p95 > series.baseline * (1.0 + options_.regression_ratio) &&
                     p95 - series.baseline >= options_.regression_min_ms;
  if (!series.regressed) {
    // The baseline follows the windows that did not regress (a moving mean over as many
    // windows as it was built from), so a slow drift is absorbed but a step is not.
    double n = std::max(options_.baseline_windows, 1);
    series.baseline = (series.baseline * (n - 1) + p95) / n;
  }
}

void Insights::CloseLatencyWindow(const Snapshot& s) {
  auto close = [&](std::map<std::string, Series, std::less<>>& all, const std::string& name,
                   const recorder::Histogram& h) {
    auto it = all.find(name);
    if (it == all.end()) {
      if (all.size() >= options_.max_latency_subjects) return;
      it = all.emplace(name, Series{}).first;
      it->second.at_boundary = h;  // first seen: its window starts now
      return;
    }
    CloseSeries(it->second, h);
  };
  for (const auto& [name, c] : s.stats.commands) close(command_series_, name, c.latency);
  for (const auto& [name, p] : s.stats.patterns) {
    if (name != "other") close(pattern_series_, name, p.latency);
  }
}

void Insights::LatencyFindings(const std::map<std::string, Series, std::less<>>& all,
                               const char* scope, std::vector<Finding>& out) const {
  for (const auto& [name, series] : all) {
    if (!series.regressed) continue;
    Finding f;
    f.kind = "latency_regression";
    f.subject = name;
    f.severity = series.last_p95 > series.baseline * 2 ? "critical" : "warning";
    f.window_s = options_.window_ms / 1000.0;
    f.evidence["p95_ms"] = series.last_p95;
    f.evidence["baseline_p95_ms"] = series.baseline;
    f.evidence["increase_ratio"] =
        series.baseline > 0 ? series.last_p95 / series.baseline - 1.0 : 0.0;
    f.evidence["calls"] = static_cast<double>(series.last_calls);
    f.evidence["baseline_windows"] = series.baseline_n;
    f.details["scope"] = scope;
    f.details["trend"] = Trend(series.p95);
    f.recommendation =
        std::string("The p95 of this ") + scope + " rose " +
        Fmt("%.0f%%", f.evidence["increase_ratio"] * 100) +
        " above its baseline. Check what changed with it (a deploy, bigger values, a slow "
        "command or script blocking Redis, memory pressure) in the slow log and the history.";
    out.push_back(std::move(f));
  }
}

Insights::Totals Insights::ReadTotals(const Snapshot& s) {
  Totals t;
  for (const auto& [name, c] : s.stats.commands) {
    t.commands[name] = {c.latency.count(), c.latency.sum_ns()};
  }
  for (const auto& [name, p] : s.stats.patterns) {
    t.patterns[name] = {p.latency.count(), p.latency.sum_ns()};
  }
  for (const auto& [name, c] : s.stats.clients) t.clients[name] = c.commands;
  for (const auto& q : s.queues) t.queues[q.queue] = Transition(q, "added");
  return t;
}

void Insights::CloseCorrelationWindow(const Snapshot& s) {
  Totals now = ReadTotals(s);
  if (correlation_from_ms_ >= 0) {
    WindowStats w;
    w.from_ms = correlation_from_ms_;
    w.to_ms = s.wall_ms;
    recorder::Histogram d = s.all_latency;
    d.Subtract(all_at_boundary_);
    w.p99_ms = d.Quantile(0.99) / 1e6;
    auto pairs = [](const auto& cur, const auto& base, auto& out) {
      for (const auto& [name, v] : cur) {
        auto it = base.find(name);
        auto b = it == base.end() ? std::pair<uint64_t, uint64_t>{0, 0} : it->second;
        out[name] = {Delta(v.first, b.first), Delta(v.second, b.second)};
      }
    };
    auto counts = [](const auto& cur, const auto& base, auto& out) {
      for (const auto& [name, v] : cur) {
        auto it = base.find(name);
        out[name] = Delta(v, it == base.end() ? 0 : it->second);
      }
    };
    pairs(now.commands, totals_at_boundary_.commands, w.delta.commands);
    pairs(now.patterns, totals_at_boundary_.patterns, w.delta.patterns);
    counts(now.clients, totals_at_boundary_.clients, w.delta.clients);
    counts(now.queues, totals_at_boundary_.queues, w.delta.queues);
    windows_.push_back(std::move(w));
    while (windows_.size() > 60) windows_.pop_front();
  }
  correlation_from_ms_ = s.wall_ms;
  totals_at_boundary_ = std::move(now);
  all_at_boundary_ = s.all_latency;
}

double Insights::MedianP99Before(size_t i) const {
  std::vector<double> before;
  for (size_t j = i >= 10 ? i - 10 : 0; j < i; ++j) before.push_back(windows_[j].p99_ms);
  if (before.empty()) return 0;
  std::nth_element(before.begin(), before.begin() + before.size() / 2, before.end());
  return before[before.size() / 2];
}

Correlation Insights::Correlate(int64_t at_ms) const {
  Correlation c;
  size_t spike = windows_.size();
  size_t run_begin = 0;  // the first window of the spike (the baseline ends before it)
  if (at_ms > 0) {
    for (size_t i = 0; i < windows_.size(); ++i) {
      if (windows_[i].from_ms < at_ms && at_ms <= windows_[i].to_ms) spike = run_begin = i;
    }
  } else {
    // The latest window whose p99 is more than twice the median of the 10 before it; a spike
    // that spans several windows is one spike: its peak is compared with the windows before
    // it began (not with its own first windows).
    auto is_spike = [&](size_t i) {
      return i >= 3 && windows_[i].p99_ms > 0 && windows_[i].p99_ms > 2 * MedianP99Before(i);
    };
    for (size_t i = windows_.size(); i-- > 3;) {
      if (!is_spike(i)) continue;
      size_t begin = i;
      while (begin > 0 && is_spike(begin - 1)) --begin;
      spike = begin;
      for (size_t j = begin; j <= i; ++j) {
        if (windows_[j].p99_ms > windows_[spike].p99_ms) spike = j;
      }
      run_begin = begin;
      break;
    }
  }
  if (spike == windows_.size() || spike == 0 || run_begin == 0) return c;
  const WindowStats& w = windows_[spike];
  const size_t first = run_begin >= 10 ? run_begin - 10 : 0;
  c.found = true;
  c.from_ms = w.from_ms;
  c.to_ms = w.to_ms;
  c.p99_ms = w.p99_ms;
  c.baseline_windows = static_cast<int>(run_begin - first);
  c.baseline_p99_ms = MedianP99Before(run_begin);
  double base_seconds = 0;
  for (size_t j = first; j < run_begin; ++j) {
    base_seconds += (windows_[j].to_ms - windows_[j].from_ms) / 1000.0;
  }
  const double seconds = std::max(1e-3, (w.to_ms - w.from_ms) / 1000.0);
  base_seconds = std::max(1e-3, base_seconds);
  auto timed = [&](auto member, std::vector<CorrelationRow>& out) {
    std::map<std::string, std::pair<double, double>> base;  // calls, ns
    for (size_t j = first; j < run_begin; ++j) {
      for (const auto& [name, v] : windows_[j].delta.*member) {
        base[name].first += double(v.first);
        base[name].second += double(v.second);
      }
    }
    std::set<std::string> names;
    for (const auto& [name, v] : w.delta.*member) names.insert(name);
    for (const auto& [name, v] : base) names.insert(name);
    for (const auto& name : names) {
      CorrelationRow r;
      r.name = name;
      auto it = (w.delta.*member).find(name);
      if (it != (w.delta.*member).end()) {
        r.rate = it->second.first / seconds;
        r.time_ms_per_s = it->second.second / 1e6 / seconds;
      }
      if (auto b = base.find(name); b != base.end()) {
        r.baseline_rate = b->second.first / base_seconds;
        r.baseline_time_ms_per_s = b->second.second / 1e6 / base_seconds;
      }
      r.extra = r.time_ms_per_s - r.baseline_time_ms_per_s;
      out.push_back(std::move(r));
    }
  };
  auto counted = [&](auto member, std::vector<CorrelationRow>& out) {
    std::map<std::string, double> base;
    for (size_t j = first; j < run_begin; ++j) {
      for (const auto& [name, v] : windows_[j].delta.*member) base[name] += double(v);
    }
    std::set<std::string> names;
    for (const auto& [name, v] : w.delta.*member) names.insert(name);
    for (const auto& [name, v] : base) names.insert(name);
    for (const auto& name : names) {
      CorrelationRow r;
      r.name = name;
      auto it = (w.delta.*member).find(name);
      if (it != (w.delta.*member).end()) r.rate = it->second / seconds;
      if (auto b = base.find(name); b != base.end()) r.baseline_rate = b->second / base_seconds;
      r.extra = r.rate - r.baseline_rate;
      out.push_back(std::move(r));
    }
  };
  timed(&Totals::commands, c.commands);
  timed(&Totals::patterns, c.patterns);
  counted(&Totals::clients, c.clients);
  counted(&Totals::queues, c.queues);
  for (auto* rows : {&c.commands, &c.patterns, &c.clients, &c.queues}) {
    std::stable_sort(
        rows->begin(), rows->end(),
        [](const CorrelationRow& a, const CorrelationRow& b) { return a.extra > b.extra; });
    if (rows->size() > 10) rows->resize(10);
  }
  return c;
}

std::vector<Baseline> Insights::Baselines() const {
  std::vector<Baseline> out;
  auto add = [&](const std::map<std::string, Series, std::less<>>& all, const char* scope) {
    for (const auto& [name, series] : all) {
      if (series.baseline_n == 0) continue;
      out.push_back({scope, name, series.baseline, series.last_p95, series.baseline_n,
                     series.baseline_n >= options_.baseline_windows, series.regressed,
                     Trend(series.p95)});
    }
  };
  add(command_series_, "command");
  add(pattern_series_, "pattern");
  return out;
}

std::vector<Finding> Insights::Evaluate(const Snapshot& s) {
  const int64_t now = s.wall_ms;
  Reading cur = Read(s);
  // Flushes are noticed tick by tick (not over the window) so that the warm-up starts at the
  // flush.
  if (!readings_.empty() && cur.flushes > last_flushes_) last_flush_ms_ = now;
  last_flushes_ = cur.flushes;

  if (boundary_ms_ < 0) {
    boundary_ms_ = now;
    CloseLatencyWindow(s);  // registers the subjects and their starting histograms
    CloseCorrelationWindow(s);
  } else if (now - boundary_ms_ >= options_.window_ms) {
    boundary_ms_ = now;
    CloseLatencyWindow(s);
    CloseCorrelationWindow(s);
  }

  const Reading* base_ptr = Base(now);
  const Reading empty{};
  const Reading& base = base_ptr ? *base_ptr : empty;
  const double window_s = base_ptr ? (now - base.wall_ms) / 1000.0 : 0.0;
  const bool full_window = base_ptr && now - base.wall_ms >= options_.window_ms;
  std::vector<Finding> out;
  auto add = [&](std::string kind, std::string severity, std::string subject) -> Finding& {
    Finding& f = out.emplace_back();
    f.kind = std::move(kind);
    f.severity = std::move(severity);
    f.subject = std::move(subject);
    f.window_s = window_s;
    return f;
  };

  // keys_command: KEYS in application traffic.
  if (uint64_t keys = Delta(cur.keys_calls, base.keys_calls); keys > 0) {
    Finding& f = add("keys_command", "warning", "keys");
    f.evidence["calls"] = static_cast<double>(keys);
    f.details["command"] = "keys";
    f.recommendation =
        "KEYS walks the whole keyspace and blocks Redis while it does. Use SCAN with a MATCH "
        "pattern and a COUNT, or keep an index (a set of the keys) that you read instead.";
  }

  // Per pattern: full reads with large replies, big values, low hit rates, cold caches.
  const bool warm_up = s.uptime_s * 1000 < options_.warmup_ms ||
                       (last_flush_ms_ >= 0 && now - last_flush_ms_ < options_.warmup_ms);
  uint64_t keyed_commands = 0;
  for (const auto& [name, p] : cur.patterns) {
    auto b_it = base.patterns.find(name);
    const PatternReading pb = b_it == base.patterns.end() ? PatternReading{} : b_it->second;
    const uint64_t calls = Delta(p.calls, pb.calls);
    keyed_commands += calls;
    if (name == "other") continue;
    const auto& view = s.stats.patterns.at(name);
    if (!Ignored(name)) PatternLifecycleFindings(name, p, pb, view, out, window_s);
    const uint64_t bytes = Delta(p.bytes, pb.bytes);
    // keys_command (full reads): the pattern's reads reply full_scan_bytes on average and
    // the reads are whole-collection ones: its largest values came from one, or none came from
    // a single-value read while whole-collection reads ran in the window.
    const uint64_t reads = Delta(p.reads, pb.reads);
    bool full_scan = false;
    if (reads >= options_.big_value_min_calls && reads > 0 &&
        double(Delta(p.bytes_out, pb.bytes_out)) / double(reads) >=
            double(options_.full_scan_bytes)) {
      std::string command;
      bool single = false;
      for (const auto& b : view.big_values) {
        if (command.empty() && FullReadCommands().count(b.command)) command = b.command;
        single |= SingleReadCommands().count(b.command) > 0;
      }
      if (command.empty() && !single) {
        uint64_t most = 0;
        for (const auto& [cmd, n] : cur.full_reads) {
          auto bf = base.full_reads.find(cmd);
          uint64_t d = Delta(n, bf == base.full_reads.end() ? 0 : bf->second);
          if (d > most) {
            most = d;
            command = cmd;
          }
        }
      }
      if (!command.empty()) {
        full_scan = true;
        const double per_read = double(Delta(p.bytes_out, pb.bytes_out)) / double(reads);
        Finding& f = add("keys_command", "warning", name);
        f.evidence["reads"] = static_cast<double>(reads);
        f.evidence["reply_bytes_per_read"] = per_read;
        f.details["command"] = command;
        f.recommendation =
            "Whole collections of " + name + " are read at once (" + command + ", " +
            Bytes(per_read) +
            " per read). Page through them with SSCAN / HSCAN / ZSCAN or a bounded range, or "
            "read only the fields you need.";
      }
    }
    if (!full_scan && calls >= options_.big_value_min_calls && calls > 0) {
      const double per_call = double(bytes) / double(calls);
      if (per_call >= double(options_.big_value_bytes)) {
        Finding& f =
            add("big_value", per_call >= 10.0 * options_.big_value_bytes ? "critical" : "warning",
                name);
        f.evidence["calls"] = static_cast<double>(calls);
        f.evidence["bytes_per_call"] = per_call;
        f.evidence["bytes"] = static_cast<double>(bytes);
        if (!view.big_values.empty()) {
          f.evidence["largest_bytes"] = static_cast<double>(view.big_values.front().bytes);
          f.details["command"] = view.big_values.front().command;
        }
        f.recommendation =
            "Calls on " + name + " move " + Bytes(per_call) +
            " each. Split the value (a hash read field by field), compress it, or cache it in "
            "the application; large values block Redis and the network for every other client.";
      }
    }
    const uint64_t hits = Delta(p.hits, pb.hits), misses = Delta(p.misses, pb.misses);
    const uint64_t lookups = hits + misses;
    if (lookups >= options_.min_lookups && lookups > 0) {
      const double rate = double(hits) / double(lookups);
      if (rate < options_.low_hit_rate) {
        if (warm_up) {
          Finding& f = add("cold_cache", "info", name);
          f.evidence["hit_rate"] = rate;
          f.evidence["lookups"] = static_cast<double>(lookups);
          f.evidence["warmup_s"] = options_.warmup_ms / 1000.0;
          f.details["cause"] =
              last_flush_ms_ >= 0 && now - last_flush_ms_ < options_.warmup_ms ? "flush" : "start";
          f.recommendation =
              "The cache of " + name + " is warming up after a " + f.details["cause"] +
              ": misses are expected for a while. If the misses hurt, pre-load the hottest "
              "keys (warm the cache) before taking traffic.";
        } else {
          Finding& f =
              add("low_hit_rate", rate < options_.low_hit_rate / 2 ? "critical" : "warning", name);
          f.evidence["hit_rate"] = rate;
          f.evidence["hits"] = static_cast<double>(hits);
          f.evidence["misses"] = static_cast<double>(misses);
          f.evidence["lookups"] = static_cast<double>(lookups);
          f.recommendation =
              "Most reads of " + name + " miss (" + Fmt("%.0f%%", (1 - rate) * 100) +
              "). Check that the application writes what it reads (same key format), that "
              "TTLs are not shorter than the reuse interval, and that the cache is not evicted "
              "(maxmemory).";
        }
      }
    }
  }

  // hot_key: one key's share of all keyed commands.
  if (keyed_commands >= options_.hot_key_min_commands && keyed_commands > 0) {
    const double scale = s.sample_rate > 0 ? 1.0 / s.sample_rate : 1.0;
    for (const auto& k : s.hot_keys) {
      if (Ignored(k.pattern)) continue;
      auto b_it = base.hot_keys.find(k.key);
      uint64_t count = Delta(k.count, b_it == base.hot_keys.end() ? 0 : b_it->second);
      double share = std::min(1.0, count * scale / double(keyed_commands));
      if (share < options_.hot_key_share) continue;
      Finding& f = add("hot_key", share >= 2 * options_.hot_key_share ? "warning" : "info", k.key);
      f.evidence["share"] = share;
      f.evidence["commands"] = count * scale;
      f.evidence["keyed_commands"] = static_cast<double>(keyed_commands);
      f.details["pattern"] = k.pattern;
      f.recommendation =
          "One key carries " + Fmt("%.0f%%", share * 100) +
          " of the keyed traffic. Cache it in the application for a short time, or spread it "
          "over several keys (key:1..key:N) so that one key (and, in a cluster, one shard) is "
          "not the bottleneck.";
    }
  }

  // Queues.
  for (const auto& [name, q] : cur.queues) {
    auto b_it = base.queues.find(name);
    const QueueReading qb = b_it == base.queues.end() ? QueueReading{} : b_it->second;
    const uint64_t added = Delta(q.added, qb.added);
    const uint64_t completed = Delta(q.completed, qb.completed);
    const uint64_t failed = Delta(q.failed, qb.failed);
    const uint64_t finished = completed + failed;
    if (q.waiting >= options_.backlog_min_waiting) {
      const bool grew = qb.waiting >= 0 && q.waiting > qb.waiting && finished < added;
      const bool idle = full_window && finished == 0;
      if (grew || idle) {
        Finding& f =
            add("queue_backlog",
                q.waiting >= 10 * options_.backlog_min_waiting ? "critical" : "warning", name);
        f.evidence["waiting"] = static_cast<double>(q.waiting);
        if (qb.waiting >= 0) f.evidence["waiting_growth"] = double(q.waiting - qb.waiting);
        f.evidence["added"] = static_cast<double>(added);
        f.evidence["finished"] = static_cast<double>(finished);
        // The oldest known waiting job (jobs module): only while jobs are waiting at all and
        // it is due (a delayed job's time may lie ahead).
        std::string oldest;
        if (q.oldest_runnable_ms >= 0 && q.oldest_runnable_ms <= now) {
          const double age_s = double(now - q.oldest_runnable_ms) / 1000.0;
          f.evidence["oldest_waiting_age_s"] = age_s;
          oldest = " The oldest waiting job has waited " + Fmt("%.0f s", age_s) + ".";
        }
        f.recommendation =
            (finished == 0
                ? "Jobs wait in " + name +
                      " but none finished in the window: check that workers are running and "
                      "connected to this Redis, and that the queue is not paused."
                : "Jobs are added to " + name +
                      " faster than they finish. Add workers or raise their concurrency, or "
                      "make the job cheaper; rate-limit the producer if the backlog is not "
                      "acceptable.") +
            oldest;
      }
    }
    JobHistoryFinding(name, q, qb, out, window_s);
    if (uint64_t stalled = Delta(q.stalled, qb.stalled); stalled > 0) {
      Finding& f = add("stalled_jobs", stalled >= 10 ? "critical" : "warning", name);
      f.evidence["stalled"] = static_cast<double>(stalled);
      f.recommendation =
          "Jobs of " + name +
          " stalled: their worker stopped renewing the lock (it died, or its event loop was "
          "blocked by CPU-bound work). Keep the job asynchronous, run CPU-heavy work in a "
          "sandboxed processor, or raise lockDuration.";
    }
    if (uint64_t n = Delta(q.process_count, qb.process_count); n > 0) {
      const double mean = (q.process_sum - std::min(q.process_sum, qb.process_sum)) / double(n);
      if (mean >= options_.slow_job_s) {
        Finding& f =
            add("slow_jobs", mean >= options_.very_slow_job_s ? "critical" : "warning", name);
        f.evidence["jobs"] = static_cast<double>(n);
        f.evidence["mean_process_s"] = mean;
        f.evidence["threshold_s"] =
            mean >= options_.very_slow_job_s ? options_.very_slow_job_s : options_.slow_job_s;
        f.recommendation =
            "Jobs of " + name + " take " + Fmt("%.1f s", mean) +
            " on average to process. Profile the job, split it into smaller jobs (flows), or "
            "move the slow part out of the job's critical path.";
      }
    }
    if (finished >= options_.min_jobs && finished > 0) {
      const double rate = double(failed) / double(finished);
      if (rate >= options_.job_failure_warning) {
        Finding& f = add("job_failures",
                         rate >= options_.job_failure_critical ? "critical" : "warning", name);
        f.evidence["failure_rate"] = rate;
        f.evidence["failed"] = static_cast<double>(failed);
        f.evidence["completed"] = static_cast<double>(completed);
        f.recommendation =
            Fmt("%.0f%%", rate * 100) + " of the jobs of " + name +
            " failed. Read the failure reasons (/api/v1/jobs/recent?state=failed); retry "
            "transient errors with attempts and a backoff, and fix or discard the others.";
      }
    }
  }

  // connection_churn: connections opened per command.
  if (uint64_t opened = Delta(cur.connections_opened, base.connections_opened);
      opened >= options_.churn_min_connections) {
    const uint64_t commands = Delta(cur.commands, base.commands);
    const double per_command = double(opened) / double(std::max<uint64_t>(commands, 1));
    if (per_command >= options_.churn_connections_per_command) {
      // Connections are counted globally; the subject is the client that sent the most
      // commands in the window (the likeliest source).
      std::string subject = "all clients";
      uint64_t most = 0;
      for (const auto& [client, n] : cur.clients) {
        auto cb = base.clients.find(client);
        uint64_t d = Delta(n, cb == base.clients.end() ? 0 : cb->second);
        if (d > most && client != "other") {
          most = d;
          subject = client;
        }
      }
      Finding& f = add("connection_churn", "warning", subject);
      f.evidence["connections_opened"] = static_cast<double>(opened);
      f.evidence["commands"] = static_cast<double>(commands);
      f.evidence["connections_per_command"] = per_command;
      f.recommendation =
          "Clients open a new connection for (almost) every command. Create one client (or a "
          "small pool) at start-up and reuse it: a connection costs a TCP handshake, often "
          "AUTH and SELECT, and memory on Redis.";
    }
  }

  LatencyFindings(command_series_, "command", out);
  LatencyFindings(pattern_series_, "pattern", out);

  // Keep `since` for findings that stay; forget the others.
  std::map<std::string, int64_t> since;
  for (Finding& f : out) {
    std::string key = f.kind + '\0' + f.subject;
    auto it = since_.find(key);
    f.since_ms = it == since_.end() ? now : it->second;
    since[key] = f.since_ms;
  }
  since_ = std::move(since);
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    int ra = SeverityRank(a.severity), rb = SeverityRank(b.severity);
    if (ra != rb) return ra > rb;
    if (a.kind != b.kind) return a.kind < b.kind;
    return a.subject < b.subject;
  });

  // Sample for the window: at most every window/12 (and every tick for short windows).
  if (readings_.empty() || now - readings_.back().wall_ms >= options_.window_ms / 12) {
    readings_.push_back(std::move(cur));
  }
  while (readings_.size() >= 2 && readings_[1].wall_ms <= now - options_.window_ms) {
    readings_.pop_front();
  }
  return out;
}

}  // namespace respscope::engine
