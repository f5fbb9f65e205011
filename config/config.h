// The whole respscope configuration as plain structs, with the defaults of DESIGN.md
// "Configuration". Filled by config/loader.h (YAML file), config/cli.h (flags) and
// config/env.h (RESPSCOPE_* overrides), in that order of increasing precedence.
//
// Thread: a Config is a value; build it at start-up (or on SIGHUP) and hand out copies or a
// shared_ptr<const Config>. Nothing here does I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace respscope::config {

// Every duration in the configuration. Written in YAML as 500us, 10ms, 2s, 5m, 1h, 1.5s.
using Duration = std::chrono::microseconds;

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;

// Default IO thread count: half the CPUs respscope may use (UsableCpus), at least 1, at most 4.
// A sidecar shares its CPUs with the application (and often Redis): on a 2-core machine one
// IO thread serves more than two (bench/RESULTS.md), as twemproxy's one thread does.
int DefaultThreads();
// The CPUs this process may run on (affinity mask), lowered to its cgroup's CPU quota (v2
// cpu.max, v1 cpu.cfs_quota_us), rounded up.
int UsableCpus();
// cpus lowered to the quota in cgroup v2 `cpu.max` text ("max 100000", "150000 100000").
int CpusWithinQuota(int cpus, std::string_view cpu_max);
// Upper bound for `threads` in the file and for --threads.
inline constexpr int kMaxThreads = 256;

// A TCP address to listen on: "HOST:PORT" or "[IPV6]:PORT". host is stored without brackets.
// Port 0 means "any free port" (useful in tests).
struct HostPort {
  std::string host;
  uint16_t port = 0;

  // "127.0.0.1:6380", "[::1]:6380".
  std::string ToString() const;
  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// Where applications connect: a TCP address, or a Unix domain socket path ("unix:///path").
struct ListenAddress {
  HostPort tcp;           // when unix_path is empty
  std::string unix_path;  // absolute; set: a Unix socket listener

  bool IsUnix() const { return !unix_path.empty(); }
  // "127.0.0.1:6380", "[::1]:6380", "unix:///var/run/respscope/respscope.sock".
  std::string ToString() const;
  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

// Unix socket paths must fit sockaddr_un::sun_path (108 bytes with the terminating NUL).
inline constexpr size_t kMaxUnixPath = 107;
// At most this many listeners (`listen` as a list).
inline constexpr size_t kMaxListeners = 8;

enum class UpstreamScheme : uint8_t { kRedis, kRediss, kUnix, kSentinel };

// The port of a sentinel address written without one.
inline constexpr uint16_t kDefaultSentinelPort = 26379;

// Parsed upstream URL: redis://[user:pass@]host[:port][/db], rediss://... (TLS),
// unix://[user:pass@]/path[?db=N] (also unix:/path), and
// redis+sentinel://[user:pass@]host1[:port],host2[:port]/MASTER[/db] (ports default to 26379):
// the master named MASTER as the sentinels report it. Userinfo follows redis-cli: "user:pass"
// is a user and a password, a userinfo without ':' is a password alone (default user).
// username and password are percent-decoded. In a sentinel URL they are the master's
// credentials (ioredis's `password`, go-redis's `Password`); the sentinels' own are in
// SentinelConfig (ioredis's `sentinelPassword`).
struct UpstreamUrl {
  UpstreamScheme scheme = UpstreamScheme::kRedis;
  std::string host = "127.0.0.1";  // redis/rediss; without brackets for IPv6
  uint16_t port = 6379;            // redis/rediss
  std::string path;                // unix: absolute socket path
  std::string username;            // empty: the default user
  std::string password;            // empty: no AUTH
  int64_t db = 0;                  // SELECT index, >= 0
  std::vector<HostPort> sentinels;  // redis+sentinel: at least one, in the order written
  std::string master_name;          // redis+sentinel: the name the sentinels monitor

