// Value parsers: durations and sizes in every unit, listen addresses, upstream URL forms,
// history tiers, ${VAR} expansion and the RESPSCOPE_* overrides.
#include "config/values.h"

#include <gtest/gtest.h>

#include <string>

#include "config/env.h"

namespace respscope::config {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ValueError& e) {
    return e.what();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(DurationTest, EveryUnit) {
  EXPECT_EQ(ParseDuration("250us"), microseconds(250));
  EXPECT_EQ(ParseDuration("10ms"), milliseconds(10));
  EXPECT_EQ(ParseDuration("2s"), seconds(2));
  EXPECT_EQ(ParseDuration("5m"), minutes(5));
  EXPECT_EQ(ParseDuration("1h"), hours(1));
  EXPECT_EQ(ParseDuration("1.5s"), milliseconds(1500));
  EXPECT_EQ(ParseDuration("0.1s"), milliseconds(100));
  EXPECT_EQ(ParseDuration("2.5ms"), microseconds(2500));
  EXPECT_EQ(ParseDuration("0.5h"), minutes(30));
  EXPECT_EQ(ParseDuration("0"), seconds(0));
  EXPECT_EQ(ParseDuration("0ms"), seconds(0));
  EXPECT_EQ(ParseDuration("720h"), hours(720));
}

TEST(DurationTest, Rejects) {
  for (const char* bad : {"", "abc", "10", "-5s", "+5s", "1.s", ".5s", "5 s", "5S", "5sec", "1h30m",
                          "5d", "1e3ms", "0x10s", "5s "}) {
    EXPECT_EQ(ErrorOf([&] { ParseDuration(bad); }),
              "expected a duration like 10ms, 2s, 5m (got '" + std::string(bad) + "')");
  }
  EXPECT_EQ(ErrorOf([] { ParseDuration("999999999999h"); }),
            "duration too long (got '999999999999h')");
}

TEST(DurationTest, FormatsShortestExactUnit) {
  EXPECT_EQ(FormatDuration(seconds(0)), "0s");
  EXPECT_EQ(FormatDuration(microseconds(250)), "250us");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(FormatDuration(seconds(90)), "90s");
  EXPECT_EQ(FormatDuration(minutes(90)), "90m");
  EXPECT_EQ(FormatDuration(hours(24)), "24h");
  for (const char* text : {"250us", "1500ms", "90s", "5m", "24h"}) {
    EXPECT_EQ(FormatDuration(ParseDuration(text)), text);
  }
}

TEST(SizeTest, EveryUnit) {
  EXPECT_EQ(ParseSize("0"), 0u);
  EXPECT_EQ(ParseSize("1024"), 1024u);
  EXPECT_EQ(ParseSize("512B"), 512u);
  EXPECT_EQ(ParseSize("512KiB"), 512u * 1024);
  EXPECT_EQ(ParseSize("8MiB"), 8u * 1024 * 1024);
  EXPECT_EQ(ParseSize("1GiB"), 1024u * 1024 * 1024);
  EXPECT_EQ(ParseSize("1.5KiB"), 1536u);
  EXPECT_EQ(ParseSize("0.5MiB"), 512u * 1024);
}

TEST(SizeTest, Rejects) {
  for (const char* bad :
       {"", "abc", "8MB", "8mb", "8M", "8K", "8kib", "1.5", "1.5B", "-1", "8 MiB", "1TiB", "1e3"}) {
    EXPECT_EQ(ErrorOf([&] { ParseSize(bad); }),
              "expected a size like 512KiB, 8MiB (got '" + std::string(bad) + "')");
  }
  EXPECT_EQ(ErrorOf([] { ParseSize("2000000GiB"); }), "size too large (got '2000000GiB')");
}

TEST(SizeTest, Formats) {
  EXPECT_EQ(FormatSize(0), "0B");
  EXPECT_EQ(FormatSize(1536), "1536B");
  EXPECT_EQ(FormatSize(4096), "4KiB");
  EXPECT_EQ(FormatSize(8 * kMiB), "8MiB");
  EXPECT_EQ(FormatSize(kGiB), "1GiB");
}

TEST(HostPortTest, Forms) {
  EXPECT_EQ(ParseHostPort("127.0.0.1:6380"), (HostPort{"127.0.0.1", 6380}));
  EXPECT_EQ(ParseHostPort("[::1]:6380"), (HostPort{"::1", 6380}));
  EXPECT_EQ(ParseHostPort("[::]:1"), (HostPort{"::", 1}));
  EXPECT_EQ(ParseHostPort("0.0.0.0:0"), (HostPort{"0.0.0.0", 0}));
  EXPECT_EQ(ParseHostPort("redis-proxy.default.svc:65535"),
            (HostPort{"redis-proxy.default.svc", 65535}));
  EXPECT_EQ((HostPort{"::1", 6380}).ToString(), "[::1]:6380");
  EXPECT_EQ((HostPort{"localhost", 1}).ToString(), "localhost:1");
}

TEST(HostPortTest, Rejects) {
  const std::pair<const char*, const char*> cases[] = {
      {"6380", "expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got '6380')"},
      {"[::1]6380", "expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got '[::1]6380')"},
      {"[::1", "expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got '[::1')"},
      {"[zz]:1", "invalid IPv6 address 'zz'"},
      {"::1:6380", "IPv6 addresses need brackets, like [::1]:6380 (got '::1:6380')"},
      {":6380", "missing host in ':6380' (use 0.0.0.0:PORT to listen on every interface)"},
      {"host:", "port must be a number between 0 and 65535 (got '')"},
      {"host:-1", "port must be a number between 0 and 65535 (got '-1')"},
      {"host:65536", "port must be a number between 0 and 65535 (got '65536')"},
      {"host:http", "port must be a number between 0 and 65535 (got 'http')"},
      {"1.2.3:80", "invalid host '1.2.3'"},
      {"my host:80", "invalid host 'my host'"},
  };
  for (const auto& [text, error] : cases) {
    EXPECT_EQ(ErrorOf([&] { ParseHostPort(text); }), error) << text;
  }
}

TEST(ListenAddressTest, Forms) {
  EXPECT_EQ(ParseListenAddress("127.0.0.1:6380"), (ListenAddress{HostPort{"127.0.0.1", 6380}, {}}));
  ListenAddress u = ParseListenAddress("unix:///var/run/respscope/respscope.sock");
  EXPECT_TRUE(u.IsUnix());
  EXPECT_EQ(u.unix_path, "/var/run/respscope/respscope.sock");
  EXPECT_EQ(u.ToString(), "unix:///var/run/respscope/respscope.sock");
  EXPECT_EQ(ParseListenAddress("UNIX:/tmp/r.sock").unix_path, "/tmp/r.sock");
  EXPECT_EQ(ParseListenAddress("unix:///" + std::string(106, 'a')).unix_path.size(), 107u);
  std::vector<ListenAddress> both = ParseListenList("127.0.0.1:6380,unix:///tmp/r.sock");
  ASSERT_EQ(both.size(), 2u);
  EXPECT_FALSE(both[0].IsUnix());
  EXPECT_EQ(both[1].unix_path, "/tmp/r.sock");
  EXPECT_EQ(ParseListenList("[::1]:1").at(0).tcp, (HostPort{"::1", 1}));
}

TEST(ListenAddressTest, Rejects) {
  const std::pair<std::string, std::string> cases[] = {
      {"unix://host/tmp/r.sock",
       "a unix socket address has no host; write unix:///ABSOLUTE/PATH (got "
       "'unix://host/tmp/r.sock')"},
      {"unix:", "missing socket path in 'unix:'"},
      {"unix:relative.sock", "the socket path must be absolute (got 'relative.sock')"},
      {"unix:///tmp/", "the socket path names a directory (got '/tmp/')"},
      {"unix:///tmp/r.sock?mode=1", "unexpected '?', '#' or NUL in the socket path "
                                    "'/tmp/r.sock?mode=1'"},
      {"unix:///" + std::string(107, 'a'),
       "the socket path is 108 bytes long; the system allows at most 107 (got '/" +
           std::string(63, 'a') + "...')"},
  };
  for (const auto& [text, error] : cases) {
    EXPECT_EQ(ErrorOf([&] { ParseListenAddress(text); }), error) << text;
  }
  EXPECT_EQ(ErrorOf([] { ParseListenList("127.0.0.1:1,,unix:///a"); }),
            "empty listen address in '127.0.0.1:1,,unix:///a'");
  EXPECT_EQ(ErrorOf([] { ParseListenList("unix:///a,unix:/a"); }),
            "listen address 'unix:/a' given twice");
  EXPECT_EQ(ErrorOf([] { ParseListenList("unix:///a,6380"); }),
            "expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got '6380')");
}

TEST(FileModeTest, ParsesAndFormats) {
  EXPECT_EQ(ParseFileMode("0660"), 0660u);
  EXPECT_EQ(ParseFileMode("660"), 0660u);
  EXPECT_EQ(ParseFileMode("0o600"), 0600u);
  EXPECT_EQ(ParseFileMode("0777"), 0777u);
  EXPECT_EQ(FormatFileMode(0660), "0660");
  EXPECT_EQ(FormatFileMode(07), "0007");
  EXPECT_EQ(ErrorOf([] { ParseFileMode("0680"); }),
            "expected permission bits in octal like 0660 or 0600 (got '0680')");
  EXPECT_EQ(ErrorOf([] { ParseFileMode("rw-rw----"); }),
            "expected permission bits in octal like 0660 or 0600 (got 'rw-rw----')");
  EXPECT_EQ(ErrorOf([] { ParseFileMode("4755"); }),
            "setuid, setgid and sticky bits are not allowed: expected permission bits in octal "
            "like 0660 or 0600 (got '4755')");
}

// The fields of UpstreamUrl the plain forms set (the sentinel ones stay empty).
struct UrlWant {
  UpstreamScheme scheme;
  std::string host;
  uint16_t port;
  std::string path;
  std::string username;
  std::string password;
  int64_t db;
};

struct UrlCase {
  const char* text;
  UrlWant want;
  const char* round_trip;  // ToString(false)
};

TEST(UpstreamUrlTest, Forms) {
  using S = UpstreamScheme;
  const UrlCase cases[] = {
      {"redis://127.0.0.1:6379",
       {S::kRedis, "127.0.0.1", 6379, "", "", "", 0},
       "redis://127.0.0.1:6379"},
      {"redis://localhost",
       {S::kRedis, "localhost", 6379, "", "", "", 0},
       "redis://localhost:6379"},
      {"redis://h:6379/", {S::kRedis, "h", 6379, "", "", "", 0}, "redis://h:6379"},
      {"redis://user:p%40ss@host:7000/3",
       {S::kRedis, "host", 7000, "", "user", "p@ss", 3},
       "redis://user:p%40ss@host:7000/3"},
      // redis-cli: a userinfo without ':' is a password for the default user.
      {"redis://secret@host",
       {S::kRedis, "host", 6379, "", "", "secret", 0},
       "redis://secret@host:6379"},
      {"redis://:secret@host",
       {S::kRedis, "host", 6379, "", "", "secret", 0},
       "redis://secret@host:6379"},
      {"redis://user:@host",
       {S::kRedis, "host", 6379, "", "user", "", 0},
       "redis://user:@host:6379"},
      {"rediss://cache.example.com:6380",
       {S::kRediss, "cache.example.com", 6380, "", "", "", 0},
       "rediss://cache.example.com:6380"},
      {"redis://[::1]:6379/0", {S::kRedis, "::1", 6379, "", "", "", 0}, "redis://[::1]:6379"},
      {"redis://[2001:db8::7]",
       {S::kRedis, "2001:db8::7", 6379, "", "", "", 0},
       "redis://[2001:db8::7]:6379"},
      {"REDIS://H:1", {S::kRedis, "H", 1, "", "", "", 0}, "redis://H:1"},
      {"redis://h?db=4", {S::kRedis, "h", 6379, "", "", "", 4}, "redis://h:6379/4"},
      {"unix:///var/run/redis.sock",
       {S::kUnix, "", 0, "/var/run/redis.sock", "", "", 0},
       "unix:///var/run/redis.sock"},
      {"unix:///tmp/r.sock?db=2",
       {S::kUnix, "", 0, "/tmp/r.sock", "", "", 2},
       "unix:///tmp/r.sock?db=2"},
      {"unix:/tmp/r.sock", {S::kUnix, "", 0, "/tmp/r.sock", "", "", 0}, "unix:///tmp/r.sock"},
      {"unix://u:pw@/tmp/r.sock",
       {S::kUnix, "", 0, "/tmp/r.sock", "u", "pw", 0},
       "unix://u:pw@/tmp/r.sock"},
  };
  for (const UrlCase& c : cases) {
    SCOPED_TRACE(c.text);
    UpstreamUrl got = ParseUpstreamUrl(c.text);
    EXPECT_EQ(got.scheme, c.want.scheme);
    EXPECT_EQ(got.host, c.want.host);
    EXPECT_EQ(got.port, c.want.port);
    EXPECT_EQ(got.path, c.want.path);
    EXPECT_EQ(got.username, c.want.username);
    EXPECT_EQ(got.password, c.want.password);
    EXPECT_EQ(got.db, c.want.db);
    EXPECT_TRUE(got.sentinels.empty());
    EXPECT_EQ(got.ToString(false), c.round_trip);
    EXPECT_EQ(ParseUpstreamUrl(got.ToString(false)), got);
  }
}

TEST(UpstreamUrlTest, SentinelForms) {
  UpstreamUrl u = ParseUpstreamUrl("redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster");
  EXPECT_EQ(u.scheme, UpstreamScheme::kSentinel);
  EXPECT_TRUE(u.IsSentinel());
  ASSERT_EQ(u.sentinels.size(), 2u);
  EXPECT_EQ(u.sentinels[0], (HostPort{"10.0.0.1", 26379}));
  EXPECT_EQ(u.sentinels[1], (HostPort{"10.0.0.2", 26380}));
  EXPECT_EQ(u.master_name, "mymaster");
  EXPECT_EQ(u.db, 0);
  EXPECT_TRUE(u.username.empty());
  EXPECT_TRUE(u.password.empty());
  EXPECT_EQ(u.ToString(), "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/mymaster");

  // The userinfo is the master's (ioredis password / go-redis Password); ports default to
  // 26379; the database follows the master name.
  u = ParseUpstreamUrl("REDIS+SENTINEL://app:p%40ss@s1,[::1],s3:7000/my%2Dmaster/3");
  ASSERT_EQ(u.sentinels.size(), 3u);
  EXPECT_EQ(u.sentinels[0], (HostPort{"s1", 26379}));
  EXPECT_EQ(u.sentinels[1], (HostPort{"::1", 26379}));
  EXPECT_EQ(u.sentinels[2], (HostPort{"s3", 7000}));
  EXPECT_EQ(u.master_name, "my-master");
  EXPECT_EQ(u.username, "app");
  EXPECT_EQ(u.password, "p@ss");
  EXPECT_EQ(u.db, 3);
  EXPECT_EQ(u.ToString(), "redis+sentinel://app:***@s1:26379,[::1]:26379,s3:7000/my-master/3");
  EXPECT_EQ(ParseUpstreamUrl(u.ToString(false)), u);

  u = ParseUpstreamUrl("redis+sentinel://secret@h/m?db=2");
  EXPECT_EQ(u.password, "secret");
  EXPECT_TRUE(u.username.empty());
  EXPECT_EQ(u.db, 2);
  EXPECT_EQ(u.ToString(), "redis+sentinel://***@h:26379/m/2");
  EXPECT_EQ(ParseUpstreamUrl("redis+sentinel://h:1/m/").db, 0);
}

TEST(UpstreamUrlTest, SentinelRejects) {
  const std::pair<const char*, std::string> cases[] = {
      {"redis+sentinel://", "invalid URL: missing sentinel address"},
      {"redis+sentinel:///m", "invalid URL: missing sentinel address"},
      {"redis+sentinel://h:26379",
       "invalid URL: missing the master name (redis+sentinel://HOST:PORT/MASTER)"},
      {"redis+sentinel://h:26379/", "invalid URL: missing the master name "
                                    "(redis+sentinel://HOST:PORT/MASTER)"},
      {"redis+sentinel://a,,b/m", "invalid URL: empty sentinel address (a stray ',')"},
      {"redis+sentinel://a:0/m", "invalid URL: sentinel port 0 (got 'a:0')"},
      {"redis+sentinel://a:x/m",
       "invalid URL: sentinel port must be a number between 0 and 65535 (got 'x')"},
      {"redis+sentinel://::1/m",
       "invalid URL: sentinel IPv6 addresses need brackets, like [::1]:6380 (got '::1')"},
      {"redis+sentinel://h/m/x",
       "invalid URL: expected /DB, a database number, after the master name (got 'x')"},
      {"redis+sentinel://h/m/1?db=2", "invalid URL: the database is given twice"},
      {"redis+sentinel://h/m?sentinelPassword=x",
       "invalid URL: unsupported query parameter 'sentinelPassword' (only db is supported; the "
       "sentinels' credentials are set in upstream_sentinel)"},
      {"redis+sentinel://h/m#f", "invalid URL: unexpected '#' fragment"},
      {"redis+sentinel://u:p%zz@h/m", "invalid URL: bad percent escape in the password"},
      {"redis+sentinel://h/a%20b",
       "invalid URL: the master name has spaces or control characters"},
  };
  for (const auto& [text, error] : cases) {
    EXPECT_EQ(ErrorOf([&] { ParseUpstreamUrl(text); }), error) << text;
  }
  EXPECT_EQ(ErrorOf([] { ParseUpstreamUrl("redis+sentinel://u:hunter2@h:0/m"); }).find("hunter2"),
            std::string::npos);
}

TEST(UpstreamUrlTest, RedactsPassword) {
  EXPECT_EQ(ParseUpstreamUrl("redis://user:p%40ss@host:7000/3").ToString(),
            "redis://user:***@host:7000/3");
  EXPECT_EQ(ParseUpstreamUrl("redis://secret@host").ToString(), "redis://***@host:6379");
  EXPECT_EQ(ParseUpstreamUrl("redis://host").ToString(), "redis://host:6379");
}

TEST(UpstreamUrlTest, Rejects) {
  const std::string forms =
      "invalid URL: expected redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://..., "
      "unix:///PATH or redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]";
  const std::pair<const char*, std::string> cases[] = {
      {"", forms},
      {"127.0.0.1:6379", forms},
      {"localhost:6379", forms},
      {"redis://ho st", forms},
      {"redis://[::1", forms},
      {"http://x:1", "invalid URL: unsupported scheme 'http' (expected redis, rediss, unix or "
                     "redis+sentinel)"},
      {"redis://", "invalid URL: missing host"},
      {"redis://:6379", "invalid URL: missing host"},
      {"redis://h:0", "invalid URL: port must be a number between 1 and 65535 (got '0')"},
      {"redis://h:70000", "invalid URL: port must be a number between 1 and 65535 (got '70000')"},
      {"redis://h:x", "invalid URL: port must be a number between 1 and 65535 (got '')"},
      {"redis://h/abc",
       "invalid URL: expected /DB, a database number, after the address (got "
       "'abc')"},
      {"redis://h/-1",
       "invalid URL: expected /DB, a database number, after the address (got "
       "'-1')"},
      {"redis://h/99999999999",
       "invalid URL: expected /DB, a database number, after the address "
       "(got '99999999999')"},
      {"redis://h/1?db=2", "invalid URL: the database is given twice"},
      {"redis://h?timeout=1",
       "invalid URL: unsupported query parameter 'timeout' (only db is "
       "supported)"},
      {"redis://h#x", "invalid URL: unexpected '#' fragment"},
      {"unix://tmp/r.sock",
       "invalid URL: a unix socket URL has no host; write "
       "unix:///ABSOLUTE/PATH (got host 'tmp')"},
      {"unix://", "invalid URL: missing socket path"},
      {"unix:r.sock", "invalid URL: the socket path must be absolute (got 'r.sock')"},
  };
  for (const auto& [text, error] : cases) {
    EXPECT_EQ(ErrorOf([&] { ParseUpstreamUrl(text); }), error) << text;
  }
  // Errors never repeat a password.
  EXPECT_EQ(ErrorOf([] { ParseUpstreamUrl("redis://u:hunter2@h:0"); }).find("hunter2"),
            std::string::npos);
}

TEST(HistoryTierTest, Parses) {
  EXPECT_EQ(ParseHistoryTier("10s for 1h"), (HistoryTier{seconds(10), hours(1)}));
  EXPECT_EQ(ParseHistoryTier("  1m   for 24h "), (HistoryTier{minutes(1), hours(24)}));
  EXPECT_EQ(ParseHistoryTier("1s for 1s"), (HistoryTier{seconds(1), seconds(1)}));
  EXPECT_EQ(ErrorOf([] { ParseHistoryTier("10s during 1h"); }),
            "expected RESOLUTION for RETENTION like 10s for 1h (got '10s during 1h')");
  EXPECT_EQ(ErrorOf([] { ParseHistoryTier("10s for 5s"); }),
            "the retention must be a multiple of the resolution (got 10s for 5s)");
}

TEST(ScalarTest, NumbersBoolsAndEnums) {
  EXPECT_EQ(ParseInteger("-42"), -42);
  EXPECT_EQ(ErrorOf([] { ParseInteger("4 2"); }), "expected an integer (got '4 2')");
  EXPECT_EQ(ErrorOf([] { ParseInteger("99999999999999999999"); }),
            "integer too large (got '99999999999999999999')");
  EXPECT_EQ(ParseNumber("0.8"), 0.8);
  EXPECT_EQ(ParseNumber("1e-3"), 0.001);
  EXPECT_EQ(ErrorOf([] { ParseNumber("nan"); }), "expected a number (got 'nan')");
  EXPECT_EQ(ErrorOf([] { ParseNumber("inf"); }), "expected a number (got 'inf')");
  EXPECT_TRUE(ParseBool("TRUE"));
  EXPECT_FALSE(ParseBool("False"));
  EXPECT_EQ(ErrorOf([] { ParseBool("on"); }), "expected true or false (got 'on')");
  EXPECT_EQ(ParseLogLevel("WARNING"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("trace"), LogLevel::kTrace);
  EXPECT_EQ(ParseLogFormat("Json"), LogFormat::kJson);
  EXPECT_EQ(ParseAlertMetric("p99_latency"), AlertMetric::kP99Latency);
  EXPECT_EQ(ParseSeverity("critical"), Severity::kCritical);
  EXPECT_EQ(ParseSanitizeMode("redact"), SanitizeMode::kRedact);
  EXPECT_EQ(ToString(AlertMetric::kJobFailureRate), "job_failure_rate");
  EXPECT_EQ(ToString(LogLevel::kWarn), "warn");
}

TEST(ScalarTest, QuoteEscapesAndTruncates) {
  EXPECT_EQ(Quote("a\tb\n\x01"), "'a\\tb\\n\\x01'");
  EXPECT_EQ(Quote(std::string(100, 'x')), "'" + std::string(64, 'x') + "...'");
}

TEST(ExpandTest, Forms) {
  EnvGetter env = MapEnv({{"A", "1"}, {"EMPTY", ""}});
  EXPECT_EQ(ExpandVariables("x${A}y", env), "x1y");
  EXPECT_EQ(ExpandVariables("${A}${A}", env), "11");
  EXPECT_EQ(ExpandVariables("${B:-two}", env), "two");
  EXPECT_EQ(ExpandVariables("${EMPTY:-dflt}", env), "dflt");
  EXPECT_EQ(ExpandVariables("${EMPTY}", env), "");
  EXPECT_EQ(ExpandVariables("${B:-}", env), "");
  EXPECT_EQ(ExpandVariables("${B:-a:-b}", env), "a:-b");
  EXPECT_EQ(ExpandVariables("$${A}", env), "${A}");
  EXPECT_EQ(ExpandVariables("pa$$word $A $", env), "pa$$word $A $");
  EXPECT_EQ(ErrorOf([&] { ExpandVariables("${B}", env); }),
            "environment variable 'B' is not set (use ${B:-default} for a default)");
  EXPECT_EQ(ErrorOf([&] { ExpandVariables("${}", env); }),
            "invalid variable name '' (expected letters, digits and '_', as in ${NAME} or "
            "${NAME:-DEFAULT})");
  std::vector<std::string> unset;
  EXPECT_EQ(ExpandVariables("${RESPSCOPE_ADMIN_TOKEN}", env, &unset), "");
  EXPECT_EQ(unset, std::vector<std::string>{"RESPSCOPE_ADMIN_TOKEN"});
}

TEST(EnvOverrideTest, AppliesEachVariable) {
  Config c;
  ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_UPSTREAM", "rediss://db:7000"},
                               {"RESPSCOPE_LISTEN", "0.0.0.0:7001"},
                               {"RESPSCOPE_ADMIN", "[::1]:7002"},
                               {"RESPSCOPE_ADMIN_TOKEN", "tok"}}));
  EXPECT_EQ(c.upstream.ToString(), "rediss://db:7000");
  EXPECT_EQ(c.listen.at(0).tcp, (HostPort{"0.0.0.0", 7001}));
  ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_LISTEN", "0.0.0.0:7001,unix:///run/r.sock"}}));
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[1].unix_path, "/run/r.sock");
  EXPECT_EQ(c.admin.listen, (HostPort{"::1", 7002}));
  EXPECT_EQ(c.admin.token, "tok");
  EXPECT_EQ(c.origins.upstream, "RESPSCOPE_UPSTREAM");
  EXPECT_EQ(c.origins.listen, "RESPSCOPE_LISTEN");
  EXPECT_EQ(c.origins.admin_listen, "RESPSCOPE_ADMIN");
  EXPECT_EQ(c.origins.admin_token, "RESPSCOPE_ADMIN_TOKEN");
}

