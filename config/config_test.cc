// The YAML loader: every invalid input gives its exact message with line and column; valid
// inputs in every unit; ${VAR} expansion; the example and minimal files; Validate.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

#include "config/loader.h"
#include "config/values.h"

namespace respscope::config {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

const EnvGetter kNoEnv = MapEnv({});

struct InvalidCase {
  const char* name;
  const char* yaml;
  const char* error;  // what(), exactly
};

// Columns count from 1; for a flow item the column is where the value starts.
const InvalidCase kInvalid[] = {
    {"UnknownTopLevelKey", "limts:\n  max_clients: 5\n",
     "t.yaml:1:1: unknown key 'limts' (did you mean 'limits'?)"},
    {"UnknownNestedKey", "limits:\n  max_client: 5\n",
     "t.yaml:2:3: unknown key 'max_client' in limits (did you mean 'max_clients'?)"},
    {"UnknownKeyListsExpected", "logging:\n  colour: true\n",
     "t.yaml:2:3: unknown key 'colour' in logging (expected one of level, format)"},
    {"BritishSpelling", "sanitisation:\n  mode: hash\n",
     "t.yaml:1:1: unknown key 'sanitisation' (did you mean 'sanitization'?)"},
    {"UnknownKeyCase", "Listen: 127.0.0.1:1\n",
     "t.yaml:1:1: unknown key 'Listen' (did you mean 'listen'?)"},
    {"UnknownKeyInListItem", "alerts:\n  - {name: a, metric: hit_rate, below: 0.5, fro: 5m}\n",
     "t.yaml:2:45: unknown key 'fro' in alerts[0] (did you mean 'for'?)"},
    {"DuplicateKey", "listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n",
     "t.yaml:2:1: duplicate key 'listen' (first at line 1)"},
    {"MergeKey", "limits:\n  <<: {max_clients: 5}\n",
     "t.yaml:2:3: merge keys ('<<') are not supported in limits"},
    {"SectionNotAMapping", "limits: 5\n", "t.yaml:1:9: limits: expected a mapping (got '5')"},
    {"ListForInteger", "threads: [1, 2]\n",
     "t.yaml:1:10: threads: expected an integer (got a list)"},
    {"NotAnInteger", "threads: two\n", "t.yaml:1:10: threads: expected an integer (got 'two')"},
    {"FractionForInteger", "limits:\n  max_clients: 1.5\n",
     "t.yaml:2:16: limits.max_clients: expected an integer (got '1.5')"},
    {"ThreadsOutOfRange", "threads: 0\n",
     "t.yaml:1:10: threads: value out of range (must be between 1 and 256, got 0)"},
    {"NegativeMaxClients", "limits:\n  max_clients: -5\n",
     "t.yaml:2:16: limits.max_clients: value out of range (must be between 1 and 1000000, got -5)"},
    {"BadDuration", "limits:\n  connect_timeout: abc\n",
     "t.yaml:2:20: limits.connect_timeout: expected a duration like 10ms, 2s, 5m (got 'abc')"},
    {"DurationWithoutUnit", "limits:\n  drain_timeout: 10\n",
     "t.yaml:2:18: limits.drain_timeout: expected a duration like 10ms, 2s, 5m (got '10')"},
    {"DurationUnknownUnit", "limits:\n  connect_timeout: 2sec\n",
     "t.yaml:2:20: limits.connect_timeout: expected a duration like 10ms, 2s, 5m (got '2sec')"},
    {"DurationWithSpace", "bullmq:\n  inspector_interval: 5 s\n",
     "t.yaml:2:23: bullmq.inspector_interval: expected a duration like 10ms, 2s, 5m (got '5 s')"},
    {"EmptyDuration", "limits:\n  connect_timeout:\n",
     "t.yaml:2:3: limits.connect_timeout: expected a duration like 10ms, 2s, 5m (got nothing)"},
    {"DurationOutOfRange", "limits:\n  connect_timeout: 10m\n",
     "t.yaml:2:20: limits.connect_timeout: value out of range (must be between 1ms and 5m, got "
     "10m)"},
    {"BadSizeDecimalUnit", "limits:\n  max_inflight_bytes_per_client: 8MB\n",
     "t.yaml:2:34: limits.max_inflight_bytes_per_client: expected a size like 512KiB, 8MiB (got "
     "'8MB')"},
    {"FractionalBytes", "sanitization:\n  max_value_size: 1.5\n",
     "t.yaml:2:19: sanitization.max_value_size: expected a size like 512KiB, 8MiB (got '1.5')"},
    {"SizeOutOfRange", "limits:\n  max_inflight_bytes_per_client: 2GiB\n",
     "t.yaml:2:34: limits.max_inflight_bytes_per_client: value out of range (must be between "
     "4KiB and 1GiB, got 2GiB)"},
    {"InspectorIntervalTooShort", "bullmq:\n  inspector_interval: 100ms\n",
     "t.yaml:2:23: bullmq.inspector_interval: value out of range (must be between 500ms and 1h, "
     "got 100ms)"},
    {"AdminMaxConnectionsZero", "admin:\n  max_connections: 0\n",
     "t.yaml:2:20: admin.max_connections: value out of range (must be between 1 and 100000, got "
     "0)"},
    {"AdminHeaderTimeoutTooShort", "admin:\n  header_timeout: 10ms\n",
     "t.yaml:2:19: admin.header_timeout: value out of range (must be between 100ms and 5m, got "
     "10ms)"},
    {"SampleRateOutOfRange", "sanitization:\n  sample_rate: 1.5\n",
     "t.yaml:2:16: sanitization.sample_rate: value out of range (must be between 0 and 1, got "
     "1.5)"},
    {"SampleRateNotANumber", "sanitization:\n  sample_rate: half\n",
     "t.yaml:2:16: sanitization.sample_rate: expected a number (got 'half')"},
    {"YesIsNotABool", "sanitization:\n  capture_values: yes\n",
     "t.yaml:2:19: sanitization.capture_values: expected true or false (got 'yes')"},
    {"BadEnum", "sanitization:\n  mode: sha256\n",
     "t.yaml:2:9: sanitization.mode: expected one of hash, redact (got 'sha256')"},
    {"BadLogLevel", "logging: {level: verbose}\n",
     "t.yaml:1:18: logging.level: expected one of trace, debug, info, warn, error (got "
     "'verbose')"},
    {"InvalidGlob", "sanitization:\n  sensitive_key_patterns: [\"auth:*\", \"user:[abc\"]\n",
     "t.yaml:2:38: sanitization.sensitive_key_patterns[1]: invalid glob 'user:[abc' (unbalanced "
     "'[')"},
    {"EmptyGlob", "sanitization:\n  exclude_key_patterns: [\"\"]\n",
     "t.yaml:2:26: sanitization.exclude_key_patterns[0]: expected a glob like 'session:*' (got "
     "nothing)"},
    {"GlobListNotAList", "sanitization:\n  exclude_key_patterns: \"temp:*\"\n",
     "t.yaml:2:25: sanitization.exclude_key_patterns: expected a list (got 'temp:*')"},
    {"InvalidRegex", "key_patterns:\n  rules:\n    - {match: \"re:user:(\", name: x}\n",
     "t.yaml:3:15: key_patterns.rules[0].match: invalid regex 'user:(' (mismatched '(' and ')')"},
    {"RegexNothingToRepeat", "key_patterns:\n  rules:\n    - {match: \"re:*user\", name: x}\n",
     "t.yaml:3:15: key_patterns.rules[0].match: invalid regex '*user' (nothing to repeat before "
     "'*'; for a glob, drop the 're:')"},
    {"RegexUnbalancedBracket", "key_patterns:\n  rules:\n    - {match: \"re:user:[a\", name: x}\n",
     "t.yaml:3:15: key_patterns.rules[0].match: invalid regex 'user:[a' (unexpected character "
     "within '[...]')"},
    {"EmptyRegex", "key_patterns:\n  rules:\n    - {match: \"re:\", name: x}\n",
     "t.yaml:3:15: key_patterns.rules[0].match: empty regex after 're:'"},
    {"RuleGlobEmptyClass", "key_patterns:\n  rules:\n    - {match: \"user:[]\", name: x}\n",
     "t.yaml:3:15: key_patterns.rules[0].match: invalid glob 'user:[]' (empty '[]' matches "
     "nothing)"},
    {"RuleMissingName", "key_patterns:\n  rules:\n    - {match: \"user:*\"}\n",
     "t.yaml:3:7: key_patterns.rules[0]: missing required key 'name'"},
    {"RuleNameReserved", "key_patterns:\n  rules:\n    - {match: \"x:*\", name: other}\n",
     "t.yaml:3:28: key_patterns.rules[0].name: 'other' is reserved for the keys beyond "
     "max_patterns"},
    {"RulesNotAList", "key_patterns:\n  rules: {match: a}\n",
     "t.yaml:2:10: key_patterns.rules: expected a list (got a mapping)"},
    {"MaxPatternsZero", "key_patterns: {max_patterns: 0}\n",
     "t.yaml:1:30: key_patterns.max_patterns: value out of range (must be between 1 and 100000, "
     "got 0)"},
    {"AlertAboveAndBelow", "alerts:\n  - {name: a, metric: hit_rate, above: 0.5, below: 0.2}\n",
     "t.yaml:2:52: alerts[0].below: give either 'above' or 'below', not both"},
    {"AlertNoThreshold", "alerts:\n  - {name: a, metric: hit_rate}\n",
     "t.yaml:2:5: alerts[0]: missing the threshold: 'above' or 'below'"},
    {"AlertMissingMetric", "alerts:\n  - {name: a, below: 0.5}\n",
     "t.yaml:2:5: alerts[0]: missing required key 'metric'"},
    {"AlertPercentage", "alerts:\n  - {name: a, metric: hit_rate, below: 80}\n",
     "t.yaml:2:40: alerts[0].below: value out of range (must be between 0 and 1, got 80; rates "
     "are fractions, 0.8 is 80%)"},
    {"AlertRateAboveOne", "alerts:\n  - {name: a, metric: error_rate, above: 150}\n",
     "t.yaml:2:42: alerts[0].above: value out of range (must be between 0 and 1, got 150)"},
    {"AlertBadMetric", "alerts:\n  - {name: a, metric: latency, above: 1}\n",
     "t.yaml:2:23: alerts[0].metric: expected one of hit_rate, error_rate, p99_latency, "
     "job_failure_rate, queue_backlog, stalled_jobs, slow_jobs, upstream_down, "
     "memory_used_ratio, insight (got 'latency')"},
    {"AlertLatencyNeedsDuration", "alerts:\n  - {name: a, metric: p99_latency, above: 0.05}\n",
     "t.yaml:2:43: alerts[0].above: expected a duration like 10ms, 2s, 5m (got '0.05')"},
    {"AlertPatternOnQueueMetric",
     "alerts:\n  - {name: a, metric: job_failure_rate, pattern: \"*\", above: 0.1}\n",
     "t.yaml:2:50: alerts[0].pattern: job_failure_rate alerts select queues: use 'queue'"},
    {"AlertQueueOnPatternMetric",
     "alerts:\n  - {name: a, metric: hit_rate, queue: q, below: 0.5}\n",
     "t.yaml:2:40: alerts[0].queue: only job alerts (job_failure_rate, queue_backlog, "
     "stalled_jobs, slow_jobs) select queues: use 'pattern'"},
    {"AlertKindOnlyForInsight", "alerts:\n  - {name: a, metric: hit_rate, kind: x, below: 0.5}\n",
     "t.yaml:2:39: alerts[0].kind: only insight alerts select a 'kind'"},
    {"AlertLatencyPerPattern",
     "alerts:\n  - {name: a, metric: p99_latency, pattern: \"user:*\", above: 50ms}\n",
     "t.yaml:2:45: alerts[0].pattern: error_rate and p99_latency alerts cover all commands; "
     "'pattern' selects key patterns for hit_rate alerts only (leave it out or write \"*\")"},
    {"AlertBadSeverity", "alerts:\n  - {name: a, metric: hit_rate, below: 0.5, severity: page}\n",
     "t.yaml:2:55: alerts[0].severity: expected one of info, warning, error, critical (got "
     "'page')"},
    {"NotificationBadType", "notifications:\n  - {name: a, type: email, url: \"http://h/\"}\n",
     "t.yaml:2:21: notifications[0].type: expected one of webhook, slack (got 'email')"},
    {"NotificationNoUrl", "notifications:\n  - {name: a, type: webhook}\n",
     "t.yaml:2:5: notifications[0]: missing required key 'url'"},
    {"NotificationNotHttp", "notifications:\n  - {name: a, url: \"ftp://h/\"}\n",
     "t.yaml:2:20: notifications[0].url: expected an http:// or https:// URL (got 'ftp://h/')"},
    {"NotificationSecretInsteadOfVariable",
     "notifications:\n  - {name: a, url: \"http://h/\", hmac_secret_env: \"s3cr3t!\"}\n",
     "t.yaml:2:50: notifications[0].hmac_secret_env: expected an environment variable name "
     "(letters, digits, '_'), not the secret itself"},
    {"NotificationSlackWithSecret",
     "notifications:\n  - {name: a, type: slack, url: \"https://h/\", hmac_secret_env: K}\n",
     "t.yaml:2:64: notifications[0].hmac_secret_env: hmac_secret_env is for webhook channels "
     "(Slack does not check it)"},
    {"NotificationDuplicate",
     "notifications:\n  - {name: a, url: \"http://h/\"}\n  - {name: a, url: \"http://g/\"}\n",
     "t.yaml:3:12: notifications[1].name: duplicate notification channel name 'a' (first at line "
     "2)"},
    {"InsightsUnknownKey", "insights:\n  windw: 5s\n",
     "t.yaml:2:3: unknown key 'windw' in insights (did you mean 'window'?)"},
    {"InsightsSlowJobsOrder", "insights:\n  slow_job: 2m\n  very_slow_job: 1m\n",
     "t.yaml:2:3: insights: very_slow_job (1m) is shorter than slow_job (2m)"},
    {"AlertBadName", "alerts:\n  - {name: \"low hit\", metric: hit_rate, below: 0.5}\n",
     "t.yaml:2:12: alerts[0].name: expected at most 64 letters, digits, '_', '-' or '.' (got "
     "'low hit')"},
    {"AlertDuplicateName",
     "alerts:\n  - {name: a, metric: hit_rate, below: 0.5}\n"
     "  - {name: a, metric: error_rate, above: 0.1}\n",
     "t.yaml:3:12: alerts[1].name: duplicate alert name 'a' (first at line 2)"},
    {"ListenWithoutPort", "listen: localhost\n",
     "t.yaml:1:9: listen: expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got "
     "'localhost')"},
    {"ListenIpv6WithoutBrackets", "listen: \"::1:6380\"\n",
     "t.yaml:1:9: listen: IPv6 addresses need brackets, like [::1]:6380 (got '::1:6380')"},
    {"ListenPortOutOfRange", "listen: 127.0.0.1:70000\n",
     "t.yaml:1:9: listen: port must be a number between 0 and 65535 (got '70000')"},
    {"ListenUnixRelative", "listen: unix:r.sock\n",
     "t.yaml:1:9: listen: the socket path must be absolute (got 'r.sock')"},
    {"ListenListDuplicate", "listen: [unix:///a.sock, 127.0.0.1:1, \"unix:/a.sock\"]\n",
     "t.yaml:1:39: listen[2]: listen address unix:///a.sock given twice"},
    {"ListenListEmpty", "listen: []\n", "t.yaml:1:9: listen: expected at least one listen address"},
    {"ListenUnixModeNotOctal", "listen_unix_mode: 0999\n",
     "t.yaml:1:19: listen_unix_mode: expected permission bits in octal like 0660 or 0600 (got "
     "'0999')"},
    {"AdminListenBadIpv4", "admin:\n  listen: 300.0.0.1:9190\n",
     "t.yaml:2:11: admin.listen: invalid host '300.0.0.1'"},
    {"UpstreamBadScheme", "upstream: http://x:1\n",
     "t.yaml:1:11: upstream: invalid URL: unsupported scheme 'http' (expected redis, rediss, "
     "unix or redis+sentinel)"},
    {"UpstreamWithoutScheme", "upstream: 127.0.0.1:6379\n",
     "t.yaml:1:11: upstream: invalid URL: expected redis://[USER:PASSWORD@]HOST[:PORT][/DB], "
     "rediss://..., unix:///PATH or redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]"},
    {"UpstreamBadDb", "upstream: redis://h:6379/x\n",
     "t.yaml:1:11: upstream: invalid URL: expected /DB, a database number, after the address "
     "(got 'x')"},
    // The password is not repeated.
    {"UpstreamBadPortHidesPassword", "upstream: redis://u:secret@h:99999\n",
     "t.yaml:1:11: upstream: invalid URL: port must be a number between 1 and 65535 (got "
     "'99999')"},
    {"TokenWithSpace", "admin:\n  token: \"a b\"\n",
     "t.yaml:2:10: admin.token: the token must be printable ASCII without spaces"},
    {"EnvUnset", "limits:\n  connect_timeout: ${CT}\n",
     "t.yaml:2:20: limits.connect_timeout: environment variable 'CT' is not set (use "
     "${CT:-default} for a default)"},
    {"EnvUnterminated", "upstream: ${REDIS_URL\n",
     "t.yaml:1:11: upstream: unterminated '${' (expected ${NAME} or ${NAME:-DEFAULT})"},
    {"EnvBadName", "threads: ${1X}\n",
     "t.yaml:1:10: threads: invalid variable name '1X' (expected letters, digits and '_', as in "
     "${NAME} or ${NAME:-DEFAULT})"},
    {"EnvExpandsToBadValue", "threads: ${THREADS:-many}\n",
     "t.yaml:1:10: threads: expected an integer (got 'many')"},
    {"HistoryTierSyntax", "analytics:\n  history: {fine: 10s}\n",
     "t.yaml:2:19: analytics.history.fine: expected RESOLUTION for RETENTION like 10s for 1h "
     "(got '10s')"},
    {"HistoryTierBadDuration", "analytics:\n  history: {fine: 10x for 1h}\n",
     "t.yaml:2:19: analytics.history.fine: expected a duration like 10ms, 2s, 5m (got '10x')"},
    {"HistorySubSecond", "analytics:\n  history: {fine: 500ms for 1h}\n",
     "t.yaml:2:19: analytics.history.fine: the resolution must be a whole number of seconds "
     "(got 500ms)"},
    {"HistoryRetentionNotMultiple", "analytics:\n  history: {fine: 7s for 1h}\n",
     "t.yaml:2:19: analytics.history.fine: the retention must be a multiple of the resolution "
     "(got 7s for 1h)"},
    {"HistoryTooManyPoints", "analytics:\n  history: {fine: 1s for 48h, coarse: 1m for 48h}\n",
     "t.yaml:2:19: analytics.history.fine: too many points (1s for 48h is 172800, at most "
     "100000)"},
    {"HistoryCoarseNotMultipleOfFine",
     "analytics:\n  history: {fine: 10s for 1h, coarse: 15s for 24h}\n",
     "t.yaml:2:39: analytics.history.coarse: the coarse resolution 15s must be a multiple of the "
     "fine resolution 10s"},
    {"HistoryCoarseShorterThanFine", "analytics:\n  history: {fine: 10s for 48h}\n",
     "t.yaml:2:19: analytics.history.fine: the coarse retention 24h must be at least the fine "
     "retention 48h"},
    {"BullmqPrefixTrailingColon", "bullmq:\n  prefixes: [\"bull:\"]\n",
     "t.yaml:2:14: bullmq.prefixes[0]: write the prefix without the trailing ':' (got 'bull:')"},
    {"BullmqNoPrefixes", "bullmq:\n  prefixes: []\n",
     "t.yaml:2:13: bullmq.prefixes: expected at least one prefix (set bullmq.enabled: false to "
     "turn job tracking off)"},
    {"YamlSyntaxError", "limits: {max_clients: 5\n",
     "t.yaml:2:1: YAML syntax error: end of map flow not found"},
    {"YamlBadIndentation", "limits:\n  max_clients: 5\n drain_timeout: 1s\n",
     "t.yaml:3:2: YAML syntax error: end of map not found"},
    {"TopLevelList", "- listen\n",
     "t.yaml:1:1: expected a mapping of settings at the top level (got a list)"},
    {"TwoDocuments", "threads: 1\n---\nthreads: 2\n",
     "t.yaml:3:1: expected a single YAML document (found a second one)"},
};

class InvalidConfigTest : public testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidConfigTest, GivesExactMessage) {
  const InvalidCase& c = GetParam();
  try {
    LoadConfigString(c.yaml, "t.yaml", kNoEnv);
    FAIL() << "loaded without error:\n" << c.yaml;
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), c.error) << c.yaml;
    EXPECT_EQ(e.where() + ": " + e.message(), std::string(e.what()));
  }
}