  bool IsTcp() const { return scheme != UpstreamScheme::kUnix; }
  bool IsSentinel() const { return scheme == UpstreamScheme::kSentinel; }
  // The URL back, with the password replaced by "***" unless redact_password is false. Safe for
  // logs, metrics and the API when redacted.
  std::string ToString(bool redact_password = true) const;
  friend bool operator==(const UpstreamUrl&, const UpstreamUrl&) = default;
};

// upstream_sentinel: how respscope talks to the sentinels of a redis+sentinel upstream. The
// sentinels' credentials are their own (Sentinel's `requirepass` / ACL), separate from the
// master's in the URL, as ioredis (sentinelPassword) and go-redis (SentinelPassword) keep them.
struct SentinelConfig {
  std::string username;  // empty: the default user
  std::string password;  // empty: no AUTH to the sentinels
  // One question to one sentinel (connect included), and the ROLE check of the master it
  // names. Short: a dead sentinel must not hold up asking the next one.
  Duration timeout = std::chrono::milliseconds(500);
  // Between two full checks of every sentinel and the master while a master is known (the
  // +switch-master subscription reports failovers at once; this catches what it misses).
  Duration check_interval = std::chrono::seconds(5);
};

struct AdminConfig {
  HostPort listen{"127.0.0.1", 9190};
  // Bearer token for everything but /healthz, /readyz (and /metrics unless protect_metrics).
  // Empty: no authentication.
  std::string token;
  bool protect_metrics = false;
  // Open admin connections. At the cap the oldest idle one is closed to admit a new one.
  uint32_t max_connections = 256;
  // A new connection must send its whole request within this; a keep-alive connection its
  // next request within idle_timeout.
  Duration header_timeout = std::chrono::seconds(5);
  Duration idle_timeout = std::chrono::seconds(30);
};

struct LimitsConfig {
  uint32_t max_clients = 10000;
  // Per client connection, each direction; beyond it the faster side is not read.
  uint64_t max_inflight_bytes_per_client = 8 * kMiB;
  Duration connect_timeout = std::chrono::seconds(2);  // upstream connect
  Duration drain_timeout = std::chrono::seconds(10);   // SIGTERM: the whole drain, at most
  // SIGTERM: clients keep being served; a connection with nothing in flight and nothing sent
  // for this long is closed. 0: stop reading every client at SIGTERM.
  Duration drain_idle_timeout = std::chrono::seconds(2);
};

// One history ring: a point every `resolution`, kept for `retention`.
// Written "10s for 1h". resolution is a whole number of seconds (the engine merges once a
// second) and divides retention.
struct HistoryTier {
  Duration resolution;
  Duration retention;
  friend bool operator==(const HistoryTier&, const HistoryTier&) = default;
};

struct HistoryConfig {
  HistoryTier fine{std::chrono::seconds(10), std::chrono::hours(1)};
  // coarse.resolution is a multiple of fine.resolution; coarse.retention >= fine.retention.
  HistoryTier coarse{std::chrono::minutes(1), std::chrono::hours(24)};
};

struct AnalyticsConfig {
  Duration slow_command_threshold = std::chrono::milliseconds(10);
  uint32_t top_keys = 20;       // hot keys listed (big values: 4 per pattern, fixed)
  uint32_t slowlog_size = 128;  // entries in the slow command log
  HistoryConfig history;
};

enum class MatchKind : uint8_t { kGlob, kRegex };

// key_patterns.rules[i]: {match: "user:*:profile", name: "user:{id}:profile"}.
struct PatternRule {
  std::string match;  // as written, e.g. "user:*:profile" or "re:^user:[0-9]+$"
  MatchKind kind = MatchKind::kGlob;
  // kGlob: the Redis-style glob (see config/glob.h). kRegex: the text after "re:", a valid
  // ECMAScript std::regex (checked at load) that must match the whole key (std::regex_match).
  std::string expression;
  std::string name;  // the pattern label the matching keys are counted under
};

struct KeyPatternsConfig {
  bool auto_patterns = true;       // YAML "auto": collapse id-like segments to {id}
  uint32_t max_patterns = 1000;    // distinct patterns; beyond them keys count as "other"
  std::vector<PatternRule> rules;  // first match wins, before the automatic collapse
};

enum class SanitizeMode : uint8_t { kHash, kRedact };

struct SanitizationConfig {
  // Globs (config/glob.h). Writing the key replaces this list, it does not extend it.
  std::vector<std::string> sensitive_key_patterns{"auth:*", "session:*", "token:*", "password:*",
                                                  "secret:*"};
  SanitizeMode mode = SanitizeMode::kHash;  // keyed stable hash, or "[redacted]"
  bool capture_values = false;
  uint64_t max_value_size = 1 * kKiB;             // quoted text kept by capture_values is cut
  uint32_t max_key_length = 200;                  // keys are truncated to this in every output
  std::vector<std::string> exclude_key_patterns;  // globs; not observed per key at all
  double sample_rate = 1.0;  // [0, 1]; per-key analytics only, totals stay exact
};

struct BullmqConfig {
  bool enabled = true;
  std::vector<std::string> prefixes{"bull"};              // without the trailing ':'
  Duration inspector_interval = std::chrono::seconds(5);  // queue depth polling
};

enum class AlertMetric : uint8_t {
  kHitRate,
  kErrorRate,
  kP99Latency,
  kJobFailureRate,
  kQueueBacklog,     // waiting jobs (side channel), summed over the selected queues
  kStalledJobs,      // stalled jobs over the last minute
  kSlowJobs,         // mean processing time (seconds) over the last minute
  kUpstreamDown,     // 1 while the upstream is unreachable
  kMemoryUsedRatio,  // INFO used_memory / maxmemory (no data without maxmemory)
  kInsight,          // findings of the selected kinds at the rule's severity or above
};
enum class Comparison : uint8_t { kAbove, kBelow };
enum class Severity : uint8_t { kInfo, kWarning, kError, kCritical };  // in this order

struct AlertRule {
  std::string name;  // unique; letters, digits, '_', '-', '.'; the `alert` metric label
  AlertMetric metric = AlertMetric::kHitRate;
  // Glob over pattern names (hit_rate, error_rate, p99_latency), queue names (job_failure_rate,
  // queue_backlog, stalled_jobs, slow_jobs) or finding kinds (insight); the others are empty.
  std::string pattern;
  std::string queue;
  std::string kind;
  Comparison comparison = Comparison::kAbove;  // YAML: exactly one of above / below
  // Rates: a fraction in [0, 1]. p99_latency, slow_jobs: seconds (written as a duration, e.g.
  // 50ms). queue_backlog, stalled_jobs, insight: a count. upstream_down: optional (above 0).
  double threshold = 0;
  Duration for_duration{0};  // YAML "for": the condition must hold this long
  // After resolving, the alert does not fire (nor notify) again for this long. Default by
  // severity (DefaultCooldown).
  Duration cooldown = std::chrono::minutes(30);
  Severity severity = Severity::kWarning;
};

// insights: the thresholds of the findings (/api/v1/insights). Defaults from the seeds.
struct InsightsConfig {
  // false: no findings, and the recorder keeps no per-pattern key-lifetime or read-run
  // evidence (what no_ttl_pattern and n_plus_one need; see bench/RESULTS.md for its cost).
  bool enabled = true;
  Duration window = std::chrono::minutes(1);  // evidence window, and one baseline window
  uint64_t full_scan_bytes = 64 * kKiB;       // keys_command: a whole-collection read this big
  uint64_t big_value_bytes = 100 * kKiB;      // big_value: bytes per call of a pattern
  double hot_key_share = 0.3;                 // hot_key: one key's share of keyed commands
  uint32_t hot_key_min_commands = 100;
  double low_hit_rate = 0.5;                  // low_hit_rate / cold_cache below this
  uint32_t min_lookups = 100;
  Duration warmup = std::chrono::minutes(5);  // cold_cache: after start or FLUSHALL/FLUSHDB
  uint32_t backlog_min_waiting = 100;         // queue_backlog
  Duration slow_job = std::chrono::seconds(60);        // slow_jobs: warning
  Duration very_slow_job = std::chrono::seconds(120);  // slow_jobs: critical
  double job_failure_warning = 0.25, job_failure_critical = 0.5;  // job_failures
  uint32_t min_jobs = 10;
  uint32_t baseline_windows = 10;             // latency_regression
  double regression_ratio = 0.10;
  Duration regression_min = std::chrono::milliseconds(1);
  uint32_t regression_min_calls = 20;
  double churn_connections_per_command = 0.5;  // connection_churn
  uint32_t churn_min_connections = 20;
  uint32_t no_ttl_min_keys = 1000;       // no_ttl_pattern: new keys without expiry per window
  uint32_t n_plus_one_min_reads = 200;   // n_plus_one: sequential single-key reads per window
  uint32_t job_history_min_jobs = 1000;  // unbounded_job_history: jobs in a finished set
};

enum class ChannelType : uint8_t { kWebhook, kSlack };

// notifications[i]: where firing and resolved alerts are sent.
struct NotificationChannel {
  std::string name;  // unique; alert-name characters
  ChannelType type = ChannelType::kWebhook;
  std::string url;   // http://HOST[:PORT]/PATH or https://...
  Severity min_severity = Severity::kWarning;
  std::string hmac_secret_env;  // webhook only: environment variable holding the HMAC key
  Duration timeout = std::chrono::seconds(5);  // per attempt
  uint32_t max_attempts = 4;                   // first try + retries, with backoff 1s, 2s, 4s...
  Duration backoff = std::chrono::seconds(1);
};

// The seed's cooldowns per severity: critical 5m, error 15m, warning 30m, info 1h.
Duration DefaultCooldown(Severity severity);

enum class LogLevel : uint8_t { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat : uint8_t { kJson, kText, kAuto };  // auto: text on a terminal, else json

struct LoggingConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kAuto;
};

// Where a setting that flags and the environment can override came from: "FILE:LINE:COL",
// "--listen", "RESPSCOPE_LISTEN" or "default". Used in messages.
struct Origins {
  std::string listen = "default";
  std::string upstream = "default";
  std::string admin_listen = "default";
  std::string admin_token = "default";
  std::string upstream_pooling = "default";
  std::string upstream_tls = "default";  // where upstream_tls (or its first variable) was set
  std::string upstream_sentinel = "default";
};

// How client connections reach the upstream (see README "Upstream connections").
enum class UpstreamPooling : uint8_t {
  kAuto,       // clients in the default connection state share a few upstream connections per
               // IO thread; the first command that needs state moves the client to its own
  kDedicated,  // one upstream connection per client connection, for its whole life
};

enum class TlsVersion : uint8_t { k12, k13 };

// upstream_tls: how a rediss:// upstream is reached (README "TLS upstream"). Each key has a
// RESPSCOPE_UPSTREAM_TLS_<KEY> environment variable of the same name. Only paths here: the
// files are read when the TLS context is built (start-up, --check-config and SIGHUP).
struct UpstreamTlsConfig {
  std::string ca_file;      // PEM CA bundle; empty: the system's trust store
  std::string cert_file;    // PEM client certificate (chain) for mutual TLS; with key_file
  std::string key_file;     // PEM private key of cert_file
  std::string server_name;  // SNI and the name verified; empty: the URL's host
  TlsVersion min_version = TlsVersion::k12;
  bool verify = true;       // false: no certificate or name check (warned, and a metric)
  bool configured = false;  // the section or one of its variables was given
};

struct PoolConfig {
  uint32_t shared_connections = 1;  // per IO thread
  uint32_t spare_connections = 2;   // warm connections per IO thread for clients that pin
  uint64_t max_shared_request = 1 * kMiB;  // a larger request pins its client
};

struct Config {
  // One listener or several (a TCP address and a Unix socket at once, say).
  std::vector<ListenAddress> listen{ListenAddress{HostPort{"127.0.0.1", 6380}, {}}};
  // Permission bits of the Unix socket files respscope creates (connecting needs write
  // permission on the socket): owner and group read/write by default.
  uint32_t listen_unix_mode = 0660;
  UpstreamUrl upstream;
  UpstreamPooling upstream_pooling = UpstreamPooling::kAuto;
  UpstreamTlsConfig upstream_tls;
  SentinelConfig upstream_sentinel;
  PoolConfig pool;
  int threads = DefaultThreads();
  AdminConfig admin;
  LimitsConfig limits;
  AnalyticsConfig analytics;
  KeyPatternsConfig key_patterns;
  SanitizationConfig sanitization;
  BullmqConfig bullmq;
  std::vector<AlertRule> alerts;
  InsightsConfig insights;
  std::vector<NotificationChannel> notifications;
  LoggingConfig logging;

  std::string config_file;  // the file loaded, empty if none (for SIGHUP reload)
  Origins origins;
  std::vector<std::string> warnings;  // not errors, but worth one log line each at start-up
};

// Lower-case names as written in YAML ("hit_rate", "critical", "warn", ...).
std::string_view ToString(UpstreamScheme v);
std::string_view ToString(MatchKind v);
std::string_view ToString(SanitizeMode v);
std::string_view ToString(AlertMetric v);
std::string_view ToString(Comparison v);
std::string_view ToString(Severity v);
std::string_view ToString(ChannelType v);
std::string_view ToString(LogLevel v);
std::string_view ToString(UpstreamPooling v);
std::string_view ToString(LogFormat v);
std::string_view ToString(TlsVersion v);  // "1.2", "1.3"

}  // namespace respscope::config
