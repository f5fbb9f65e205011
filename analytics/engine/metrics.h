// Every Prometheus metric respscope exports, declared in this one place (names and labels are
// the contract in DESIGN.md "Metrics"), rendered with prometheus-cpp's Registry and
// TextSerializer.
//
// Counters are fed from cumulative values: the Metrics object remembers the last value per
// series and increments by the difference (prometheus-cpp counters only go up).
// Histograms: the recorder's fine log-linear buckets are mapped onto fixed Prometheus `le`
// bounds (CommandBounds / BlockingBounds below) by each fine bucket's midpoint; a fine bucket
// straddling an `le` bound (at most 1/32 of its value wide) lands wholly on one side. Count
// and sum stay exact.
//
// Thread: all methods are thread-safe (one internal mutex; never on the data path).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "analytics/engine/external.h"
#include "analytics/engine/snapshot.h"
#include "analytics/recorder/histogram.h"

namespace prometheus {
class Registry;
class Counter;
class Gauge;
class Histogram;
template <typename T>
class Family;
}  // namespace prometheus

namespace respscope::engine {

const std::vector<double>& CommandBounds();   // seconds: 100 us .. 10 s
const std::vector<double>& BlockingBounds();  // seconds: 1 ms .. 300 s

// Delivery counts of one notification channel (fed by the notifier through a source function).
struct NotificationCounts {
  std::string channel;
  uint64_t sent = 0, failed = 0, dropped = 0, retries = 0;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();

  // Commands, patterns, connections, bytes, protocol errors, health, upstream_up, and
  // respscope_alerts_firing: one series per configured (alert, severity), 1 when in
  // s.alerts, else 0.
  void Update(const Snapshot& s,
              const std::vector<std::pair<std::string, std::string>>& alert_rules = {});
  void UpdateQueues(const std::vector<QueueMetrics>& queues);
  void UpdateRedis(const RedisInfo& info);
  void UpdateAdmin(const AdminListenerStats& admin);
  // respscope_notifications_total{channel,result} and respscope_notification_retries_total
  // {channel} are read from `source` on every Update (any thread; it must not block).
  void SetNotificationSource(std::function<std::vector<NotificationCounts>()> source);
  void UpdatePool(const PoolMetrics& pool);
  // respscope_sentinel_* and respscope_upstream_master{address}: one series, the current
  // master's, replaced when it moves and removed while none is known.
  void UpdateSentinel(const SentinelMetrics& sentinel);
  // Prometheus text exposition format 0.0.4.
  std::string Render() const;

 private:
  using Labels = std::map<std::string, std::string>;
  struct CounterSeries {
    prometheus::Counter* counter = nullptr;
    uint64_t last = 0;
  };
  struct HistSeries {
    prometheus::Histogram* hist = nullptr;
    std::vector<uint64_t> last;  // per-le (non-cumulative) counts last fed
    double last_sum = 0;
  };
  void Count(prometheus::Family<prometheus::Counter>& fam, const Labels& labels, uint64_t value,
             bool reset_on_decrease = false);
  void Set(prometheus::Family<prometheus::Gauge>& fam, const Labels& labels, double value);
  void FeedFine(prometheus::Family<prometheus::Histogram>& fam, const Labels& labels,
                const std::vector<double>& bounds, const recorder::Histogram& cumulative);
  void FeedCoarse(prometheus::Family<prometheus::Histogram>& fam, const Labels& labels,
                  const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                  double sum);
  static std::string Key(const void* fam, const Labels& labels);

  mutable std::mutex mu_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::map<std::string, CounterSeries> counters_;
  std::map<std::string, HistSeries> hists_;
  std::map<std::string, prometheus::Gauge*> gauges_;
  std::set<std::pair<std::string, std::string>> insight_series_;  // (kind, severity) seen
  std::function<std::vector<NotificationCounts>()> notification_source_;

  prometheus::Family<prometheus::Counter>* commands_total_;
  prometheus::Family<prometheus::Histogram>* command_duration_;
  prometheus::Family<prometheus::Histogram>* blocking_duration_;
  prometheus::Family<prometheus::Counter>* cache_lookups_;
  prometheus::Family<prometheus::Counter>* pattern_commands_;
  prometheus::Family<prometheus::Counter>* pattern_bytes_;
  prometheus::Family<prometheus::Histogram>* pattern_duration_;
  prometheus::Family<prometheus::Gauge>* client_connections_;
  prometheus::Family<prometheus::Counter>* client_connections_total_;
  prometheus::Family<prometheus::Counter>* client_rejected_;
  prometheus::Family<prometheus::Gauge>* admin_connections_;
  prometheus::Family<prometheus::Counter>* admin_rejected_;
  prometheus::Family<prometheus::Counter>* admin_timeouts_;
  prometheus::Family<prometheus::Counter>* accept_fd_exhausted_;
  prometheus::Family<prometheus::Counter>* bytes_total_;
  prometheus::Family<prometheus::Counter>* protocol_errors_;
  prometheus::Family<prometheus::Gauge>* upstream_up_;
  prometheus::Family<prometheus::Counter>* upstream_connect_errors_;
  prometheus::Family<prometheus::Gauge>* upstream_connections_;
  prometheus::Family<prometheus::Counter>* upstream_pins_;
  prometheus::Family<prometheus::Counter>* tls_handshake_failures_;
  prometheus::Family<prometheus::Gauge>* tls_verify_disabled_;
  prometheus::Family<prometheus::Histogram>* shared_write_commands_;
  prometheus::Family<prometheus::Counter>* shared_drops_;
  prometheus::Family<prometheus::Counter>* slow_client_closes_;
  prometheus::Family<prometheus::Counter>* spare_misses_;
  prometheus::Family<prometheus::Counter>* sentinel_master_changes_ = nullptr;
  prometheus::Family<prometheus::Counter>* sentinel_resolve_failures_ = nullptr;
  prometheus::Family<prometheus::Gauge>* sentinels_reachable_ = nullptr;
  prometheus::Family<prometheus::Gauge>* sentinels_configured_ = nullptr;
  prometheus::Family<prometheus::Gauge>* upstream_master_ = nullptr;
  std::string master_series_;  // the address label of the upstream_master series shown
  prometheus::Family<prometheus::Counter>* bullmq_jobs_;
  prometheus::Family<prometheus::Histogram>* bullmq_wait_;
  prometheus::Family<prometheus::Histogram>* bullmq_process_;
  prometheus::Family<prometheus::Gauge>* bullmq_queue_jobs_;
  prometheus::Family<prometheus::Gauge>* redis_used_memory_;
  prometheus::Family<prometheus::Counter>* redis_hits_;
  prometheus::Family<prometheus::Counter>* redis_misses_;
  prometheus::Family<prometheus::Gauge>* health_score_;
  prometheus::Family<prometheus::Gauge>* alerts_firing_;
  prometheus::Family<prometheus::Gauge>* build_info_;
  prometheus::Family<prometheus::Gauge>* insights_;
  prometheus::Family<prometheus::Gauge>* health_status_;
  prometheus::Family<prometheus::Counter>* notifications_;
  prometheus::Family<prometheus::Counter>* notification_retries_;
};

}  // namespace respscope::engine