INSTANTIATE_TEST_SUITE_P(Loader, InvalidConfigTest, testing::ValuesIn(kInvalid),
                         [](const testing::TestParamInfo<InvalidCase>& info) {
                           return std::string(info.param.name);
                         });

TEST(LoaderTest, ListenForms) {
  Config c = LoadConfigString(
      "listen: [127.0.0.1:6380, unix:///var/run/respscope/respscope.sock]\n"
      "listen_unix_mode: 0600\n",
      "t.yaml", kNoEnv);
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].tcp, (HostPort{"127.0.0.1", 6380}));
  EXPECT_EQ(c.listen[1].unix_path, "/var/run/respscope/respscope.sock");
  EXPECT_EQ(c.listen_unix_mode, 0600u);
  c = LoadConfigString("listen: unix:///tmp/a.sock\n", "t.yaml", kNoEnv);
  ASSERT_EQ(c.listen.size(), 1u);
  EXPECT_TRUE(c.listen[0].IsUnix());
  EXPECT_EQ(c.listen_unix_mode, 0660u);  // the default
  c = LoadConfigString("listen: \"127.0.0.1:1,unix:///tmp/a.sock\"\n", "t.yaml", kNoEnv);
  EXPECT_EQ(c.listen.size(), 2u);
}

TEST(ValidateTest, UnixListenerChecks) {
  Config c = LoadConfigString(
      "listen: unix:///tmp/r.sock\nupstream: unix:///tmp/r.sock\n", "t.yaml", kNoEnv);
  try {
    Validate(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "t.yaml:2:11: upstream unix:///tmp/r.sock is respscope's own listen address "
              "unix:///tmp/r.sock (from t.yaml:1:9): it would proxy to itself");
  }
  c = LoadConfigString("listen: [0.0.0.0:7000, 127.0.0.1:7000]\n", "t.yaml", kNoEnv);
  try {
    Validate(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "t.yaml:1:9: listen 0.0.0.0:7000 and 127.0.0.1:7000 cannot both be bound");
  }
  // A Unix socket next to TCP, and a Unix socket alone, are fine (the admin port is not hit).
  c = LoadConfigString("listen: [127.0.0.1:7000, unix:///tmp/r.sock]\n", "t.yaml", kNoEnv);
  EXPECT_NO_THROW(Validate(c));
  c = LoadConfigString("listen: unix:///tmp/r.sock\n", "t.yaml", kNoEnv);
  EXPECT_NO_THROW(Validate(c));
}

