#include "analytics/admin/api.h"

#include <algorithm>
#include <boost/json.hpp>
#include <ctime>

#include "analytics/engine/health.h"

namespace respscope::admin {
namespace json = boost::json;
namespace {

json::value Rate(double r) { return r < 0 ? json::value(nullptr) : json::value(r); }
double Ms(double ns) { return ns / 1e6; }

json::object Latency(const recorder::Histogram& h) {
  return {{"count", h.count()},
          {"mean_ms", Ms(h.mean_ns())},
          {"p50_ms", Ms(h.Quantile(0.5))},
          {"p90_ms", Ms(h.Quantile(0.9))},
          {"p99_ms", Ms(h.Quantile(0.99))},
          {"p999_ms", Ms(h.Quantile(0.999))},
          {"max_ms", Ms(static_cast<double>(h.max_ns()))}};
}

std::string IsoUtc(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::object FindingJson(const engine::Finding& f) {
  json::object evidence{{"window_s", f.window_s}};
  for (const auto& [k, v] : f.evidence) evidence[k] = v;
  for (const auto& [k, v] : f.details) evidence[k] = v;
  return json::object{{"kind", f.kind},
                      {"severity", f.severity},
                      {"subject", f.subject},
                      {"since", IsoUtc(f.since_ms)},
                      {"since_ms", f.since_ms},
                      {"evidence", std::move(evidence)},
                      {"recommendation", f.recommendation}};
}

}  // namespace

std::string InsightsJson(const engine::Snapshot& s) {
  json::array findings;
  for (const auto& f : s.insights) findings.push_back(FindingJson(f));
  json::array baselines;
  for (const auto& b : s.baselines) {
    baselines.push_back(json::object{{"scope", b.scope},
                                     {"subject", b.subject},
                                     {"baseline_p95_ms", b.baseline_p95_ms},
                                     {"last_p95_ms", b.last_p95_ms},
                                     {"windows", b.windows},
                                     {"established", b.established},
                                     {"regressed", b.regressed},
                                     {"trend", b.trend}});
  }
  return json::serialize(json::object{
      {"time_ms", s.wall_ms}, {"findings", findings}, {"baselines", baselines}});
}

std::string HealthJson(const engine::Snapshot& s) {
  std::vector<std::string> reasons = s.health_reasons;
  std::string status = engine::HealthStatus(s.health_score, s.upstream_up, s.insights, &reasons);
  json::array r;
  for (const auto& reason : reasons) r.emplace_back(reason);
  json::object counts{{"critical", 0}, {"warning", 0}, {"info", 0}};
  for (const auto& f : s.insights) {
    if (auto* v = counts.if_contains(f.severity)) *v = v->as_int64() + 1;
  }
  return json::serialize(json::object{{"time_ms", s.wall_ms},
                                      {"status", status},
                                      {"score", s.health_score},
                                      {"reasons", r},
                                      {"upstream_up", s.upstream_up},
                                      {"findings", counts}});
}

std::string CorrelationsJson(const engine::Correlation& c) {
  auto rows = [](const std::vector<engine::CorrelationRow>& in, bool timed) {
    json::array out;
    for (const auto& r : in) {
      json::object o{{"name", r.name}, {"per_s", r.rate}, {"baseline_per_s", r.baseline_rate}};
      if (timed) {
        o["time_ms_per_s"] = r.time_ms_per_s;
        o["baseline_time_ms_per_s"] = r.baseline_time_ms_per_s;
        o["extra_time_ms_per_s"] = r.extra;
      } else {
        o["extra_per_s"] = r.extra;
      }
      out.push_back(std::move(o));
    }
    return out;
  };
  json::value spike = nullptr;
  if (c.found) {
    spike = json::object{{"from_ms", c.from_ms},
                         {"to_ms", c.to_ms},
                         {"p99_ms", c.p99_ms},
                         {"baseline_p99_ms", c.baseline_p99_ms},
                         {"baseline_windows", c.baseline_windows}};
  }
  return json::serialize(json::object{{"spike", spike},
                                      {"commands", rows(c.commands, true)},
                                      {"patterns", rows(c.patterns, true)},
                                      {"clients", rows(c.clients, false)},
                                      {"queues", rows(c.queues, false)}});
}

std::string OverviewJson(const engine::Snapshot& s) {
  const auto& e = s.stats.events;
  json::object totals{{"commands", s.commands},
                      {"errors", s.errors},
                      {"hits", s.hits},
                      {"misses", s.misses},
                      {"hit_rate", Rate(s.hits + s.misses ? double(s.hits) / double(s.hits + s.misses) : -1)},
                      {"bytes_in", e.bytes_client_in},
                      {"bytes_out", e.bytes_client_out},
                      {"connections", e.connections_opened - std::min(e.connections_opened, e.connections_closed)},
                      {"connections_total", e.connections_opened},
                      {"rejected_max_clients", e.rejected_max_clients},
                      {"observation_lost", e.observation_lost},
                      {"upstream_connect_errors", e.upstream_connect_errors},
                      {"client_protocol_errors", e.client_protocol_errors},
                      {"upstream_protocol_errors", e.upstream_protocol_errors},
                      {"backpressure_stalls", e.backpressure_stalls},
                      {"accept_fd_exhausted", e.accept_fd_exhausted}};
  const auto& r = s.recent;
  json::object recent{{"window_s", r.window_s},       {"commands_per_s", r.commands_per_s},
                      {"errors_per_s", r.errors_per_s}, {"hit_rate", Rate(r.hit_rate)},
                      {"error_rate", r.error_rate},   {"p50_ms", r.p50_ms},
                      {"p99_ms", r.p99_ms}};
  json::array reasons;
  for (const auto& reason : s.health_reasons) reasons.emplace_back(reason);
  json::array alerts;
  for (const auto& a : s.alerts) {
    alerts.push_back(json::object{{"name", a.name},         {"severity", a.severity},
                                  {"metric", a.metric},     {"selector", a.selector},
                                  {"value", a.value},       {"threshold", a.threshold},
                                  {"since_ms", a.since_ms}});
  }
  json::object errors;
  for (const auto& [prefix, ev] : s.stats.errors) {
    errors[prefix] = json::object{{"count", ev.count},
                                  {"last_text", ev.last_text},
                                  {"last_command", ev.last_command},
                                  {"last_ms", ev.last_wall_ms}};
  }
  json::object out{{"time_ms", s.wall_ms},
                   {"uptime_s", s.uptime_s},
                   {"upstream_up", s.upstream_up},
                   {"health", json::object{{"score", s.health_score},
                                           {"status", s.health_status},
                                           {"reasons", reasons}}},
                   {"totals", totals},
                   {"recent", recent},
                   {"latency", Latency(s.all_latency)},
                   {"alerts", alerts},
                   {"errors", errors},
                   {"slow_threshold_ms", Ms(static_cast<double>(s.slow_threshold_ns))},
                   {"sample_rate", s.sample_rate},
                   {"shards", s.stats.shards}};
  if (s.redis.up || s.redis.used_memory) {
    out["redis"] = json::object{{"up", s.redis.up},
                                {"used_memory", s.redis.used_memory},
                                {"keyspace_hits", s.redis.keyspace_hits},
                                {"keyspace_misses", s.redis.keyspace_misses}};
  }
  return json::serialize(out);
}

std::string CommandsJson(const engine::Snapshot& s) {
  std::vector<const std::pair<const std::string, recorder::CommandView>*> rows;
  for (const auto& row : s.stats.commands) rows.push_back(&row);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) {
    return a->second.ok + a->second.error > b->second.ok + b->second.error;
  });
  json::array arr;
  for (const auto* row : rows) {
    const auto& c = row->second;
    json::object o{{"command", row->first},
                   {"calls", c.ok + c.error},
                   {"ok", c.ok},
                   {"errors", c.error},
                   {"latency", Latency(c.latency)}};
    if (c.blocking.count() > 0) o["blocking_latency"] = Latency(c.blocking);
    arr.push_back(std::move(o));
  }
  return json::serialize(json::object{{"commands", arr}});
}

