#include "config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <vector>

#include "config/glob.h"
#include "config/values.h"

namespace respscope::config {
namespace {

// Limits on values: wide enough for any sane deployment, narrow enough to catch a typo (an
// extra zero, ms for s) before it becomes an outage.
constexpr int64_t kMaxClients = 1000000;
constexpr int64_t kMaxAdminConnections = 100000;
constexpr int64_t kMaxTopKeys = 10000;
constexpr int64_t kMaxSlowlog = 100000;
constexpr int64_t kMaxPatterns = 100000;
constexpr int64_t kMaxKeyLength = 65536;
constexpr size_t kMaxRuleText = 1000;  // a regex longer than this is a mistake, and std::regex
                                       // compiles recursively

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// A value and how to talk about it: its key path and where to point.
struct Field {
  YAML::Node value;
  YAML::Mark mark;   // the value's position; the key's for an empty value, whose own mark is
                     // wherever the next token happens to be
  std::string path;  // "limits.connect_timeout", "alerts[0].name"; "" for the root
};

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return Quote(node.Scalar());
    default:
      return "nothing";
  }
}

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Why expression is not a valid ECMAScript regex, or "" when it is.
std::string RegexProblem(const std::string& expression) {
  // The usual mistake, a glob written after "re:". libstdc++ calls it a mismatched '('.
  char first = expression.empty() ? '\0' : expression[0];
  if (first == '*' || first == '+' || first == '?') {
    return std::string("nothing to repeat before '") + first + "'; for a glob, drop the 're:'";
  }
  try {
    std::regex compiled(expression, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    // The standard library's words, made to read like ours: "Mismatched '(' and ')' in regular
    // expression" -> "mismatched '(' and ')'".
    std::string text = e.what();
    for (const char* noise : {" in regular expression", " in bracket expression"}) {
      if (size_t at = text.find(noise); at != std::string::npos) text.erase(at, std::strlen(noise));
    }
    while (!text.empty() && (text.back() == '.' || text.back() == ' ')) text.pop_back();
    if (!text.empty()) {
      text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
    }
    return text.empty() ? "rejected by std::regex" : text;
  }
  return "";
}

std::string FormatNumber(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

bool IsAlertNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

class Loader {
 public:
  Loader(std::string file, const EnvGetter& env, Config& config)
      : file_(std::move(file)), env_(env), config_(config) {}

  void LoadRoot(const YAML::Node& root);

 private:
  using Handler = std::function<void(const Field&)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };

  std::string Where(const YAML::Mark& mark) const {
    if (mark.is_null()) return file_;
    return file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  [[noreturn]] void Fail(const YAML::Mark& mark, const std::string& message) const {
    throw ConfigError(Where(mark), message);
  }
  [[noreturn]] void FailAt(const Field& f, const std::string& message) const {
    Fail(f.mark, f.path.empty() ? message : f.path + ": " + message);
  }

  // Iterates a mapping in document order, dispatching each key to its handler. Unknown and
  // duplicate keys are errors. Returns the fields present, by key. An empty value counts as an
  // empty mapping, so "limits:" alone means all defaults.
  std::map<std::string, Field> Map(const Field& f, const std::vector<Key>& keys);
  // Calls each(item) for each element of a list; an empty value is an empty list.
  void List(const Field& f, const std::function<void(const Field&)>& each);

  // The scalar text after ${VAR} expansion; `expected` completes "expected ..." when the value
  // is a mapping, a list or empty.
  std::string Text(const Field& f, const std::string& expected);
  template <typename Parse>
  auto Convert(const Field& f, const std::string& expected, Parse parse) {
    std::string text = Text(f, expected);
    try {
      return parse(text);
    } catch (const ValueError& e) {
      FailAt(f, e.what());
    }
  }

  std::string String(const Field& f);  // an empty value is ""
  std::string NonEmpty(const Field& f, const std::string& expected);
  bool Bool(const Field& f) { return Convert(f, "true or false", ParseBool); }
  int64_t Integer(const Field& f, int64_t lo, int64_t hi);
  double Number(const Field& f, double lo, double hi);
  Duration DurationIn(const Field& f, Duration lo, Duration hi);
  uint64_t Size(const Field& f, uint64_t lo, uint64_t hi);
  std::string Glob(const Field& f);
  std::vector<std::string> GlobList(const Field& f);
  std::vector<ListenAddress> ListenList(const Field& f);

  void Admin(const Field& f);
  void Limits(const Field& f);
  void Pool(const Field& f);
  void UpstreamTls(const Field& f);
  // upstream: {sentinel: {master, addresses}, username, password, db}: the YAML form of
  // redis+sentinel://.
  UpstreamUrl UpstreamSentinelForm(const Field& f);
  void UpstreamSentinel(const Field& f);
  void Analytics(const Field& f);
  void History(const Field& f);
  void KeyPatterns(const Field& f);
  PatternRule Rule(const Field& f);
  void RuleMatch(const Field& f, PatternRule* rule);
  std::string RuleName(const Field& f);
  void Sanitization(const Field& f);
  void Bullmq(const Field& f);
  std::vector<std::string> Prefixes(const Field& f);
  // names: alert name -> line of its first definition, for duplicates.
  AlertRule Alert(const Field& f, std::map<std::string, int>* names);
  std::string AlertName(const Field& f);
  void Insights(const Field& f);
  NotificationChannel Channel(const Field& f, std::map<std::string, int>* names);
  void Logging(const Field& f);

  std::string file_;
  const EnvGetter& env_;
  Config& config_;
};

std::map<std::string, Field> Loader::Map(const Field& f, const std::vector<Key>& keys) {
  std::map<std::string, Field> seen;
  if (f.value.IsNull()) return seen;
  if (!f.value.IsMap()) FailAt(f, "expected a mapping (got " + Describe(f.value) + ")");
  std::string in = f.path.empty() ? "" : " in " + f.path;
  for (const auto& entry : f.value) {
    const YAML::Node& key = entry.first;
    if (!key.IsScalar()) {
      Fail(key.Mark(), "expected a key name" + in + " (got " + Describe(key) + ")");
    }
    const std::string& name = key.Scalar();
    if (auto it = seen.find(name); it != seen.end()) {
      Fail(key.Mark(), "duplicate key '" + name + "'" + in + " (first at line " +
                           std::to_string(it->second.mark.line + 1) + ")");
    }
    auto handler =
        std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
    if (handler == keys.end()) {
      if (name == "<<") Fail(key.Mark(), "merge keys ('<<') are not supported" + in);
      std::string message = "unknown key '" + name + "'" + in;
      const Key* best = nullptr;
      size_t best_distance = 3;  // suggest only close names: a typo, not a different word
      for (const Key& k : keys) {
        size_t d = EditDistance(Lowercase(name), k.name);
        if (d < best_distance && d * 3 <= std::max(name.size(), k.name.size())) {
          best = &k;
          best_distance = d;
        }
      }
      if (best != nullptr) {
        message += " (did you mean '" + std::string(best->name) + "'?)";
      } else {
        message += " (expected one of";
        for (size_t i = 0; i < keys.size(); ++i) {
          message += (i == 0 ? " " : ", ") + std::string(keys[i].name);
        }
        message += ")";
      }
      Fail(key.Mark(), message);
    }
    const YAML::Node& value = entry.second;
    Field child{value, value.IsNull() ? key.Mark() : value.Mark(),
                f.path.empty() ? name : f.path + "." + name};
    seen.emplace(name, child);
    handler->handle(child);
  }
  return seen;
}

void Loader::List(const Field& f, const std::function<void(const Field&)>& each) {
  if (f.value.IsNull()) return;
  if (!f.value.IsSequence()) FailAt(f, "expected a list (got " + Describe(f.value) + ")");
  for (size_t i = 0; i < f.value.size(); ++i) {
    YAML::Node item = f.value[i];
    each(Field{item, item.IsNull() ? f.mark : item.Mark(), f.path + "[" + std::to_string(i) + "]"});
  }
}

std::string Loader::Text(const Field& f, const std::string& expected) {
  if (!f.value.IsScalar()) FailAt(f, "expected " + expected + " (got " + Describe(f.value) + ")");
  std::vector<std::string> unset;
  std::string text;
  try {
    text = ExpandVariables(f.value.Scalar(), env_, &unset);
  } catch (const ValueError& e) {
    FailAt(f, e.what());
  }
  for (const std::string& var : unset) {
    config_.warnings.push_back(
        Where(f.mark) + ": " + f.path + ": " + var + " is not set, so " +
        (f.path == "admin.token" ? "the admin API needs no token" : "the value is empty"));
  }
  return text;
}

std::string Loader::String(const Field& f) {
  if (f.value.IsNull()) return "";
  return Text(f, "a string");
}

std::string Loader::NonEmpty(const Field& f, const std::string& expected) {
  std::string s = f.value.IsNull() ? "" : Text(f, expected);
  if (s.empty()) FailAt(f, "expected " + expected + " (got nothing)");
  return s;
}

int64_t Loader::Integer(const Field& f, int64_t lo, int64_t hi) {
  int64_t v = Convert(f, "an integer", ParseInteger);
  if (v < lo || v > hi) {
    FailAt(f, OutOfRange(std::to_string(lo), std::to_string(hi), std::to_string(v)).what());
  }
  return v;
}

double Loader::Number(const Field& f, double lo, double hi) {
  double v = Convert(f, "a number", ParseNumber);
  if (v < lo || v > hi)
    FailAt(f, OutOfRange(FormatNumber(lo), FormatNumber(hi), FormatNumber(v)).what());
  return v;
}

Duration Loader::DurationIn(const Field& f, Duration lo, Duration hi) {
  Duration v = Convert(f, "a duration like 10ms, 2s, 5m", ParseDuration);
  if (v < lo || v > hi) {
    FailAt(f, OutOfRange(FormatDuration(lo), FormatDuration(hi), FormatDuration(v)).what());
  }
  return v;
}

uint64_t Loader::Size(const Field& f, uint64_t lo, uint64_t hi) {
  uint64_t v = Convert(f, "a size like 512KiB, 8MiB", ParseSize);
  if (v < lo || v > hi) FailAt(f, OutOfRange(FormatSize(lo), FormatSize(hi), FormatSize(v)).what());
  return v;
}

std::string Loader::Glob(const Field& f) {
  std::string glob = NonEmpty(f, "a glob like 'session:*'");
  if (std::string error = GlobError(glob); !error.empty()) {
    FailAt(f, "invalid glob " + Quote(glob) + " (" + error + ")");
  }
  return glob;
}

std::vector<std::string> Loader::GlobList(const Field& f) {
  std::vector<std::string> out;
  List(f, [&](const Field& item) { out.push_back(Glob(item)); });
  return out;
}

// `listen`: one address, comma-separated addresses (as RESPSCOPE_LISTEN), or a list.
std::vector<ListenAddress> Loader::ListenList(const Field& f) {
  constexpr const char* kExpected = "HOST:PORT or unix:///PATH";
  if (!f.value.IsSequence()) return Convert(f, kExpected, ParseListenList);
  std::vector<ListenAddress> out;
  List(f, [&](const Field& item) {
    ListenAddress a = Convert(item, kExpected, ParseListenAddress);
    if (std::find(out.begin(), out.end(), a) != out.end()) {
      FailAt(item, "listen address " + a.ToString() + " given twice");
    }
    out.push_back(std::move(a));
  });
  if (out.empty()) FailAt(f, "expected at least one listen address");
  if (out.size() > kMaxListeners) {
    FailAt(f, "at most " + std::to_string(kMaxListeners) + " listen addresses");
  }
  return out;
}

void Loader::LoadRoot(const YAML::Node& root) {
  Field f{root, root.Mark(), ""};
  if (!root.IsNull() && !root.IsMap()) {
    Fail(root.Mark(),
         "expected a mapping of settings at the top level (got " + Describe(root) + ")");
  }
  Config& c = config_;
  Map(f, {
             {"listen",
              [&](const Field& v) {
                c.listen = ListenList(v);
                c.origins.listen = Where(v.mark);
              }},
             {"listen_unix_mode",
              [&](const Field& v) {
                c.listen_unix_mode = Convert(v, "an octal mode like 0660", ParseFileMode);
              }},
             {"upstream",
              [&](const Field& v) {
                c.upstream = v.value.IsMap() ? UpstreamSentinelForm(v)
                                             : Convert(v, "a URL like redis://127.0.0.1:6379",
                                                       ParseUpstreamUrl);
                c.origins.upstream = Where(v.mark);
              }},
             {"upstream_sentinel",
              [&](const Field& v) {
                UpstreamSentinel(v);
                c.origins.upstream_sentinel = Where(v.mark);
              }},
             {"upstream_pooling",
              [&](const Field& v) {
                c.upstream_pooling = Convert(v, "auto or dedicated", ParseUpstreamPooling);
                c.origins.upstream_pooling = Where(v.mark);
              }},
             {"upstream_tls", [&](const Field& v) { UpstreamTls(v); }},
             {"pool", [&](const Field& v) { Pool(v); }},
             {"threads",
              [&](const Field& v) { c.threads = static_cast<int>(Integer(v, 1, kMaxThreads)); }},
             {"admin", [&](const Field& v) { Admin(v); }},
             {"limits", [&](const Field& v) { Limits(v); }},
             {"analytics", [&](const Field& v) { Analytics(v); }},
             {"key_patterns", [&](const Field& v) { KeyPatterns(v); }},
             {"sanitization", [&](const Field& v) { Sanitization(v); }},
             {"bullmq", [&](const Field& v) { Bullmq(v); }},
             {"alerts",
              [&](const Field& v) {
                std::map<std::string, int> names;
                c.alerts.clear();
                List(v, [&](const Field& item) { c.alerts.push_back(Alert(item, &names)); });
              }},
             {"insights", [&](const Field& v) { Insights(v); }},
             {"notifications",
              [&](const Field& v) {
                std::map<std::string, int> names;
                c.notifications.clear();
                List(v, [&](const Field& item) {
                  c.notifications.push_back(Channel(item, &names));
                });
              }},
             {"logging", [&](const Field& v) { Logging(v); }},
         });
}

void Loader::Admin(const Field& f) {
  AdminConfig& a = config_.admin;
  Map(f, {
             {"listen",
              [&](const Field& v) {
                a.listen = Convert(v, "HOST:PORT", ParseHostPort);
                config_.origins.admin_listen = Where(v.mark);
              }},
             {"token",
              [&](const Field& v) {
                // Not Convert: its messages would quote the token.
                try {
                  a.token = ParseAdminToken(String(v));
                } catch (const ValueError& e) {
                  FailAt(v, e.what());
                }
                config_.origins.admin_token = Where(v.mark);
              }},
             {"protect_metrics", [&](const Field& v) { a.protect_metrics = Bool(v); }},
             {"max_connections",
              [&](const Field& v) {
                a.max_connections = static_cast<uint32_t>(Integer(v, 1, kMaxAdminConnections));
              }},
             {"header_timeout",
              [&](const Field& v) {
                a.header_timeout = DurationIn(v, milliseconds(100), minutes(5));
              }},
             {"idle_timeout",
              [&](const Field& v) { a.idle_timeout = DurationIn(v, milliseconds(100), hours(1)); }},
         });
}

UpstreamUrl Loader::UpstreamSentinelForm(const Field& f) {
  UpstreamUrl u;
  u.scheme = UpstreamScheme::kSentinel;
  u.host.clear();
  u.port = 0;
  auto present = Map(
      f, {
             {"sentinel",
              [&](const Field& v) {
                auto inner = Map(
                    v, {
                           {"master",
                            [&](const Field& m) {
                              u.master_name = NonEmpty(m, "the master name the sentinels monitor");
                            }},
                           {"addresses",
                            [&](const Field& a) {
                              List(a, [&](const Field& item) {
                                u.sentinels.push_back(Convert(item, "HOST:PORT of a sentinel",
                                                              ParseSentinelAddress));
                              });
                            }},
                       });
                if (!inner.count("master")) FailAt(v, "missing master (the monitored name)");
                if (u.sentinels.empty()) {
                  FailAt(v, "addresses: expected at least one sentinel HOST:PORT");
                }
              }},
             {"username", [&](const Field& v) { u.username = String(v); }},
             {"password", [&](const Field& v) { u.password = String(v); }},
             {"db", [&](const Field& v) { u.db = Integer(v, 0, 2147483647); }},
         });
  if (!present.count("sentinel")) {
    FailAt(f,
           "a mapping here is the Sentinel form and needs sentinel: {master, addresses}; write "
           "other upstreams as a URL like redis://127.0.0.1:6379");
  }
  return u;
}

void Loader::UpstreamSentinel(const Field& f) {
  SentinelConfig& s = config_.upstream_sentinel;
  Map(f, {
             {"username", [&](const Field& v) { s.username = String(v); }},
             {"password", [&](const Field& v) { s.password = String(v); }},
             {"timeout",
              [&](const Field& v) { s.timeout = DurationIn(v, milliseconds(10), seconds(30)); }},
             {"check_interval",
              [&](const Field& v) {
                s.check_interval = DurationIn(v, milliseconds(100), minutes(10));
              }},
         });
}

void Loader::Pool(const Field& f) {
  PoolConfig& p = config_.pool;
  Map(f, {
             {"shared_connections",
              [&](const Field& v) { p.shared_connections = Integer(v, 1, 16); }},
             {"spare_connections",
              [&](const Field& v) { p.spare_connections = Integer(v, 0, 64); }},
             {"max_shared_request",
              [&](const Field& v) { p.max_shared_request = Size(v, 4 * kKiB, kGiB); }},
         });
}

void Loader::UpstreamTls(const Field& f) {
  UpstreamTlsConfig& t = config_.upstream_tls;
  t.configured = true;
  config_.origins.upstream_tls = Where(f.mark);
  auto path = [&](const Field& v) { return NonEmpty(v, "a file path"); };
  Map(f, {
             {"ca_file", [&](const Field& v) { t.ca_file = path(v); }},
             {"cert_file", [&](const Field& v) { t.cert_file = path(v); }},
             {"key_file", [&](const Field& v) { t.key_file = path(v); }},
             {"server_name",
              [&](const Field& v) { t.server_name = NonEmpty(v, "a host name like redis.example"); }},
             {"min_version",
              [&](const Field& v) { t.min_version = Convert(v, "1.2 or 1.3", ParseTlsVersion); }},
             {"verify", [&](const Field& v) { t.verify = Bool(v); }},
         });
}

void Loader::Limits(const Field& f) {
  LimitsConfig& l = config_.limits;
  Map(f,
      {
          {"max_clients", [&](const Field& v) { l.max_clients = Integer(v, 1, kMaxClients); }},
          {"max_inflight_bytes_per_client",
           [&](const Field& v) { l.max_inflight_bytes_per_client = Size(v, 4 * kKiB, kGiB); }},
          {"connect_timeout",
           [&](const Field& v) { l.connect_timeout = DurationIn(v, milliseconds(1), minutes(5)); }},
          {"drain_timeout",
           [&](const Field& v) { l.drain_timeout = DurationIn(v, Duration{0}, hours(1)); }},
          {"drain_idle_timeout",
           [&](const Field& v) { l.drain_idle_timeout = DurationIn(v, Duration{0}, hours(1)); }},
      });
}

void Loader::Analytics(const Field& f) {
  AnalyticsConfig& a = config_.analytics;
  Map(f, {
             {"slow_command_threshold",
              [&](const Field& v) {
                a.slow_command_threshold = DurationIn(v, Duration{0}, hours(1));
              }},
             {"top_keys", [&](const Field& v) { a.top_keys = Integer(v, 0, kMaxTopKeys); }},
             {"slowlog_size", [&](const Field& v) { a.slowlog_size = Integer(v, 0, kMaxSlowlog); }},
             {"history", [&](const Field& v) { History(v); }},
         });
}

void Loader::History(const Field& f) {
  HistoryConfig& h = config_.analytics.history;
  const std::string tier = "RESOLUTION for RETENTION like 10s for 1h";
  auto present =
      Map(f, {
                 {"fine", [&](const Field& v) { h.fine = Convert(v, tier, ParseHistoryTier); }},
                 {"coarse", [&](const Field& v) { h.coarse = Convert(v, tier, ParseHistoryTier); }},
             });
  // Blame the coarse tier when it was written, else the fine one (the coarse is the default).
  auto it = present.find("coarse");
  if (it == present.end()) it = present.find("fine");
  if (it == present.end()) return;
  const Field& at = it->second;
  if (h.coarse.resolution % h.fine.resolution != Duration{0}) {
    FailAt(at, "the coarse resolution " + FormatDuration(h.coarse.resolution) +
                   " must be a multiple of the fine resolution " +
                   FormatDuration(h.fine.resolution));
  }
  if (h.coarse.retention < h.fine.retention) {
    FailAt(at, "the coarse retention " + FormatDuration(h.coarse.retention) +
                   " must be at least the fine retention " + FormatDuration(h.fine.retention));
  }
}

void Loader::KeyPatterns(const Field& f) {
  KeyPatternsConfig& k = config_.key_patterns;
  Map(f,
      {
          {"auto", [&](const Field& v) { k.auto_patterns = Bool(v); }},
          {"max_patterns", [&](const Field& v) { k.max_patterns = Integer(v, 1, kMaxPatterns); }},
          {"rules",
           [&](const Field& v) {
             k.rules.clear();
             List(v, [&](const Field& item) { k.rules.push_back(Rule(item)); });
           }},
      });
}

PatternRule Loader::Rule(const Field& f) {
  if (f.value.IsNull()) {
    FailAt(f, "expected a mapping like {match: \"user:*\", name: \"user:{id}\"} (got nothing)");
  }
  PatternRule rule;
  auto present = Map(f, {
                            {"match", [&](const Field& v) { RuleMatch(v, &rule); }},
                            {"name", [&](const Field& v) { rule.name = RuleName(v); }},
                        });
  for (const char* required : {"match", "name"}) {
    if (!present.count(required)) FailAt(f, "missing required key '" + std::string(required) + "'");
  }
  return rule;
}

void Loader::RuleMatch(const Field& f, PatternRule* rule) {
  rule->match = NonEmpty(f, "a glob or re:REGEX");
  if (rule->match.size() > kMaxRuleText) {
    FailAt(f, "too long (" + std::to_string(rule->match.size()) + " characters, at most " +
                  std::to_string(kMaxRuleText) + ")");
  }
  if (rule->match.rfind("re:", 0) == 0) {
    rule->kind = MatchKind::kRegex;
    rule->expression = rule->match.substr(3);
    if (rule->expression.empty()) FailAt(f, "empty regex after 're:'");
    if (std::string problem = RegexProblem(rule->expression); !problem.empty()) {
      FailAt(f, "invalid regex " + Quote(rule->expression) + " (" + problem + ")");
    }
  } else {
    rule->kind = MatchKind::kGlob;
    rule->expression = rule->match;
    if (std::string error = GlobError(rule->match); !error.empty()) {
      FailAt(f, "invalid glob " + Quote(rule->match) + " (" + error + ")");
    }
  }
}

std::string Loader::RuleName(const Field& f) {
  std::string name = NonEmpty(f, "a pattern name like 'user:{id}:profile'");
  if (name.size() > kMaxRuleText) {
    FailAt(f, "too long (" + std::to_string(name.size()) + " characters, at most " +
                  std::to_string(kMaxRuleText) + ")");
  }
  if (name == "other") FailAt(f, "'other' is reserved for the keys beyond max_patterns");
  return name;
}

void Loader::Sanitization(const Field& f) {
  SanitizationConfig& s = config_.sanitization;
  Map(f,
      {
          {"sensitive_key_patterns",
           [&](const Field& v) { s.sensitive_key_patterns = GlobList(v); }},
          {"mode",
           [&](const Field& v) { s.mode = Convert(v, "hash or redact", ParseSanitizeMode); }},
          {"capture_values", [&](const Field& v) { s.capture_values = Bool(v); }},
          {"max_value_size", [&](const Field& v) { s.max_value_size = Size(v, 0, kMiB); }},
          {"max_key_length",
           [&](const Field& v) { s.max_key_length = Integer(v, 1, kMaxKeyLength); }},
          {"exclude_key_patterns", [&](const Field& v) { s.exclude_key_patterns = GlobList(v); }},
          {"sample_rate", [&](const Field& v) { s.sample_rate = Number(v, 0, 1); }},
      });
}

void Loader::Bullmq(const Field& f) {
  BullmqConfig& b = config_.bullmq;
  auto present = Map(f, {
                            {"enabled", [&](const Field& v) { b.enabled = Bool(v); }},
                            {"prefixes", [&](const Field& v) { b.prefixes = Prefixes(v); }},
                            {"inspector_interval",
                             [&](const Field& v) {
                               // Each poll sends INFO plus two commands per queue state to
                               // the upstream: faster than twice a second is a load, not a view.
                               b.inspector_interval = DurationIn(v, milliseconds(500), hours(1));
                             }},
                        });
  if (b.enabled && b.prefixes.empty()) {
    FailAt(present.at("prefixes"),
           "expected at least one prefix (set bullmq.enabled: false to turn job tracking off)");
  }
}

std::vector<std::string> Loader::Prefixes(const Field& f) {
  std::vector<std::string> prefixes;
  List(f, [&](const Field& item) {
    std::string prefix = NonEmpty(item, "a key prefix like 'bull'");
    if (prefix.find_first_of(" \t\r\n") != std::string::npos) {
      FailAt(item, "a prefix cannot contain spaces (got " + Quote(prefix) + ")");
    }
    if (prefix.back() == ':') {
      FailAt(item, "write the prefix without the trailing ':' (got " + Quote(prefix) + ")");
    }
    if (std::find(prefixes.begin(), prefixes.end(), prefix) != prefixes.end()) {
      FailAt(item, "duplicate prefix " + Quote(prefix));
    }
    prefixes.push_back(prefix);
  });
  return prefixes;
}

std::string Loader::AlertName(const Field& f) {
  std::string name = NonEmpty(f, "an alert name like 'low_hit_rate'");
  if (name.size() > 64 || !std::all_of(name.begin(), name.end(), IsAlertNameChar)) {
    FailAt(f, "expected at most 64 letters, digits, '_', '-' or '.' (got " + Quote(name) + ")");
  }
  return name;
}

AlertRule Loader::Alert(const Field& f, std::map<std::string, int>* names) {
  if (f.value.IsNull()) {
    FailAt(f, "expected a mapping like {name: ..., metric: ..., below: ...} (got nothing)");
  }
  AlertRule rule;
  std::optional<Field> name, metric, pattern, queue, kind, above, below, cooldown;
  Map(f, {
             {"name",
              [&](const Field& v) {
                name = v;
                rule.name = AlertName(v);
              }},
             {"metric",
              [&](const Field& v) {
                metric = v;
                rule.metric = Convert(v,
                                      "hit_rate, error_rate, p99_latency, job_failure_rate, "
                                      "queue_backlog, stalled_jobs, slow_jobs, upstream_down, "
                                      "memory_used_ratio or insight",
                                      ParseAlertMetric);
              }},
             {"pattern",
              [&](const Field& v) {
                pattern = v;
                rule.pattern = Glob(v);
              }},
             {"queue",
              [&](const Field& v) {
                queue = v;
                rule.queue = Glob(v);
              }},
             {"kind",
              [&](const Field& v) {
                kind = v;
                rule.kind = Glob(v);
              }},
             {"above", [&](const Field& v) { above = v; }},
             {"below", [&](const Field& v) { below = v; }},
             {"for",
              [&](const Field& v) { rule.for_duration = DurationIn(v, Duration{0}, hours(24)); }},
             {"cooldown",
              [&](const Field& v) {
                cooldown = v;
                rule.cooldown = DurationIn(v, Duration{0}, hours(168));
              }},
             {"severity",
              [&](const Field& v) {
                rule.severity = Convert(v, "info, warning, error or critical", ParseSeverity);
              }},
         });
  if (!name) FailAt(f, "missing required key 'name'");
  if (!metric) FailAt(f, "missing required key 'metric'");
  if (!cooldown) rule.cooldown = DefaultCooldown(rule.severity);
  const AlertMetric m = rule.metric;
  const bool optional_threshold = m == AlertMetric::kUpstreamDown || m == AlertMetric::kInsight;
  if (above && below) FailAt(*below, "give either 'above' or 'below', not both");
  if (!above && !below && !optional_threshold) {
    FailAt(f, "missing the threshold: 'above' or 'below'");
  }
  rule.comparison = below ? Comparison::kBelow : Comparison::kAbove;
  if (!above && !below) {
    rule.threshold = 0;  // upstream_down, insight: fire at the first one
  } else {
    const Field& threshold = above ? *above : *below;
    if (m == AlertMetric::kP99Latency || m == AlertMetric::kSlowJobs) {
      rule.threshold =
          std::chrono::duration<double>(DurationIn(threshold, Duration{1}, hours(24))).count();
    } else if (m == AlertMetric::kQueueBacklog || m == AlertMetric::kStalledJobs ||
               m == AlertMetric::kInsight || m == AlertMetric::kUpstreamDown) {
      double v = Convert(threshold, "a number", ParseNumber);
      if (v < 0 || v > 1e12) FailAt(threshold, OutOfRange("0", "1e12", FormatNumber(v)).what());
      rule.threshold = v;
    } else {
      double v = Convert(threshold, "a number", ParseNumber);
      if (v < 0 || v > 1) {
        std::string got = FormatNumber(v);
        // The seeds wrote rates as percentages (hitRate: 80); say so when that is the likely
        // slip.
        if (v > 1 && v <= 100) got += "; rates are fractions, 0.8 is 80%";
        FailAt(threshold, OutOfRange("0", "1", got).what());
      }
      rule.threshold = v;
    }
  }
  const bool jobs = m == AlertMetric::kJobFailureRate || m == AlertMetric::kQueueBacklog ||
                    m == AlertMetric::kStalledJobs || m == AlertMetric::kSlowJobs;
  const bool patterns =
      m == AlertMetric::kHitRate || m == AlertMetric::kErrorRate || m == AlertMetric::kP99Latency;
  const std::string metric_name(ToString(m));
  if (pattern && !patterns) {
    FailAt(*pattern, metric_name + (jobs ? " alerts select queues: use 'queue'"
                                         : " alerts do not select key patterns"));
  }
  // The engine measures error_rate and p99_latency over all commands (the recorder keeps no
  // per-pattern error counts, and the recent window no per-pattern latency): a narrower
  // selector would be silently ignored.
  if ((m == AlertMetric::kErrorRate || m == AlertMetric::kP99Latency) && pattern &&
      rule.pattern != "*") {
    FailAt(*pattern,
           "error_rate and p99_latency alerts cover all commands; 'pattern' selects "
           "key patterns for hit_rate alerts only (leave it out or write \"*\")");
  }
  if (queue && !jobs) {
    FailAt(*queue, "only job alerts (job_failure_rate, queue_backlog, stalled_jobs, slow_jobs) "
                   "select queues" + std::string(patterns ? ": use 'pattern'" : ""));
  }
  if (kind && m != AlertMetric::kInsight) FailAt(*kind, "only insight alerts select a 'kind'");
  if (jobs && !queue) rule.queue = "*";
  if (patterns && !pattern) rule.pattern = "*";
  if (m == AlertMetric::kInsight && !kind) rule.kind = "*";
  auto [it, inserted] = names->emplace(rule.name, name->mark.line + 1);
  if (!inserted) {
    FailAt(*name, "duplicate alert name " + Quote(rule.name) + " (first at line " +
                      std::to_string(it->second) + ")");
  }
  return rule;
}

void Loader::Insights(const Field& f) {
  InsightsConfig& i = config_.insights;
  auto count = [&](const Field& v) { return static_cast<uint32_t>(Integer(v, 1, 100'000'000)); };
  Map(f, {
             {"enabled", [&](const Field& v) { i.enabled = Bool(v); }},
             {"window", [&](const Field& v) { i.window = DurationIn(v, seconds(1), hours(1)); }},
             {"full_scan_bytes", [&](const Field& v) { i.full_scan_bytes = Size(v, 1, kGiB); }},
             {"big_value_bytes", [&](const Field& v) { i.big_value_bytes = Size(v, 1, kGiB); }},
             {"hot_key_share", [&](const Field& v) { i.hot_key_share = Number(v, 0.01, 1); }},
             {"hot_key_min_commands", [&](const Field& v) { i.hot_key_min_commands = count(v); }},
             {"low_hit_rate", [&](const Field& v) { i.low_hit_rate = Number(v, 0, 1); }},
             {"min_lookups", [&](const Field& v) { i.min_lookups = count(v); }},
             {"warmup", [&](const Field& v) { i.warmup = DurationIn(v, Duration{0}, hours(24)); }},
             {"backlog_min_waiting", [&](const Field& v) { i.backlog_min_waiting = count(v); }},
             {"slow_job",
              [&](const Field& v) { i.slow_job = DurationIn(v, milliseconds(1), hours(24)); }},
             {"very_slow_job",
              [&](const Field& v) { i.very_slow_job = DurationIn(v, milliseconds(1), hours(24)); }},
             {"job_failure_warning",
              [&](const Field& v) { i.job_failure_warning = Number(v, 0.01, 1); }},
             {"job_failure_critical",
              [&](const Field& v) { i.job_failure_critical = Number(v, 0.01, 1); }},
             {"min_jobs", [&](const Field& v) { i.min_jobs = count(v); }},
             {"baseline_windows",
              [&](const Field& v) { i.baseline_windows = static_cast<uint32_t>(Integer(v, 1, 1000)); }},
             {"regression_ratio", [&](const Field& v) { i.regression_ratio = Number(v, 0.01, 100); }},
             {"regression_min",
              [&](const Field& v) { i.regression_min = DurationIn(v, Duration{0}, seconds(60)); }},
             {"regression_min_calls", [&](const Field& v) { i.regression_min_calls = count(v); }},
             {"churn_connections_per_command",
              [&](const Field& v) { i.churn_connections_per_command = Number(v, 0.001, 1); }},
             {"churn_min_connections", [&](const Field& v) { i.churn_min_connections = count(v); }},
             {"no_ttl_min_keys", [&](const Field& v) { i.no_ttl_min_keys = count(v); }},
             {"n_plus_one_min_reads", [&](const Field& v) { i.n_plus_one_min_reads = count(v); }},
             {"job_history_min_jobs", [&](const Field& v) { i.job_history_min_jobs = count(v); }},
         });
  if (i.very_slow_job < i.slow_job) {
    FailAt(f, "very_slow_job (" + FormatDuration(i.very_slow_job) + ") is shorter than slow_job (" +
                  FormatDuration(i.slow_job) + ")");
  }
  if (i.job_failure_critical < i.job_failure_warning) {
    FailAt(f, "job_failure_critical is below job_failure_warning");
  }
}

NotificationChannel Loader::Channel(const Field& f, std::map<std::string, int>* names) {
  if (f.value.IsNull()) {
    FailAt(f, "expected a mapping like {name: ..., type: webhook, url: ...} (got nothing)");
  }
  NotificationChannel ch;
  std::optional<Field> name, url, secret;
  Map(f, {
             {"name",
              [&](const Field& v) {
                name = v;
                ch.name = AlertName(v);
              }},
             {"type",
              [&](const Field& v) { ch.type = Convert(v, "webhook or slack", ParseChannelType); }},
             {"url",
              [&](const Field& v) {
                url = v;
                ch.url = NonEmpty(v, "an http:// or https:// URL");
                if (ch.url.rfind("http://", 0) != 0 && ch.url.rfind("https://", 0) != 0) {
                  FailAt(v, "expected an http:// or https:// URL (got " + Quote(ch.url) + ")");
                }
                if (ch.url.find_first_of(" \t\r\n") != std::string::npos) {
                  FailAt(v, "a URL cannot contain spaces");
                }
              }},
             {"min_severity",
              [&](const Field& v) {
                ch.min_severity =
                    Convert(v, "info, warning, error or critical", ParseSeverity);
              }},
             {"hmac_secret_env",
              [&](const Field& v) {
                secret = v;
                ch.hmac_secret_env = NonEmpty(v, "an environment variable name");
                for (char c : ch.hmac_secret_env) {
                  if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) {
                    FailAt(v, "expected an environment variable name (letters, digits, '_'), "
                              "not the secret itself");
                  }
                }
              }},
             {"timeout",
              [&](const Field& v) { ch.timeout = DurationIn(v, milliseconds(10), seconds(60)); }},
             {"max_attempts",
              [&](const Field& v) { ch.max_attempts = static_cast<uint32_t>(Integer(v, 1, 10)); }},
             {"backoff",
              [&](const Field& v) { ch.backoff = DurationIn(v, milliseconds(1), minutes(5)); }},
         });
  if (!name) FailAt(f, "missing required key 'name'");
  if (!url) FailAt(f, "missing required key 'url'");
  if (secret && ch.type == ChannelType::kSlack) {
    FailAt(*secret, "hmac_secret_env is for webhook channels (Slack does not check it)");
  }
  auto [it, inserted] = names->emplace(ch.name, name->mark.line + 1);
  if (!inserted) {
    FailAt(*name, "duplicate notification channel name " + Quote(ch.name) + " (first at line " +
                      std::to_string(it->second) + ")");
  }
  return ch;
}

void Loader::Logging(const Field& f) {
  LoggingConfig& l = config_.logging;
  Map(f, {
             {"level",
              [&](const Field& v) {
                l.level = Convert(v, "trace, debug, info, warn or error", ParseLogLevel);
              }},
             {"format",
              [&](const Field& v) { l.format = Convert(v, "json, text or auto", ParseLogFormat); }},
         });
}

}  // namespace

Config LoadConfigString(std::string_view text, const std::string& name, const EnvGetter& env) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::ParserException& e) {
    std::string where = name;
    if (!e.mark.is_null()) {
      where += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    }
    throw ConfigError(where, "YAML syntax error: " + e.msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError(name, std::string("YAML error: ") + e.what());
  }
  Config config;
  if (docs.size() > 1) {
    const YAML::Mark m = docs[1].Mark();
    throw ConfigError(name + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1),
                      "expected a single YAML document (found a second one)");
  }
  Loader loader(name, env, config);
  if (!docs.empty()) loader.LoadRoot(docs[0]);
  return config;
}

Config LoadConfigFile(const std::string& path, const EnvGetter& env) {
  auto cannot_read = [&](int err) {
    return ConfigError(path, std::string("cannot read the configuration file (") +
                                 (err != 0 ? std::strerror(err) : "read error") + ")");
  };
  // An ifstream opens a directory without complaint and then reads nothing.
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw cannot_read(EISDIR);
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) throw cannot_read(errno);
  Config config = LoadConfigString(text.str(), path, env);
  config.config_file = path;
  return config;
}

}  // namespace respscope::config