TEST(LoaderTest, EmptyInputIsAllDefaults) {
  for (const char* text : {"", "# only a comment\n", "limits:\nanalytics:\n"}) {
    Config c = LoadConfigString(text, "t.yaml", kNoEnv);
    EXPECT_EQ(c.listen.at(0).tcp, (HostPort{"127.0.0.1", 6380}));
    EXPECT_EQ(c.upstream, UpstreamUrl{});
    EXPECT_EQ(c.upstream.ToString(), "redis://127.0.0.1:6379");
    EXPECT_EQ(c.admin.listen, (HostPort{"127.0.0.1", 9190}));
    EXPECT_EQ(c.threads, DefaultThreads());
    EXPECT_GE(c.threads, 1);
    EXPECT_LE(c.threads, 4);
    EXPECT_EQ(c.limits.max_clients, 10000u);
    EXPECT_EQ(c.limits.max_inflight_bytes_per_client, 8u * 1024 * 1024);
    EXPECT_EQ(c.limits.connect_timeout, seconds(2));
    EXPECT_EQ(c.limits.drain_timeout, seconds(10));
    EXPECT_EQ(c.limits.drain_idle_timeout, seconds(2));
    EXPECT_EQ(c.analytics.slow_command_threshold, milliseconds(10));
    EXPECT_EQ(c.analytics.top_keys, 20u);
    EXPECT_EQ(c.analytics.slowlog_size, 128u);
    EXPECT_EQ(c.admin.max_connections, 256u);
    EXPECT_EQ(c.admin.header_timeout, seconds(5));
    EXPECT_EQ(c.admin.idle_timeout, seconds(30));
    EXPECT_EQ(c.analytics.history.fine, (HistoryTier{seconds(10), hours(1)}));
    EXPECT_EQ(c.analytics.history.coarse, (HistoryTier{minutes(1), hours(24)}));
    EXPECT_TRUE(c.key_patterns.auto_patterns);
    EXPECT_EQ(c.key_patterns.max_patterns, 1000u);
    EXPECT_TRUE(c.key_patterns.rules.empty());
    EXPECT_EQ(
        c.sanitization.sensitive_key_patterns,
        (std::vector<std::string>{"auth:*", "session:*", "token:*", "password:*", "secret:*"}));
    EXPECT_EQ(c.sanitization.mode, SanitizeMode::kHash);
    EXPECT_FALSE(c.sanitization.capture_values);
    EXPECT_EQ(c.sanitization.max_value_size, 1024u);
    EXPECT_EQ(c.sanitization.max_key_length, 200u);
    EXPECT_TRUE(c.sanitization.exclude_key_patterns.empty());
    EXPECT_EQ(c.sanitization.sample_rate, 1.0);
    EXPECT_TRUE(c.bullmq.enabled);
    EXPECT_EQ(c.bullmq.prefixes, std::vector<std::string>{"bull"});
    EXPECT_EQ(c.bullmq.inspector_interval, seconds(5));
    EXPECT_TRUE(c.alerts.empty());
    EXPECT_EQ(c.logging.level, LogLevel::kInfo);
    EXPECT_EQ(c.logging.format, LogFormat::kAuto);
    EXPECT_TRUE(c.warnings.empty());
    EXPECT_EQ(c.origins.listen, "default");
  }
}