std::string PatternsJson(const engine::Snapshot& s) {
  std::vector<const std::pair<const std::string, recorder::PatternView>*> rows;
  for (const auto& row : s.stats.patterns) rows.push_back(&row);
  auto total = [](const recorder::PatternView& p) { return p.read + p.write + p.other; };
  std::sort(rows.begin(), rows.end(),
            [&](auto* a, auto* b) { return total(a->second) > total(b->second); });
  json::array arr;
  for (const auto* row : rows) {
    const auto& p = row->second;
    json::array big;
    for (const auto& b : p.big_values) {
      big.push_back(json::object{{"key", b.key}, {"command", b.command}, {"bytes", b.bytes},
                                 {"time_ms", b.wall_ms}});
    }
    arr.push_back(json::object{
        {"pattern", row->first},
        {"commands", total(p)},
        {"read", p.read},
        {"write", p.write},
        {"other", p.other},
        {"hits", p.hits},
        {"misses", p.misses},
        {"hit_rate", Rate(p.hits + p.misses ? double(p.hits) / double(p.hits + p.misses) : -1)},
        {"bytes_in", p.bytes_in},
        {"bytes_out", p.bytes_out},
        {"latency", Latency(p.latency)},
        {"big_values", big}});
  }
  return json::serialize(json::object{
      {"patterns", arr},
      {"note", "bytes are attributed to the pattern of each command's first key"}});
}

