// Plain structs through which other modules (analytics/jobs, analytics/inspector, the app)
// feed the engine and the metrics. No behaviour; copied by value.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace respscope::engine {

// Upper bounds (seconds) of the Prometheus buckets for job wait / processing durations.
// DurationHistogram::counts has one entry per bound plus a final +Inf entry.
const std::vector<double>& JobDurationBounds();

struct DurationHistogram {
  std::vector<uint64_t> counts;  // per bucket (NOT cumulative), size JobDurationBounds()+1;
                                 // cumulative since start
  double sum_seconds = 0;        // cumulative since start
  uint64_t count = 0;            // == sum of counts
  void Observe(double seconds);  // convenience for producers
};

struct QueueMetrics {
  std::string queue;                             // bounded by the jobs module
  std::map<std::string, uint64_t> transitions;   // cumulative: added, completed, failed, ...
  DurationHistogram wait;                        // added -> active
  DurationHistogram process;                     // active -> completed/failed
  std::map<std::string, int64_t> depth;          // state -> jobs (inspector), gauge
  // Cumulative, from the jobs module (analytics/jobs/job_types.h JobRetentionCounts): adds
  // whose options were read and of them those without removeOnComplete / removeOnFail;
  // completions / final failures whose keepJobs was read and of them those keeping every job.
  uint64_t adds_read = 0, adds_keep_completed = 0, adds_keep_failed = 0;
  uint64_t completed_read = 0, completed_keep_all = 0, failed_read = 0, failed_keep_all = 0;
  // Unix ms since when the longest-runnable known job waits (may be in the future for a
  // delayed job not yet due); -1: none known.
  int64_t oldest_runnable_ms = -1;
};

// The admin HTTP server's own connections (analytics/admin fills it on every scrape).
struct AdminListenerStats {
  uint64_t connections = 0;          // open now (gauge), at most admin.max_connections
  uint64_t rejected_idle = 0;        // cumulative: idle connections closed to admit a new one
  uint64_t rejected_refused = 0;     // cumulative: new connections closed, none could be evicted
  uint64_t request_timeouts = 0;     // cumulative: closed for not sending a request in time
  uint64_t accept_fd_exhausted = 0;  // cumulative: accept() found no free descriptor
};

struct RedisInfo {
  uint64_t used_memory = 0;       // bytes
  uint64_t keyspace_hits = 0;     // cumulative as reported by INFO (resets on restart)
  uint64_t keyspace_misses = 0;
  bool up = false;                // the side channel reached the server
  uint64_t maxmemory = 0;         // bytes; 0: no limit
};

// A redis+sentinel:// upstream as the app's Sentinel watcher sees it (absent otherwise).
struct SentinelMetrics {
  uint64_t master_changes = 0;    // cumulative: the master moved between two known addresses
  uint64_t resolve_failures = 0;  // cumulative: rounds that found no working master
  int64_t reachable = 0;          // sentinels that answered the last round
  int64_t configured = 0;         // sentinels in the upstream URL
  std::string master;             // "ip:port" of the current master; empty while none is known
};

// The data plane's upstream connections (upstream_pooling), summed over the IO threads.
struct PoolMetrics {
  bool pooling = false;      // auto; false: dedicated (one upstream connection per client)
  int64_t shared = 0;        // shared upstream connections open
  int64_t spare = 0;         // warm spares open
  int64_t pinned = 0;        // clients on a connection of their own after a pin
  std::map<std::string, uint64_t> pins;  // reason -> pins since start
  std::vector<double> write_bounds;      // commands per shared write: bucket upper bounds
  std::vector<uint64_t> write_counts;    // per bucket (NOT cumulative), size bounds + 1
  uint64_t write_commands = 0;           // sum
  uint64_t shared_drops = 0;             // shared connections lost with replies in flight
  uint64_t slow_client_closes = 0;       // clients closed at max_inflight_bytes_per_client
  uint64_t spare_misses = 0;             // pins that waited for a connect
  // rediss:// upstream (both modes).
  bool tls = false;
  bool tls_verify_disabled = false;      // upstream_tls.verify: false
  std::map<std::string, uint64_t> tls_handshake_failures;  // reason -> failures since start
};

}  // namespace respscope::engine