TEST(LoaderTest, FullConfigLoadsEveryValue) {
  const char* yaml = R"(
listen: "[::1]:7000"
upstream: rediss://app:s%3Acret@redis.internal:6390/2
threads: 3
admin: {listen: 0.0.0.0:9999, token: abc.DEF-123, protect_metrics: true, max_connections: 64,
        header_timeout: 2s, idle_timeout: 10s}
limits:
  max_clients: 500
  max_inflight_bytes_per_client: 512KiB
  connect_timeout: 1.5s
  drain_timeout: 0
  drain_idle_timeout: 250ms
analytics:
  slow_command_threshold: 500us
  top_keys: 0
  slowlog_size: 64
  history: {fine: 5s for 30m, coarse: 5m for 168h}
key_patterns:
  auto: false
  max_patterns: 50
  rules:
    - {match: "user:*:profile", name: "user:{id}:profile"}
    - {match: "re:^cache:v[0-9]+:.*$", name: "cache"}
sanitization:
  sensitive_key_patterns: ["pw:*"]
  mode: REDACT
  capture_values: True
  max_value_size: 2048
  max_key_length: 64
  exclude_key_patterns: ["temp:*", "debug:[a-z]?"]
  sample_rate: 0.25
bullmq:
  enabled: false
  prefixes: ["bull", "{bull}"]
  inspector_interval: 1m
alerts:
  - {name: low_hit_rate, metric: hit_rate, below: 0.8, for: 5m}
  - {name: jobs, metric: job_failure_rate, queue: "email*", above: 0.1, cooldown: 1h, severity: critical}
  - {name: slow, metric: p99_latency, pattern: "*", above: 50ms, severity: info}
  - {name: errors, metric: error_rate, above: 0.01}
logging: {level: warning, format: text}
)";
  Config c = LoadConfigString(yaml, "full.yaml", kNoEnv);
  EXPECT_EQ(c.listen.at(0).tcp, (HostPort{"::1", 7000}));
  EXPECT_EQ(c.origins.listen, "full.yaml:2:9");
  EXPECT_EQ(c.upstream.scheme, UpstreamScheme::kRediss);
  EXPECT_EQ(c.upstream.username, "app");
  EXPECT_EQ(c.upstream.password, "s:cret");
  EXPECT_EQ(c.upstream.host, "redis.internal");
  EXPECT_EQ(c.upstream.port, 6390);
  EXPECT_EQ(c.upstream.db, 2);
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.admin.listen, (HostPort{"0.0.0.0", 9999}));
  EXPECT_EQ(c.admin.token, "abc.DEF-123");
  EXPECT_TRUE(c.admin.protect_metrics);
  EXPECT_EQ(c.admin.max_connections, 64u);
  EXPECT_EQ(c.admin.header_timeout, seconds(2));
  EXPECT_EQ(c.admin.idle_timeout, seconds(10));
  EXPECT_EQ(c.limits.max_clients, 500u);
  EXPECT_EQ(c.limits.max_inflight_bytes_per_client, 512u * 1024);
  EXPECT_EQ(c.limits.connect_timeout, milliseconds(1500));
  EXPECT_EQ(c.limits.drain_timeout, seconds(0));
  EXPECT_EQ(c.limits.drain_idle_timeout, milliseconds(250));
  EXPECT_EQ(c.analytics.slow_command_threshold, microseconds(500));
  EXPECT_EQ(c.analytics.top_keys, 0u);
  EXPECT_EQ(c.analytics.slowlog_size, 64u);
  EXPECT_EQ(c.analytics.history.fine, (HistoryTier{seconds(5), minutes(30)}));
  EXPECT_EQ(c.analytics.history.coarse, (HistoryTier{minutes(5), hours(168)}));
  EXPECT_FALSE(c.key_patterns.auto_patterns);
  EXPECT_EQ(c.key_patterns.max_patterns, 50u);
  ASSERT_EQ(c.key_patterns.rules.size(), 2u);
  EXPECT_EQ(c.key_patterns.rules[0].kind, MatchKind::kGlob);
  EXPECT_EQ(c.key_patterns.rules[0].expression, "user:*:profile");
  EXPECT_EQ(c.key_patterns.rules[0].name, "user:{id}:profile");
  EXPECT_EQ(c.key_patterns.rules[1].kind, MatchKind::kRegex);
  EXPECT_EQ(c.key_patterns.rules[1].match, "re:^cache:v[0-9]+:.*$");
  EXPECT_EQ(c.key_patterns.rules[1].expression, "^cache:v[0-9]+:.*$");
  EXPECT_EQ(c.sanitization.sensitive_key_patterns, std::vector<std::string>{"pw:*"});
  EXPECT_EQ(c.sanitization.mode, SanitizeMode::kRedact);
  EXPECT_TRUE(c.sanitization.capture_values);
  EXPECT_EQ(c.sanitization.max_value_size, 2048u);
  EXPECT_EQ(c.sanitization.max_key_length, 64u);
  EXPECT_EQ(c.sanitization.exclude_key_patterns,
            (std::vector<std::string>{"temp:*", "debug:[a-z]?"}));
  EXPECT_EQ(c.sanitization.sample_rate, 0.25);
  EXPECT_FALSE(c.bullmq.enabled);
  EXPECT_EQ(c.bullmq.prefixes, (std::vector<std::string>{"bull", "{bull}"}));
  EXPECT_EQ(c.bullmq.inspector_interval, minutes(1));
  ASSERT_EQ(c.alerts.size(), 4u);
  const AlertRule& hit = c.alerts[0];
  EXPECT_EQ(hit.name, "low_hit_rate");
  EXPECT_EQ(hit.metric, AlertMetric::kHitRate);
  EXPECT_EQ(hit.pattern, "*");  // default selector
  EXPECT_EQ(hit.queue, "");
  EXPECT_EQ(hit.comparison, Comparison::kBelow);
  EXPECT_DOUBLE_EQ(hit.threshold, 0.8);
  EXPECT_EQ(hit.for_duration, minutes(5));
  EXPECT_EQ(hit.cooldown, minutes(30));  // the default of a warning
  EXPECT_EQ(hit.severity, Severity::kWarning);
  const AlertRule& jobs = c.alerts[1];
  EXPECT_EQ(jobs.metric, AlertMetric::kJobFailureRate);
  EXPECT_EQ(jobs.queue, "email*");
  EXPECT_EQ(jobs.pattern, "");
  EXPECT_EQ(jobs.comparison, Comparison::kAbove);
  EXPECT_EQ(jobs.for_duration, seconds(0));
  EXPECT_EQ(jobs.cooldown, hours(1));
  EXPECT_EQ(jobs.severity, Severity::kCritical);
  const AlertRule& slow = c.alerts[2];
  EXPECT_EQ(slow.metric, AlertMetric::kP99Latency);
  EXPECT_DOUBLE_EQ(slow.threshold, 0.05);  // seconds
  EXPECT_EQ(slow.pattern, "*");
  EXPECT_EQ(slow.cooldown, hours(1));  // the default of an info alert
  EXPECT_EQ(c.alerts[3].metric, AlertMetric::kErrorRate);
  EXPECT_EQ(c.logging.level, LogLevel::kWarn);
  EXPECT_EQ(c.logging.format, LogFormat::kText);
}