TEST(EnvOverrideTest, EmptyVariablesAreIgnored) {
  Config c;
  c.admin.token = "from-file";
  ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_ADMIN_TOKEN", ""}, {"RESPSCOPE_LISTEN", ""}}));
  EXPECT_EQ(c.admin.token, "from-file");
  EXPECT_EQ(c.listen.at(0).tcp, (HostPort{"127.0.0.1", 6380}));
  EXPECT_EQ(c.origins.listen, "default");
}

TEST(EnvOverrideTest, ErrorsNameTheVariable) {
  Config c;
  EXPECT_EQ(ErrorOf([&] {
              ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_LISTEN", "x"}}));
            }),
            "RESPSCOPE_LISTEN: expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got 'x')");
  EXPECT_EQ(ErrorOf([&] {
              ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_UPSTREAM", "ftp://a"}}));
            }),
            "RESPSCOPE_UPSTREAM: invalid URL: unsupported scheme 'ftp' (expected redis, rediss, "
            "unix or redis+sentinel)");
  EXPECT_EQ(ErrorOf([&] {
              ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_ADMIN", "[::1]"}}));
            }),
            "RESPSCOPE_ADMIN: expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got "
            "'[::1]')");
  EXPECT_EQ(ErrorOf([&] {
              ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_ADMIN_TOKEN", "tok\n"}}));
            }),
            "RESPSCOPE_ADMIN_TOKEN: the token contains a line break (a secret file with a "
            "trailing newline?)");
}

TEST(ValuesTest, TlsVersion) {
  EXPECT_EQ(ParseTlsVersion("1.2"), TlsVersion::k12);
  EXPECT_EQ(ParseTlsVersion("1.3"), TlsVersion::k13);
  EXPECT_EQ(ParseTlsVersion("TLSv1.3"), TlsVersion::k13);
  EXPECT_EQ(ParseTlsVersion("tlsv1.2"), TlsVersion::k12);
  EXPECT_THROW(ParseTlsVersion("1.1"), ValueError);
  EXPECT_THROW(ParseTlsVersion("1"), ValueError);
  EXPECT_THROW(ParseTlsVersion(""), ValueError);
  EXPECT_EQ(ToString(TlsVersion::k13), "1.3");
}

}  // namespace
}  // namespace respscope::config