std::string HotKeysJson(const engine::Snapshot& s) {
  json::array arr;
  for (const auto& k : s.hot_keys) {
    arr.push_back(json::object{
        {"key", k.key}, {"pattern", k.pattern}, {"count", k.count}, {"error", k.error}});
  }
  return json::serialize(json::object{{"sample_rate", s.sample_rate}, {"keys", arr}});
}

std::string SlowLogJson(const engine::Snapshot& s) {
  json::array arr;
  for (const auto& e : s.slow_log) {
    arr.push_back(json::object{{"time_ms", e.wall_ms},
                               {"duration_ms", Ms(static_cast<double>(e.duration_ns))},
                               {"command", e.command},
                               {"pattern", e.pattern},
                               {"key", e.key},
                               {"client", e.client}});
  }
  return json::serialize(json::object{
      {"threshold_ms", Ms(static_cast<double>(s.slow_threshold_ns))}, {"entries", arr}});
}

std::string ClientsJson(const engine::Snapshot& s) {
  std::vector<const std::pair<const std::string, recorder::ClientView>*> rows;
  for (const auto& row : s.stats.clients) rows.push_back(&row);
  std::sort(rows.begin(), rows.end(),
            [](auto* a, auto* b) { return a->second.commands > b->second.commands; });
  json::array arr;
  for (const auto* row : rows) {
    const recorder::ClientView& c = row->second;
    json::object o{{"client", row->first},
                   {"commands", c.commands},
                   {"errors", c.errors},
                   {"mode", c.mode()},
                   {"commands_by_mode", json::object{{"shared", c.shared},
                                                     {"pinned", c.pinned},
                                                     {"dedicated", c.dedicated()}}}};
    if (!c.pin_reason.empty()) o["pin_reason"] = c.pin_reason;
    arr.push_back(std::move(o));
  }
  return json::serialize(json::object{{"clients", arr}});
}

std::string HistoryJson(const std::vector<engine::HistoryPoint>& points, int step_s) {
  json::array arr;
  for (const auto& p : points) {
    arr.push_back(json::object{{"time_ms", p.wall_ms},
                               {"seconds", p.seconds},
                               {"commands", p.commands},
                               {"errors", p.errors},
                               {"hits", p.hits},
                               {"misses", p.misses},
                               {"commands_per_s", p.commands_per_s()},
                               {"errors_per_s", p.errors_per_s()},
                               {"hit_rate", Rate(p.hit_rate())},
                               {"p50_ms", p.p50_ms},
                               {"p99_ms", p.p99_ms}});
  }
  return json::serialize(json::object{{"step_s", step_s}, {"points", arr}});
}

}  // namespace respscope::admin