TEST(LoaderTest, QuotedScalarsConvertLikePlainOnes) {
  Config c = LoadConfigString("threads: \"2\"\nlimits: {connect_timeout: '3s'}\n", "t", kNoEnv);
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.limits.connect_timeout, seconds(3));
}

TEST(LoaderTest, ExpandsVariablesInEveryScalar) {
  EnvGetter env =
      MapEnv({{"REDIS_HOST", "cache.svc"}, {"THREADS", "3"}, {"EMPTY", ""}, {"TIMEOUT", "750ms"}});
  const char* yaml = R"(
upstream: redis://${REDIS_HOST}:${REDIS_PORT:-6390}
threads: ${THREADS}
limits:
  connect_timeout: ${TIMEOUT}
  drain_timeout: ${EMPTY:-4s}
key_patterns:
  rules:
    - {match: "price:*", name: "cost $${not_a_var} $HOME"}
bullmq:
  prefixes: ["${PREFIX:-bull}"]
)";
  Config c = LoadConfigString(yaml, "t.yaml", env);
  EXPECT_EQ(c.upstream.host, "cache.svc");
  EXPECT_EQ(c.upstream.port, 6390);
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.limits.connect_timeout, milliseconds(750));
  EXPECT_EQ(c.limits.drain_timeout, seconds(4));  // ":-" also replaces an empty value
  EXPECT_EQ(c.key_patterns.rules[0].name, "cost ${not_a_var} $HOME");
  EXPECT_EQ(c.bullmq.prefixes, std::vector<std::string>{"bull"});
  EXPECT_TRUE(c.warnings.empty());
}

TEST(LoaderTest, SetButEmptyVariableExpandsToEmpty) {
  Config c = LoadConfigString("admin: {token: \"${TOKEN}\"}\n", "t", MapEnv({{"TOKEN", ""}}));
  EXPECT_EQ(c.admin.token, "");
}

TEST(LoaderTest, UnsetAdminTokenVariableMeansNoTokenWithAWarning) {
  Config c = LoadConfigString("admin:\n  token: ${RESPSCOPE_ADMIN_TOKEN}\n", "t.yaml", kNoEnv);
  EXPECT_EQ(c.admin.token, "");
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_EQ(c.warnings[0],
            "t.yaml:2:10: admin.token: RESPSCOPE_ADMIN_TOKEN is not set, so the admin API needs "
            "no token");

  Config set = LoadConfigString("admin:\n  token: ${RESPSCOPE_ADMIN_TOKEN}\n", "t.yaml",
                                MapEnv({{"RESPSCOPE_ADMIN_TOKEN", "s3cret"}}));
  EXPECT_EQ(set.admin.token, "s3cret");
  EXPECT_TRUE(set.warnings.empty());
}

TEST(LoaderTest, OtherUnsetVariableInTokenIsAnError) {
  // A misspelt variable must not silently switch authentication off.
  try {
    LoadConfigString("admin:\n  token: ${RESPSCOPE_ADMIN_TOKN}\n", "t.yaml", kNoEnv);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "t.yaml:2:10: admin.token: environment variable 'RESPSCOPE_ADMIN_TOKN' is not "
                 "set (use ${RESPSCOPE_ADMIN_TOKN:-default} for a default)");
  }
}

