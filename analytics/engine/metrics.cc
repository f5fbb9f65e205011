#include "analytics/engine/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <set>

#ifndef RESPSCOPE_VERSION
#define RESPSCOPE_VERSION "dev"
#endif

namespace respscope::engine {

const std::vector<double>& CommandBounds() {
  static const std::vector<double> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                              0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                              1,      2.5,     5,      10};
  return kBounds;
}

const std::vector<double>& BlockingBounds() {
  static const std::vector<double> kBounds = {0.001, 0.01, 0.1, 0.5, 1,  2.5,
                                              5,     10,   30,  60,  300};
  return kBounds;
}

namespace {

// Fine bucket -> index of the `le` bucket (bounds.size() is +Inf), by the fine midpoint.
std::vector<uint16_t> FineToLe(const std::vector<double>& bounds) {
  std::vector<uint16_t> map(recorder::kHistBuckets);
  for (int i = 0; i < recorder::kHistBuckets; ++i) {
    double mid_s = recorder::BucketMidNs(i) / 1e9;
    map[i] = static_cast<uint16_t>(std::lower_bound(bounds.begin(), bounds.end(), mid_s) -
                                   bounds.begin());
  }
  return map;
}

const std::vector<uint16_t>& MapFor(const std::vector<double>& bounds) {
  static const std::vector<uint16_t> kCommand = FineToLe(CommandBounds());
  static const std::vector<uint16_t> kBlocking = FineToLe(BlockingBounds());
  return &bounds == &BlockingBounds() ? kBlocking : kCommand;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& r = *registry_;
  commands_total_ = &BuildCounter().Name("respscope_commands_total")
                         .Help("Commands observed, by command and result").Register(r);
  command_duration_ = &BuildHistogram().Name("respscope_command_duration_seconds")
                           .Help("Command latency (request read to reply read), blocking "
                                 "commands excluded").Register(r);
  blocking_duration_ = &BuildHistogram().Name("respscope_blocking_command_duration_seconds")
                            .Help("Latency of blocking commands").Register(r);
  cache_lookups_ = &BuildCounter().Name("respscope_cache_lookups_total")
                        .Help("Cache lookups per key pattern, by hit or miss").Register(r);
  pattern_commands_ = &BuildCounter().Name("respscope_pattern_commands_total")
                           .Help("Commands touching a key pattern, by kind").Register(r);
  pattern_bytes_ = &BuildCounter().Name("respscope_pattern_bytes_total")
                        .Help("Request (in) and reply (out) bytes, attributed to the pattern of "
                              "the command's first key").Register(r);
  pattern_duration_ = &BuildHistogram().Name("respscope_pattern_duration_seconds")
                           .Help("Latency of non-blocking commands per key pattern").Register(r);
  client_connections_ = &BuildGauge().Name("respscope_client_connections")
                             .Help("Open client connections").Register(r);
  client_connections_total_ = &BuildCounter().Name("respscope_client_connections_total")
                                   .Help("Accepted client connections").Register(r);
  client_rejected_ = &BuildCounter().Name("respscope_client_connections_rejected_total")
                         .Help("Client connections refused at limits.max_clients (or the "
                               "lower count the descriptor limit allows)").Register(r);
  admin_connections_ = &BuildGauge().Name("respscope_admin_connections")
                            .Help("Open admin HTTP connections").Register(r);
  admin_rejected_ = &BuildCounter().Name("respscope_admin_connections_rejected_total")
                         .Help("Admin connections closed at admin.max_connections: the oldest "
                               "idle one to admit a new one (idle_evicted), or the new one "
                               "(refused)").Register(r);
  admin_timeouts_ = &BuildCounter().Name("respscope_admin_request_timeouts_total")
                         .Help("Admin connections closed for not sending a complete request "
                               "within admin.header_timeout / admin.idle_timeout").Register(r);
  accept_fd_exhausted_ = &BuildCounter().Name("respscope_accept_fd_exhausted_total")
                              .Help("accept() failures for want of a file descriptor (EMFILE, "
                                    "ENFILE), by listener").Register(r);
  bytes_total_ = &BuildCounter().Name("respscope_bytes_total")
                      .Help("Bytes between clients and the proxy").Register(r);
  protocol_errors_ = &BuildCounter().Name("respscope_protocol_errors_total")
                          .Help("RESP protocol errors by side").Register(r);
  upstream_up_ = &BuildGauge().Name("respscope_upstream_up")
                      .Help("1 when the upstream Redis is reachable").Register(r);
  upstream_connect_errors_ = &BuildCounter().Name("respscope_upstream_connect_errors_total")
                                  .Help("Failed upstream connection attempts").Register(r);
  upstream_connections_ = &BuildGauge().Name("respscope_upstream_connections")
                              .Help("Upstream connections of the data plane by kind: shared, "
                                    "spare, pinned (upstream_pooling: auto), dedicated")
                              .Register(r);
  tls_handshake_failures_ =
      &BuildCounter().Name("respscope_upstream_tls_handshake_failures_total")
           .Help("Failed TLS handshakes with the upstream (data plane and side channel), by "
                 "reason").Register(r);
  tls_verify_disabled_ = &BuildGauge().Name("respscope_upstream_tls_verify_disabled")
                              .Help("1 when upstream_tls.verify is false: the upstream's "
                                    "certificate is not checked").Register(r);
  upstream_pins_ = &BuildCounter().Name("respscope_upstream_pins_total")
                        .Help("Clients moved from the shared upstream connections to their own, "
                              "by the reason").Register(r);
  shared_write_commands_ = &BuildHistogram().Name("respscope_shared_write_commands")
                                .Help("Commands carried by one write on a shared upstream "
                                      "connection").Register(r);
  shared_drops_ = &BuildCounter().Name("respscope_shared_connection_drops_total")
                       .Help("Shared upstream connections lost with replies in flight (their "
                             "clients are closed)").Register(r);
  slow_client_closes_ = &BuildCounter().Name("respscope_client_output_limit_closes_total")
                             .Help("Clients closed because their unread replies reached "
                                   "limits.max_inflight_bytes_per_client").Register(r);
  spare_misses_ = &BuildCounter().Name("respscope_upstream_spare_misses_total")
                       .Help("Pins that found no warm spare and waited for a connect")
                       .Register(r);
  sentinel_master_changes_ = &BuildCounter().Name("respscope_sentinel_master_changes_total")
                                  .Help("Failovers followed: the Sentinel master moved to "
                                        "another address").Register(r);
  sentinel_resolve_failures_ = &BuildCounter().Name("respscope_sentinel_resolve_failures_total")
                                    .Help("Rounds of questions to the sentinels that found no "
                                          "working master").Register(r);
  sentinels_reachable_ = &BuildGauge().Name("respscope_sentinels_reachable")
                              .Help("Sentinels that answered the last round").Register(r);
  sentinels_configured_ = &BuildGauge().Name("respscope_sentinels_configured")
                               .Help("Sentinels in the upstream URL").Register(r);
  upstream_master_ = &BuildGauge().Name("respscope_upstream_master")
                          .Help("1 for the address of the current Sentinel master (no series "
                                "while none is known)").Register(r);
  bullmq_jobs_ = &BuildCounter().Name("respscope_bullmq_jobs_total")
                      .Help("BullMQ/Bull job transitions per queue").Register(r);
  bullmq_wait_ = &BuildHistogram().Name("respscope_bullmq_job_wait_seconds")
                      .Help("Time from added to active per queue").Register(r);
  bullmq_process_ = &BuildHistogram().Name("respscope_bullmq_job_process_seconds")
                         .Help("Time from active to completed or failed per queue").Register(r);
  bullmq_queue_jobs_ = &BuildGauge().Name("respscope_bullmq_queue_jobs")
                            .Help("Jobs per queue and state (side channel)").Register(r);
  redis_used_memory_ = &BuildGauge().Name("respscope_redis_used_memory_bytes")
                            .Help("INFO used_memory of the upstream").Register(r);
  redis_hits_ = &BuildCounter().Name("respscope_redis_keyspace_hits_total")
                     .Help("INFO keyspace_hits of the upstream").Register(r);
  redis_misses_ = &BuildCounter().Name("respscope_redis_keyspace_misses_total")
                       .Help("INFO keyspace_misses of the upstream").Register(r);
  health_score_ = &BuildGauge().Name("respscope_health_score")
                       .Help("Health score 0-100").Register(r);
  alerts_firing_ = &BuildGauge().Name("respscope_alerts_firing")
                        .Help("1 while an alert fires").Register(r);
  build_info_ = &BuildGauge().Name("respscope_build_info")
                     .Help("Build information").Register(r);
  build_info_->Add({{"version", RESPSCOPE_VERSION}}).Set(1);
  insights_ = &BuildGauge().Name("respscope_insights")
                   .Help("Current findings of /api/v1/insights by kind and severity").Register(r);
  health_status_ = &BuildGauge().Name("respscope_health_status")
                        .Help("1 for the current health status (healthy, degraded, unhealthy)")
                        .Register(r);
  notifications_ = &BuildCounter().Name("respscope_notifications_total")
                        .Help("Alert notifications by channel and result (sent, failed after "
                              "every retry, dropped on a full queue)").Register(r);
  notification_retries_ = &BuildCounter().Name("respscope_notification_retries_total")
                               .Help("Notification attempts after the first, by channel")
                               .Register(r);
  // Series that exist from the start, so dashboards and rules see zeros, not gaps.
  client_connections_->Add({});
  client_connections_total_->Add({});
  client_rejected_->Add({});
  admin_connections_->Add({});
  for (const char* reason : {"idle_evicted", "refused"}) admin_rejected_->Add({{"reason", reason}});
  admin_timeouts_->Add({});
  for (const char* l : {"client", "admin"}) accept_fd_exhausted_->Add({{"listener", l}});
  for (const char* d : {"client_in", "client_out"}) bytes_total_->Add({{"direction", d}});
  for (const char* s : {"client", "upstream"}) protocol_errors_->Add({{"side", s}});
  upstream_up_->Add({});
  upstream_connect_errors_->Add({});
  health_score_->Add({}).Set(100);
}

Metrics::~Metrics() = default;

std::string Metrics::Key(const void* fam, const Labels& labels) {
  std::string key = std::to_string(reinterpret_cast<uintptr_t>(fam));
  for (const auto& [k, v] : labels) {
    key.push_back('\x1f');
    key.append(k);
    key.push_back('=');
    key.append(v);
  }
  return key;
}

void Metrics::Count(prometheus::Family<prometheus::Counter>& fam, const Labels& labels,
                    uint64_t value, bool reset_on_decrease) {
  CounterSeries& s = counters_[Key(&fam, labels)];
  if (s.counter == nullptr) s.counter = &fam.Add(labels);
  if (value >= s.last) {
    s.counter->Increment(static_cast<double>(value - s.last));
  } else if (reset_on_decrease) {
    s.counter->Increment(static_cast<double>(value));  // the source restarted from zero
  }
  s.last = value;
}

void Metrics::Set(prometheus::Family<prometheus::Gauge>& fam, const Labels& labels, double value) {
  prometheus::Gauge*& g = gauges_[Key(&fam, labels)];
  if (g == nullptr) g = &fam.Add(labels);
  g->Set(value);
}

void Metrics::FeedCoarse(prometheus::Family<prometheus::Histogram>& fam, const Labels& labels,
                         const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                         double sum) {
  HistSeries& s = hists_[Key(&fam, labels)];
  if (s.hist == nullptr) {
    s.hist = &fam.Add(labels, bounds);
    s.last.assign(bounds.size() + 1, 0);
  }
  std::vector<double> inc(bounds.size() + 1, 0.0);
  bool any = false;
  for (size_t i = 0; i < inc.size() && i < counts.size(); ++i) {
    if (counts[i] > s.last[i]) {
      inc[i] = static_cast<double>(counts[i] - s.last[i]);
      any = true;
    }
    s.last[i] = std::max(s.last[i], counts[i]);
  }
  double dsum = std::max(0.0, sum - s.last_sum);
  s.last_sum = std::max(s.last_sum, sum);
  if (any || dsum > 0) s.hist->ObserveMultiple(inc, dsum);
}

void Metrics::FeedFine(prometheus::Family<prometheus::Histogram>& fam, const Labels& labels,
                       const std::vector<double>& bounds, const recorder::Histogram& cumulative) {
  const std::vector<uint16_t>& map = MapFor(bounds);
  std::vector<uint64_t> le(bounds.size() + 1, 0);
  const auto& counts = cumulative.counts();
  for (int i = 0; i < recorder::kHistBuckets; ++i) le[map[i]] += counts[i];
  FeedCoarse(fam, labels, bounds, le, static_cast<double>(cumulative.sum_ns()) / 1e9);
}

void Metrics::Update(const Snapshot& s,
                     const std::vector<std::pair<std::string, std::string>>& alert_rules) {
  std::lock_guard lock(mu_);
  for (const auto& [name, c] : s.stats.commands) {
    Count(*commands_total_, {{"command", name}, {"result", "ok"}}, c.ok);
    Count(*commands_total_, {{"command", name}, {"result", "error"}}, c.error);
    if (c.latency.count() > 0) FeedFine(*command_duration_, {{"command", name}}, CommandBounds(), c.latency);
    if (c.blocking.count() > 0) {
      FeedFine(*blocking_duration_, {{"command", name}}, BlockingBounds(), c.blocking);
    }
  }
  for (const auto& [name, p] : s.stats.patterns) {
    Count(*cache_lookups_, {{"pattern", name}, {"result", "hit"}}, p.hits);
    Count(*cache_lookups_, {{"pattern", name}, {"result", "miss"}}, p.misses);
    Count(*pattern_commands_, {{"pattern", name}, {"kind", "read"}}, p.read);
    Count(*pattern_commands_, {{"pattern", name}, {"kind", "write"}}, p.write);
    Count(*pattern_commands_, {{"pattern", name}, {"kind", "other"}}, p.other);
    Count(*pattern_bytes_, {{"pattern", name}, {"direction", "in"}}, p.bytes_in);
    Count(*pattern_bytes_, {{"pattern", name}, {"direction", "out"}}, p.bytes_out);
    if (p.latency.count() > 0) FeedFine(*pattern_duration_, {{"pattern", name}}, CommandBounds(), p.latency);
  }
  const recorder::EventTotals& e = s.stats.events;
  Set(*client_connections_, {},
      static_cast<double>(e.connections_opened - std::min(e.connections_opened, e.connections_closed)));
  Count(*client_connections_total_, {}, e.connections_opened);
  Count(*client_rejected_, {}, e.rejected_max_clients);
  Count(*accept_fd_exhausted_, {{"listener", "client"}}, e.accept_fd_exhausted);
  if (!s.pool.pooling) {
    // Dedicated: one upstream connection per client connection.
    Set(*upstream_connections_, {{"kind", "dedicated"}},
        static_cast<double>(e.connections_opened -
                            std::min(e.connections_opened, e.connections_closed)));
  }
  Count(*bytes_total_, {{"direction", "client_in"}}, e.bytes_client_in);
  Count(*bytes_total_, {{"direction", "client_out"}}, e.bytes_client_out);
  Count(*protocol_errors_, {{"side", "client"}}, e.client_protocol_errors);
  Count(*protocol_errors_, {{"side", "upstream"}}, e.upstream_protocol_errors);
  Count(*upstream_connect_errors_, {}, e.upstream_connect_errors);
  Set(*upstream_up_, {}, s.upstream_up ? 1 : 0);
  Set(*health_score_, {}, s.health_score);
  std::set<std::pair<std::string, std::string>> firing;
  for (const auto& a : s.alerts) firing.emplace(a.name, a.severity);
  for (const auto& [name, severity] : alert_rules) {
    Set(*alerts_firing_, {{"alert", name}, {"severity", severity}},
        firing.count({name, severity}) ? 1 : 0);
  }
  for (const auto& [name, severity] : firing) {
    Set(*alerts_firing_, {{"alert", name}, {"severity", severity}}, 1);
  }
  std::map<std::pair<std::string, std::string>, int> findings;
  for (const auto& f : s.insights) ++findings[{f.kind, f.severity}];
  for (const auto& k : findings) insight_series_.insert(k.first);
  for (const auto& k : insight_series_) {
    auto it = findings.find(k);
    Set(*insights_, {{"kind", k.first}, {"severity", k.second}},
        it == findings.end() ? 0 : it->second);
  }
  for (const char* status : {"healthy", "degraded", "unhealthy"}) {
    Set(*health_status_, {{"status", status}}, s.health_status == status ? 1 : 0);
  }
  if (notification_source_) {
    for (const auto& n : notification_source_()) {
      Count(*notifications_, {{"channel", n.channel}, {"result", "sent"}}, n.sent);
      Count(*notifications_, {{"channel", n.channel}, {"result", "failed"}}, n.failed);
      Count(*notifications_, {{"channel", n.channel}, {"result", "dropped"}}, n.dropped);
      Count(*notification_retries_, {{"channel", n.channel}}, n.retries);
    }
  }
}

void Metrics::SetNotificationSource(std::function<std::vector<NotificationCounts>()> source) {
  std::lock_guard lock(mu_);
  notification_source_ = std::move(source);
}

void Metrics::UpdateQueues(const std::vector<QueueMetrics>& queues) {
  std::lock_guard lock(mu_);
  const auto& bounds = JobDurationBounds();
  for (const QueueMetrics& q : queues) {
    for (const auto& [transition, n] : q.transitions) {
      Count(*bullmq_jobs_, {{"queue", q.queue}, {"transition", transition}}, n);
    }
    if (q.wait.count > 0) {
      FeedCoarse(*bullmq_wait_, {{"queue", q.queue}}, bounds, q.wait.counts, q.wait.sum_seconds);
    }
    if (q.process.count > 0) {
      FeedCoarse(*bullmq_process_, {{"queue", q.queue}}, bounds, q.process.counts,
                 q.process.sum_seconds);
    }
    for (const auto& [state, n] : q.depth) {
      Set(*bullmq_queue_jobs_, {{"queue", q.queue}, {"state", state}}, static_cast<double>(n));
    }
  }
}

void Metrics::UpdateRedis(const RedisInfo& info) {
  std::lock_guard lock(mu_);
  Set(*redis_used_memory_, {}, static_cast<double>(info.used_memory));
  Count(*redis_hits_, {}, info.keyspace_hits, /*reset_on_decrease=*/true);
  Count(*redis_misses_, {}, info.keyspace_misses, /*reset_on_decrease=*/true);
}

void Metrics::UpdateAdmin(const AdminListenerStats& admin) {
  std::lock_guard lock(mu_);
  Set(*admin_connections_, {}, static_cast<double>(admin.connections));
  Count(*admin_rejected_, {{"reason", "idle_evicted"}}, admin.rejected_idle);
  Count(*admin_rejected_, {{"reason", "refused"}}, admin.rejected_refused);
  Count(*admin_timeouts_, {}, admin.request_timeouts);
  Count(*accept_fd_exhausted_, {{"listener", "admin"}}, admin.accept_fd_exhausted);
}

void Metrics::UpdatePool(const PoolMetrics& pool) {
  std::lock_guard lock(mu_);
  if (pool.tls) {
    Set(*tls_verify_disabled_, {}, pool.tls_verify_disabled ? 1 : 0);
    for (const auto& [reason, n] : pool.tls_handshake_failures) {
      Count(*tls_handshake_failures_, {{"reason", reason}}, n);
    }
  }
  if (!pool.pooling) return;
  Set(*upstream_connections_, {{"kind", "shared"}}, static_cast<double>(pool.shared));
  Set(*upstream_connections_, {{"kind", "spare"}}, static_cast<double>(pool.spare));
  Set(*upstream_connections_, {{"kind", "pinned"}}, static_cast<double>(pool.pinned));
  for (const auto& [reason, n] : pool.pins) Count(*upstream_pins_, {{"reason", reason}}, n);
  FeedCoarse(*shared_write_commands_, {}, pool.write_bounds, pool.write_counts,
             static_cast<double>(pool.write_commands));
  Count(*shared_drops_, {}, pool.shared_drops);
  Count(*slow_client_closes_, {}, pool.slow_client_closes);
  Count(*spare_misses_, {}, pool.spare_misses);
}

void Metrics::UpdateSentinel(const SentinelMetrics& sentinel) {
  std::lock_guard lock(mu_);
  Count(*sentinel_master_changes_, {}, sentinel.master_changes);
  Count(*sentinel_resolve_failures_, {}, sentinel.resolve_failures);
  Set(*sentinels_reachable_, {}, static_cast<double>(sentinel.reachable));
  Set(*sentinels_configured_, {}, static_cast<double>(sentinel.configured));
  if (sentinel.master == master_series_) return;
  if (!master_series_.empty()) {
    auto it = gauges_.find(Key(upstream_master_, {{"address", master_series_}}));
    if (it != gauges_.end()) {
      upstream_master_->Remove(it->second);
      gauges_.erase(it);
    }
  }
  master_series_ = sentinel.master;
  if (!master_series_.empty()) Set(*upstream_master_, {{"address", master_series_}}, 1);
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace respscope::engine
