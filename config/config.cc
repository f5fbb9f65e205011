#include "config/config.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace respscope::config {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Percent-encodes everything but RFC 3986 unreserved characters (for userinfo in ToString).
std::string PctEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(static_cast<char>(c)) ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string BracketIfV6(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

int CpusWithinQuota(int cpus, std::string_view cpu_max) {
  std::istringstream in{std::string(cpu_max)};
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return cpus;
  double q = 0;
  try {
    q = std::stod(quota);
  } catch (const std::exception&) {
    return cpus;
  }
  if (q <= 0) return cpus;
  return std::clamp(static_cast<int>(std::ceil(q / period)), 1, std::max(cpus, 1));
}

int UsableCpus() {
  int cpus = 0;
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  if (cpus <= 0) cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (cpus <= 0) cpus = 1;
  std::ifstream v2("/sys/fs/cgroup/cpu.max");
  std::string line;
  if (std::getline(v2, line)) return CpusWithinQuota(cpus, line);
  std::ifstream quota("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  std::ifstream period("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  std::string q, p;
  if (std::getline(quota, q) && std::getline(period, p) && q != "-1") {
    return CpusWithinQuota(cpus, q + " " + p);
  }
  return cpus;
}

int DefaultThreads() { return std::clamp(UsableCpus() / 2, 1, 4); }

std::string HostPort::ToString() const { return BracketIfV6(host) + ":" + std::to_string(port); }

std::string ListenAddress::ToString() const {
  return IsUnix() ? "unix://" + unix_path : tcp.ToString();
}

std::string UpstreamUrl::ToString(bool redact_password) const {
  std::string out(config::ToString(scheme));
  out += "://";
  // Mirrors the parser: "user:pass@", "user:@" (user, no password), "pass@" (password alone).
  std::string shown_password = redact_password && !password.empty() ? "***" : PctEncode(password);
  if (!username.empty()) {
    out += PctEncode(username) + ":" + shown_password + "@";
  } else if (!password.empty()) {
    out += shown_password + "@";
  }
  if (scheme == UpstreamScheme::kSentinel) {
    for (size_t i = 0; i < sentinels.size(); ++i) {
      if (i) out += ",";
      out += sentinels[i].ToString();
    }
    out.append("/").append(PctEncode(master_name));
    if (db != 0) out.append("/").append(std::to_string(db));
  } else if (scheme == UpstreamScheme::kUnix) {
    out += path;
    if (db != 0) out.append("?db=").append(std::to_string(db));
  } else {
    // Appends, not operator+: GCC 12 warns falsely (-Wrestrict, PR 105329) on "/" + string.
    out.append(BracketIfV6(host)).append(":").append(std::to_string(port));
    if (db != 0) out.append("/").append(std::to_string(db));
  }
  return out;
}

std::string_view ToString(UpstreamScheme v) {
  switch (v) {
    case UpstreamScheme::kRedis:
      return "redis";
    case UpstreamScheme::kRediss:
      return "rediss";
    case UpstreamScheme::kUnix:
      return "unix";
    case UpstreamScheme::kSentinel:
      return "redis+sentinel";
  }
  return "?";
}

std::string_view ToString(MatchKind v) { return v == MatchKind::kGlob ? "glob" : "regex"; }

std::string_view ToString(SanitizeMode v) { return v == SanitizeMode::kHash ? "hash" : "redact"; }

std::string_view ToString(AlertMetric v) {
  switch (v) {
    case AlertMetric::kHitRate:
      return "hit_rate";
    case AlertMetric::kErrorRate:
      return "error_rate";
    case AlertMetric::kP99Latency:
      return "p99_latency";
    case AlertMetric::kJobFailureRate:
      return "job_failure_rate";
    case AlertMetric::kQueueBacklog:
      return "queue_backlog";
    case AlertMetric::kStalledJobs:
      return "stalled_jobs";
    case AlertMetric::kSlowJobs:
      return "slow_jobs";
    case AlertMetric::kUpstreamDown:
      return "upstream_down";
    case AlertMetric::kMemoryUsedRatio:
      return "memory_used_ratio";
    case AlertMetric::kInsight:
      return "insight";
  }
  return "?";
}

std::string_view ToString(Comparison v) { return v == Comparison::kAbove ? "above" : "below"; }

std::string_view ToString(Severity v) {
  switch (v) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
    case Severity::kCritical:
      return "critical";
  }
  return "?";
}

Duration DefaultCooldown(Severity severity) {
  switch (severity) {
    case Severity::kCritical:
      return std::chrono::minutes(5);
    case Severity::kError:
      return std::chrono::minutes(15);
    case Severity::kWarning:
      return std::chrono::minutes(30);
    case Severity::kInfo:
      return std::chrono::hours(1);
  }
  return std::chrono::minutes(30);
}

std::string_view ToString(ChannelType v) {
  return v == ChannelType::kSlack ? "slack" : "webhook";
}

std::string_view ToString(TlsVersion v) { return v == TlsVersion::k13 ? "1.3" : "1.2"; }

std::string_view ToString(UpstreamPooling v) {
  return v == UpstreamPooling::kDedicated ? "dedicated" : "auto";
}

std::string_view ToString(LogLevel v) {
  switch (v) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

std::string_view ToString(LogFormat v) {
  switch (v) {
    case LogFormat::kJson:
      return "json";
    case LogFormat::kText:
      return "text";
    case LogFormat::kAuto:
      return "auto";
  }
  return "?";
}

}  // namespace respscope::config