TEST(LoaderTest, TokenErrorsDoNotRepeatTheToken) {
  try {
    LoadConfigString("admin: {token: \"${T}\"}\n", "t", MapEnv({{"T", "hunter2\n"}}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    EXPECT_STREQ(e.what(),
                 "t:1:16: admin.token: the token contains a line break (a secret file with a "
                 "trailing newline?)");
  }
}

TEST(LoaderTest, LaterListsReplaceDefaults) {
  Config c = LoadConfigString("sanitization:\n  sensitive_key_patterns: []\n", "t", kNoEnv);
  EXPECT_TRUE(c.sanitization.sensitive_key_patterns.empty());
}

TEST(LoaderTest, DisabledBullmqMayHaveNoPrefixes) {
  Config c = LoadConfigString("bullmq: {enabled: false, prefixes: []}\n", "t", kNoEnv);
  EXPECT_FALSE(c.bullmq.enabled);
  EXPECT_TRUE(c.bullmq.prefixes.empty());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(LoaderTest, InsightsAndNotifications) {
  Config c = LoadConfigString(R"(
insights: {window: 5s, warmup: 0s, min_lookups: 20, slow_job: 2s, very_slow_job: 4s,
           job_failure_warning: 0.2, regression_min: 500us, baseline_windows: 3,
           enabled: false, no_ttl_min_keys: 300, n_plus_one_min_reads: 50,
           job_history_min_jobs: 70}
notifications:
  - {name: ops, type: webhook, url: "http://127.0.0.1:9/hook", min_severity: error,
     hmac_secret_env: HOOK_KEY, timeout: 2s, max_attempts: 3, backoff: 100ms}
  - {name: chat, type: slack, url: "https://hooks.example.com/services/x"}
alerts:
  - {name: c, metric: hit_rate, below: 0.5, severity: critical}
  - {name: e, metric: hit_rate, below: 0.5, severity: error}
)", "t.yaml", kNoEnv);
  EXPECT_EQ(c.insights.window, seconds(5));
  EXPECT_EQ(c.insights.warmup, seconds(0));
  EXPECT_EQ(c.insights.min_lookups, 20u);
  EXPECT_EQ(c.insights.very_slow_job, seconds(4));
  EXPECT_DOUBLE_EQ(c.insights.job_failure_warning, 0.2);
  EXPECT_EQ(c.insights.regression_min, microseconds(500));
  EXPECT_EQ(c.insights.baseline_windows, 3u);
  EXPECT_EQ(c.insights.big_value_bytes, Config{}.insights.big_value_bytes);
  EXPECT_FALSE(c.insights.enabled);
  EXPECT_TRUE(Config{}.insights.enabled);
  EXPECT_EQ(c.insights.no_ttl_min_keys, 300u);
  EXPECT_EQ(c.insights.n_plus_one_min_reads, 50u);
  EXPECT_EQ(c.insights.job_history_min_jobs, 70u);
  ASSERT_EQ(c.notifications.size(), 2u);
  EXPECT_EQ(c.notifications[0].type, ChannelType::kWebhook);
  EXPECT_EQ(c.notifications[0].min_severity, Severity::kError);
  EXPECT_EQ(c.notifications[0].hmac_secret_env, "HOOK_KEY");
  EXPECT_EQ(c.notifications[0].max_attempts, 3u);
  EXPECT_EQ(c.notifications[0].backoff, milliseconds(100));
  EXPECT_EQ(c.notifications[1].type, ChannelType::kSlack);
  EXPECT_EQ(c.notifications[1].min_severity, Severity::kWarning);
  EXPECT_EQ(c.alerts[0].cooldown, minutes(5));
  EXPECT_EQ(c.alerts[1].cooldown, minutes(15));
}

TEST(LoaderTest, JobUpstreamMemoryAndInsightAlerts) {
  Config c = LoadConfigString(R"(
alerts:
  - {name: backlog, metric: queue_backlog, queue: "email*", above: 1000}
  - {name: stalled, metric: stalled_jobs, above: 0, severity: error}
  - {name: slow, metric: slow_jobs, queue: "*", above: 60s}
  - {name: down, metric: upstream_down, severity: critical}
  - {name: memory, metric: memory_used_ratio, above: 0.9}
  - {name: findings, metric: insight, kind: "job_*", severity: critical}
)", "t.yaml", kNoEnv);
  ASSERT_EQ(c.alerts.size(), 6u);
  EXPECT_EQ(c.alerts[0].metric, AlertMetric::kQueueBacklog);
  EXPECT_EQ(c.alerts[0].queue, "email*");
  EXPECT_DOUBLE_EQ(c.alerts[0].threshold, 1000);
  EXPECT_EQ(c.alerts[1].queue, "*");
  EXPECT_EQ(c.alerts[1].severity, Severity::kError);
  EXPECT_DOUBLE_EQ(c.alerts[2].threshold, 60);
  EXPECT_EQ(c.alerts[3].metric, AlertMetric::kUpstreamDown);
  EXPECT_EQ(c.alerts[3].comparison, Comparison::kAbove);
  EXPECT_DOUBLE_EQ(c.alerts[3].threshold, 0);
  EXPECT_EQ(c.alerts[3].pattern, "");
  EXPECT_DOUBLE_EQ(c.alerts[4].threshold, 0.9);
  EXPECT_EQ(c.alerts[5].kind, "job_*");
  EXPECT_THROW(LoadConfigString("alerts:\n  - {name: m, metric: memory_used_ratio, above: 90}\n",
                                "t.yaml", kNoEnv),
               ConfigError);
  EXPECT_THROW(LoadConfigString("alerts:\n  - {name: m, metric: queue_backlog}\n", "t.yaml",
                                kNoEnv),
               ConfigError);
}

TEST(LoaderTest, PoolSettings) {
  Config c = LoadConfigString(
      "upstream_pooling: dedicated\npool:\n  shared_connections: 2\n  spare_connections: 0\n"
      "  max_shared_request: 64KiB\n",
      "t.yaml", kNoEnv);
  EXPECT_EQ(c.upstream_pooling, UpstreamPooling::kDedicated);
  EXPECT_EQ(c.pool.shared_connections, 2u);
  EXPECT_EQ(c.pool.spare_connections, 0u);
  EXPECT_EQ(c.pool.max_shared_request, 64u * 1024);
  EXPECT_THROW(LoadConfigString("upstream_pooling: shared\n", "t.yaml", kNoEnv), ConfigError);
  EXPECT_THROW(LoadConfigString("pool:\n  shared_connections: 0\n", "t.yaml", kNoEnv),
               ConfigError);
  EXPECT_THROW(LoadConfigString("pool:\n  spares: 1\n", "t.yaml", kNoEnv), ConfigError);
}

TEST(LoaderTest, UpstreamTlsSettings) {
  Config c = LoadConfigString(
      "upstream: rediss://redis.example:6380\nupstream_tls:\n  ca_file: /ca.pem\n"
      "  cert_file: /c.pem\n  key_file: /k.pem\n  server_name: redis.internal\n"
      "  min_version: \"1.3\"\n  verify: false\n",
      "t.yaml", kNoEnv);
  EXPECT_EQ(c.upstream.scheme, UpstreamScheme::kRediss);
  EXPECT_TRUE(c.upstream_tls.configured);
  EXPECT_EQ(c.upstream_tls.ca_file, "/ca.pem");
  EXPECT_EQ(c.upstream_tls.cert_file, "/c.pem");
  EXPECT_EQ(c.upstream_tls.key_file, "/k.pem");
  EXPECT_EQ(c.upstream_tls.server_name, "redis.internal");
  EXPECT_EQ(c.upstream_tls.min_version, TlsVersion::k13);
  EXPECT_FALSE(c.upstream_tls.verify);
  EXPECT_EQ(c.origins.upstream_tls, "t.yaml:3:3");
  Validate(c);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("upstream_tls.verify is false"), std::string::npos);

  Config d = LoadConfigString("upstream: rediss://r:1\n", "t.yaml", kNoEnv);
  EXPECT_FALSE(d.upstream_tls.configured);
  EXPECT_TRUE(d.upstream_tls.verify);
  EXPECT_EQ(d.upstream_tls.min_version, TlsVersion::k12);
  EXPECT_TRUE(d.upstream_tls.ca_file.empty());
}

TEST(LoaderTest, UpstreamTlsErrors) {
  auto error = [](const char* yaml) {
    try {
      Config c = LoadConfigString(yaml, "t.yaml", kNoEnv);
      Validate(c);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("upstream_tls:\n  min_version: \"1.1\"\n"),
            "t.yaml:2:16: upstream_tls.min_version: expected 1.2 or 1.3 (got '1.1')");
  EXPECT_EQ(error("upstream_tls:\n  verify: maybe\n"),
            "t.yaml:2:11: upstream_tls.verify: expected true or false (got 'maybe')");
  EXPECT_EQ(error("upstream_tls:\n  ca_fle: /x\n"),
            "t.yaml:2:3: unknown key 'ca_fle' in upstream_tls (did you mean 'ca_file'?)");
  EXPECT_EQ(error("upstream_tls:\n  ca_file: \"\"\n"),
            "t.yaml:2:12: upstream_tls.ca_file: expected a file path (got nothing)");
  EXPECT_EQ(error("upstream: rediss://r:1\nupstream_tls:\n  cert_file: /c.pem\n"),
            "t.yaml:3:3: upstream_tls: cert_file is set without key_file (mutual TLS needs "
            "both)");
  EXPECT_EQ(error("upstream: rediss://r:1\nupstream_tls:\n  key_file: /k.pem\n"),
            "t.yaml:3:3: upstream_tls: key_file is set without cert_file (mutual TLS needs "
            "both)");
}

TEST(LoaderTest, UpstreamTlsOnAPlainUpstreamIsIgnoredWithAWarning) {
  Config c = LoadConfigString("upstream: redis://r:1\nupstream_tls:\n  verify: false\n",
                              "t.yaml", kNoEnv);
  Validate(c);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("upstream_tls (from t.yaml:3:3) is ignored"), std::string::npos)
      << c.warnings[0];
}

TEST(LoaderTest, UpstreamTlsEnvironmentVariables) {
  Config c = LoadConfigString("upstream: rediss://r:1\nupstream_tls:\n  ca_file: /file.pem\n",
                              "t.yaml", kNoEnv);
  ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_UPSTREAM_TLS_CA_FILE", "/env.pem"},
                               {"RESPSCOPE_UPSTREAM_TLS_CERT_FILE", "/c.pem"},
                               {"RESPSCOPE_UPSTREAM_TLS_KEY_FILE", "/k.pem"},
                               {"RESPSCOPE_UPSTREAM_TLS_SERVER_NAME", "redis.internal"},
                               {"RESPSCOPE_UPSTREAM_TLS_MIN_VERSION", "TLSv1.3"},
                               {"RESPSCOPE_UPSTREAM_TLS_VERIFY", "false"}}));
  EXPECT_EQ(c.upstream_tls.ca_file, "/env.pem");
  EXPECT_EQ(c.upstream_tls.cert_file, "/c.pem");
  EXPECT_EQ(c.upstream_tls.key_file, "/k.pem");
  EXPECT_EQ(c.upstream_tls.server_name, "redis.internal");
  EXPECT_EQ(c.upstream_tls.min_version, TlsVersion::k13);
  EXPECT_FALSE(c.upstream_tls.verify);
  EXPECT_EQ(c.origins.upstream_tls, "t.yaml:3:3");  // the section came first

  Config e;
  ApplyEnvOverrides(e, MapEnv({{"RESPSCOPE_UPSTREAM_TLS_VERIFY", "true"}}));
  EXPECT_TRUE(e.upstream_tls.configured);
  EXPECT_EQ(e.origins.upstream_tls, "RESPSCOPE_UPSTREAM_TLS_VERIFY");
  try {
    ApplyEnvOverrides(e, MapEnv({{"RESPSCOPE_UPSTREAM_TLS_MIN_VERSION", "1.0"}}));
    FAIL();
  } catch (const ConfigError& err) {
    EXPECT_EQ(std::string(err.what()),
              "RESPSCOPE_UPSTREAM_TLS_MIN_VERSION: expected 1.2 or 1.3 (got '1.0')");
  }
}

TEST(LoaderTest, ExampleFileDocumentsUpstreamTls) {
  const std::string text = ReadFile(std::string(RESPSCOPE_CONFIG_DIR) + "/respscope.example.yaml");
  for (const char* key :
       {"ca_file", "cert_file", "key_file", "server_name", "min_version", "verify"}) {
    EXPECT_NE(text.find(std::string("#   ") + key + ": "), std::string::npos) << key;
  }
  EXPECT_NE(text.find("# upstream_tls:"), std::string::npos);
}

TEST(LoaderTest, SentinelUrlAndSettings) {
  Config c = LoadConfigString(
      "upstream: redis+sentinel://:mpw@127.0.0.1:26379,127.0.0.1:26380/mymaster/1\n"
      "upstream_sentinel:\n  username: sent\n  password: ${SENTINEL_PW}\n  timeout: 250ms\n"
      "  check_interval: 2s\n",
      "t.yaml", MapEnv({{"SENTINEL_PW", "spw"}}));
  EXPECT_TRUE(c.upstream.IsSentinel());
  EXPECT_EQ(c.upstream.master_name, "mymaster");
  EXPECT_EQ(c.upstream.password, "mpw");
  EXPECT_EQ(c.upstream.db, 1);
  ASSERT_EQ(c.upstream.sentinels.size(), 2u);
  EXPECT_EQ(c.upstream_sentinel.username, "sent");
  EXPECT_EQ(c.upstream_sentinel.password, "spw");
  EXPECT_EQ(c.upstream_sentinel.timeout, milliseconds(250));
  EXPECT_EQ(c.upstream_sentinel.check_interval, seconds(2));
  EXPECT_EQ(c.origins.upstream_sentinel, "t.yaml:3:3");
  EXPECT_NO_THROW(Validate(c));
  EXPECT_TRUE(c.warnings.empty());
}

TEST(LoaderTest, SentinelYamlFormEqualsTheUrl) {
  Config c = LoadConfigString(
      "upstream:\n  sentinel:\n    master: mymaster\n"
      "    addresses: [127.0.0.1:26379, \"[::1]\", s3]\n"
      "  username: app\n  password: ${PW}\n  db: 2\n",
      "t.yaml", MapEnv({{"PW", "p@ss"}}));
  EXPECT_EQ(c.upstream,
            ParseUpstreamUrl("redis+sentinel://app:p%40ss@127.0.0.1:26379,[::1],s3/mymaster/2"));
  const std::pair<const char*, std::string> bad[] = {
      {"upstream: {username: a}\n",
       "t.yaml:1:11: upstream: a mapping here is the Sentinel form and needs sentinel: {master, "
       "addresses}; write other upstreams as a URL like redis://127.0.0.1:6379"},
      {"upstream: {sentinel: {addresses: [h]}}\n",
       "t.yaml:1:22: upstream.sentinel: missing master (the monitored name)"},
      {"upstream: {sentinel: {master: m}}\n",
       "t.yaml:1:22: upstream.sentinel: addresses: expected at least one sentinel HOST:PORT"},
      {"upstream: {sentinel: {master: m, addresses: [\"h:0\"]}}\n",
       "t.yaml:1:46: upstream.sentinel.addresses[0]: invalid URL: sentinel port 0 (got 'h:0')"},
      {"upstream_sentinel: {timeout: 1ms}\n",
       "t.yaml:1:30: upstream_sentinel.timeout: value out of range (must be between 10ms and 30s, "
       "got 1ms)"},
  };
  for (const auto& [yaml, error] : bad) {
    try {
      LoadConfigString(yaml, "t.yaml", kNoEnv);
      ADD_FAILURE() << yaml;
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()), error) << yaml;
    }
  }
}

TEST(LoaderTest, SentinelCredentialsFromTheEnvironment) {
  Config c = LoadConfigString("upstream: redis://h\n", "t.yaml", kNoEnv);
  ApplyEnvOverrides(c, MapEnv({{"RESPSCOPE_UPSTREAM", "redis+sentinel://s1/m"},
                               {"RESPSCOPE_UPSTREAM_SENTINEL_USERNAME", "u"},
                               {"RESPSCOPE_UPSTREAM_SENTINEL_PASSWORD", "hunter2"}}));
  EXPECT_TRUE(c.upstream.IsSentinel());
  EXPECT_EQ(c.upstream_sentinel.username, "u");
  EXPECT_EQ(c.upstream_sentinel.password, "hunter2");
  EXPECT_EQ(c.origins.upstream_sentinel, "RESPSCOPE_UPSTREAM_SENTINEL_PASSWORD");
  // Sentinel credentials with a plain upstream are a warning, not silence.
  Config plain = LoadConfigString("upstream_sentinel: {password: x}\n", "t.yaml", kNoEnv);
  Validate(plain);
  ASSERT_EQ(plain.warnings.size(), 1u);
  EXPECT_NE(plain.warnings[0].find("upstream_sentinel credentials (from t.yaml:1:20) are ignored"),
            std::string::npos);
}

TEST(LoaderTest, ExampleFileLoadsAndMatchesDefaults) {
  const std::string path = std::string(RESPSCOPE_CONFIG_DIR) + "/respscope.example.yaml";
  Config c = LoadConfigFile(path, kNoEnv);
  EXPECT_EQ(c.config_file, path);
  Config defaults;
  // The example shows the defaults, except where it shows a feature off by default.
  EXPECT_EQ(c.listen, defaults.listen);
  EXPECT_EQ(c.upstream, defaults.upstream);
  EXPECT_EQ(c.threads, 1);  // the default depends on the machine; the example shows one
  EXPECT_EQ(c.admin.listen, defaults.admin.listen);
  EXPECT_EQ(c.admin.token, "");
  EXPECT_EQ(c.upstream_pooling, defaults.upstream_pooling);
  EXPECT_EQ(c.upstream_sentinel.timeout, defaults.upstream_sentinel.timeout);
  EXPECT_EQ(c.upstream_sentinel.check_interval, defaults.upstream_sentinel.check_interval);
  EXPECT_EQ(c.upstream_sentinel.password, "");
  EXPECT_EQ(c.pool.shared_connections, defaults.pool.shared_connections);
  EXPECT_EQ(c.pool.spare_connections, defaults.pool.spare_connections);
  EXPECT_EQ(c.pool.max_shared_request, defaults.pool.max_shared_request);
  EXPECT_EQ(c.limits.max_clients, defaults.limits.max_clients);
  EXPECT_EQ(c.limits.max_inflight_bytes_per_client, defaults.limits.max_inflight_bytes_per_client);
  EXPECT_EQ(c.limits.connect_timeout, defaults.limits.connect_timeout);
  EXPECT_EQ(c.limits.drain_timeout, defaults.limits.drain_timeout);
  EXPECT_EQ(c.analytics.slow_command_threshold, defaults.analytics.slow_command_threshold);
  EXPECT_EQ(c.analytics.history.fine, defaults.analytics.history.fine);
  EXPECT_EQ(c.analytics.history.coarse, defaults.analytics.history.coarse);
  EXPECT_EQ(c.sanitization.sensitive_key_patterns, defaults.sanitization.sensitive_key_patterns);
  EXPECT_EQ(c.sanitization.max_value_size, defaults.sanitization.max_value_size);
  EXPECT_EQ(c.bullmq.prefixes, defaults.bullmq.prefixes);
  EXPECT_EQ(c.key_patterns.rules.size(), 2u);
  EXPECT_EQ(c.alerts.size(), 3u);
  EXPECT_EQ(c.insights.window, defaults.insights.window);
  EXPECT_EQ(c.insights.slow_job, defaults.insights.slow_job);
  EXPECT_EQ(c.insights.regression_min, defaults.insights.regression_min);
  EXPECT_EQ(c.notifications.size(), 0u);  // shown commented out
  // The only warning: RESPSCOPE_ADMIN_TOKEN is unset here.
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("RESPSCOPE_ADMIN_TOKEN is not set"), std::string::npos);
  Validate(c);
  EXPECT_EQ(c.warnings.size(), 1u);
}

// Every key of the schema appears in the example, as "key:" at the start of a line or inside a
// flow mapping, and has a comment on its line or on the line above.
TEST(LoaderTest, ExampleFileDocumentsEveryKey) {
  const std::string text = ReadFile(std::string(RESPSCOPE_CONFIG_DIR) + "/respscope.example.yaml");
  const char* keys[] = {
      "listen",
      "upstream",
      "threads",
      "admin",
      "token",
      "protect_metrics",
      "max_connections",
      "header_timeout",
      "idle_timeout",

      "upstream_pooling",
      "upstream_sentinel",
      "username",
      "password",
      "timeout",
      "check_interval",
      "pool",
      "shared_connections",
      "spare_connections",
      "max_shared_request",
      "limits",
      "max_clients",
      "max_inflight_bytes_per_client",
      "connect_timeout",
      "drain_timeout",
      "drain_idle_timeout",
      "analytics",
      "slow_command_threshold",
      "top_keys",
      "slowlog_size",
      "history",
      "key_patterns",
      "auto",
      "max_patterns",
      "rules",
      "sanitization",
      "sensitive_key_patterns",
      "mode",
      "capture_values",
      "max_value_size",
      "max_key_length",
      "exclude_key_patterns",
      "sample_rate",
      "bullmq",
      "enabled",
      "prefixes",
      "inspector_interval",
      "alerts",
      "insights",
      "window",
      "full_scan_bytes",
      "big_value_bytes",
      "hot_key_share",
      "hot_key_min_commands",
      "low_hit_rate",
      "min_lookups",
      "warmup",
      "backlog_min_waiting",
      "slow_job",
      "very_slow_job",
      "job_failure_warning",
      "job_failure_critical",
      "min_jobs",
      "baseline_windows",
      "regression_ratio",
      "regression_min",
      "regression_min_calls",
      "churn_connections_per_command",
      "churn_min_connections",
      "notifications",
      "logging",
      "level",
      "format",
  };
  std::vector<std::string> lines;
  for (size_t start = 0, end; start < text.size(); start = end + 1) {
    end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
  }
  for (const char* key : keys) {
    bool documented = false;
    for (size_t i = 0; i < lines.size() && !documented; ++i) {
      const std::string& line = lines[i];
      size_t indent = line.find_first_not_of(' ');
      if (indent == std::string::npos ||
          line.compare(indent, std::strlen(key) + 1, std::string(key) + ":") != 0) {
        continue;
      }
      documented = line.find('#') != std::string::npos ||
                   (i > 0 && lines[i - 1].find('#') != std::string::npos);
    }
    EXPECT_TRUE(documented) << "key '" << key << "' has no commented line in the example";
  }
  // The keys of flow-style list items are documented in the comments above them.
  for (const char* key :
       {"name", "metric", "pattern", "queue", "kind", "above / below", "for", "cooldown",
        "severity"}) {
    EXPECT_NE(text.find(std::string("#   ") + key + " "), std::string::npos)
        << "alert key '" << key << "'";
  }
  EXPECT_NE(text.find("# match: "), std::string::npos);
  EXPECT_NE(text.find(" name: the pattern label"), std::string::npos);
}

TEST(LoaderTest, MinimalFileLoads) {
  Config c = LoadConfigFile(std::string(RESPSCOPE_CONFIG_DIR) + "/minimal.yaml", kNoEnv);
  EXPECT_EQ(c.listen.at(0).tcp, (HostPort{"0.0.0.0", 6380}));
  EXPECT_EQ(c.upstream.ToString(), "redis://127.0.0.1:6379");
  Config from_env = LoadConfigFile(std::string(RESPSCOPE_CONFIG_DIR) + "/minimal.yaml",
                                   MapEnv({{"REDIS_URL", "redis://redis:6379/1"}}));
  EXPECT_EQ(from_env.upstream.host, "redis");
  EXPECT_EQ(from_env.upstream.db, 1);
}

TEST(LoaderTest, MissingFileNamesIt) {
  try {
    LoadConfigFile("/nonexistent/respscope.yaml", kNoEnv);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "/nonexistent/respscope.yaml: cannot read the configuration file (No such file "
                 "or directory)");
  }
}

TEST(LoaderTest, DirectoryIsNotAFile) {
  try {
    LoadConfigFile(RESPSCOPE_CONFIG_DIR, kNoEnv);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), std::string(RESPSCOPE_CONFIG_DIR) +
                                         ": cannot read the configuration file (Is a directory)");
  }
}

TEST(ValidateTest, ListenClashingWithAdminNamesBothOrigins) {
  Config c = LoadConfigString("listen: 127.0.0.1:9190\n", "t.yaml", kNoEnv);
  try {
    Validate(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "t.yaml:1:9: listen 127.0.0.1:9190 clashes with admin.listen 127.0.0.1:9190 "
                 "(from default)");
  }
  Config wildcard =
      LoadConfigString("listen: 127.0.0.1:7000\nadmin: {listen: 0.0.0.0:7000}\n", "t.yaml", kNoEnv);
  try {
    Validate(wildcard);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "t.yaml:2:17: admin.listen 0.0.0.0:7000 clashes with listen 127.0.0.1:7000 (from "
                 "t.yaml:1:9)");
  }
}

TEST(ValidateTest, UpstreamPointingAtOurselvesIsAnError) {
  Config c = LoadConfigString("listen: 0.0.0.0:6380\nupstream: redis://localhost:6380\n", "t.yaml",
                              kNoEnv);
  try {
    Validate(c);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "t.yaml:2:11: upstream redis://localhost:6380 is respscope's own listen address "
                 "0.0.0.0:6380 (from t.yaml:1:9): it would proxy to itself");
  }
  Config other_host = LoadConfigString("upstream: redis://10.0.0.5:6380\n", "t.yaml", kNoEnv);
  EXPECT_NO_THROW(Validate(other_host));
  Config unix_socket = LoadConfigString("upstream: unix:///tmp/redis.sock\n", "t.yaml", kNoEnv);
  EXPECT_NO_THROW(Validate(unix_socket));
  Config sentinel = LoadConfigString(
      "listen: 127.0.0.1:26379\nupstream: redis+sentinel://127.0.0.1:26379/m\n", "t.yaml", kNoEnv);
  EXPECT_THROW(Validate(sentinel), ConfigError);
}

TEST(ValidateTest, WarnsAboutAnOpenAdminApiWithoutToken) {
  Config open = LoadConfigString("admin: {listen: 0.0.0.0:9190}\n", "t", kNoEnv);
  Validate(open);
  ASSERT_EQ(open.warnings.size(), 1u);
  EXPECT_EQ(open.warnings[0],
            "admin.listen 0.0.0.0:9190 is reachable from other hosts and admin.token is empty: "
            "anyone who can connect can read the API, key names included; set "
            "RESPSCOPE_ADMIN_TOKEN");
  Config closed = LoadConfigString("admin: {listen: 0.0.0.0:9190, token: t0k}\n", "t", kNoEnv);
  Validate(closed);
  EXPECT_TRUE(closed.warnings.empty());
  Config local = LoadConfigString("admin: {listen: \"[::1]:9190\"}\n", "t", kNoEnv);
  Validate(local);
  EXPECT_TRUE(local.warnings.empty());
}

TEST(DefaultThreadsTest, CgroupQuotaLowersTheCpus) {
  EXPECT_EQ(CpusWithinQuota(8, "max 100000"), 8);
  EXPECT_EQ(CpusWithinQuota(8, "100000 100000"), 1);
  EXPECT_EQ(CpusWithinQuota(8, "150000 100000"), 2);  // 1.5 CPUs: rounded up
  EXPECT_EQ(CpusWithinQuota(8, "50000 100000"), 1);   // half a CPU: still one thread's worth
  EXPECT_EQ(CpusWithinQuota(2, "400000 100000"), 2);  // never above the affinity mask
  EXPECT_EQ(CpusWithinQuota(4, ""), 4);
  EXPECT_EQ(CpusWithinQuota(4, "garbage"), 4);
  EXPECT_EQ(CpusWithinQuota(4, "-1 100000"), 4);      // cgroup v1: no quota
  const int usable = UsableCpus();
  EXPECT_GE(usable, 1);
  EXPECT_EQ(DefaultThreads(), std::clamp(usable / 2, 1, 4));
}

}  // namespace
}  // namespace respscope::config
