#include "config/values.h"

#include <algorithm>
#include <boost/url/ipv4_address.hpp>
#include <boost/url/ipv6_address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>
#include <vector>

namespace respscope::config {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// Splits "1.5ms" into the number "1.5" and the suffix "ms". The number is digits with an
// optional fraction; returns false when it is malformed (".5", "1.", "-1", "").
bool SplitNumberUnit(std::string_view text, std::string_view* number, std::string_view* unit) {
  size_t i = 0;
  while (i < text.size() && IsDigit(text[i])) ++i;
  if (i == 0) return false;
  if (i < text.size() && text[i] == '.') {
    size_t frac = ++i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    if (i == frac) return false;
  }
  *number = text.substr(0, i);
  *unit = text.substr(i);
  return true;
}

double ToDouble(std::string_view number) {
  double v = 0;
  std::from_chars(number.data(), number.data() + number.size(), v);
  return v;
}

template <typename E>
struct EnumName {
  std::string_view name;
  E value;
};

template <typename E, size_t N>
E ParseEnum(std::string_view text, const EnumName<E> (&names)[N], size_t listed) {
  for (const auto& n : names) {
    if (EqualsNoCase(text, n.name)) return n.value;
  }
  // Only the first `listed` names are advertised; the rest are accepted aliases.
  std::string expected = "expected one of ";
  for (size_t i = 0; i < listed; ++i) {
    if (i > 0) expected += ", ";
    expected += names[i].name;
  }
  throw ValueError(expected + " (got " + Quote(text) + ")");
}

// A host name as DNS writes it; IP literals are checked by Boost.URL.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '-' ||
              c == '.' || c == '_';
    if (!ok) return false;
  }
  return true;
}

// Parses a port; min is 0 for listen addresses (any free port) and 1 for upstream.
uint16_t ParsePort(std::string_view text, int min, const std::string& prefix) {
  if (!AllDigits(text) || text.size() > 5 || std::stoi(std::string(text)) < min ||
      std::stoi(std::string(text)) > 65535) {
    throw ValueError(prefix + "port must be a number between " + std::to_string(min) +
                     " and 65535 (got " + Quote(text) + ")");
  }
  return static_cast<uint16_t>(std::stoi(std::string(text)));
}

int64_t ParseDb(std::string_view text, const char* what) {
  if (!AllDigits(text) || text.size() > 10 ||
      std::stoll(std::string(text)) > std::numeric_limits<int32_t>::max()) {
    throw ValueError(std::string("invalid URL: ") + what + " (got " + Quote(text) + ")");
  }
  return std::stoll(std::string(text));
}

// %XX escapes of a URL's userinfo or master name.
std::string PctDecode(std::string_view text, const char* what) {
  auto hex = [](char c) -> int {
    if (IsDigit(c)) return c - '0';
    c = Lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size() || hex(text[i + 1]) < 0 || hex(text[i + 2]) < 0) {
      throw ValueError(std::string("invalid URL: bad percent escape in the ") + what);
    }
    out += static_cast<char>(hex(text[i + 1]) * 16 + hex(text[i + 2]));
    i += 2;
  }
  return out;
}

}  // namespace

HostPort ParseSentinelAddress(std::string_view text) {
  if (text.empty()) throw ValueError("invalid URL: empty sentinel address (a stray ',')");
  std::string full(text);
  bool has_port = text.front() == '['
                      ? text.find("]:") != std::string_view::npos
                      : text.find(':') != std::string_view::npos &&
                            text.find(':') == text.rfind(':');
  // An unbracketed IPv6 address has several ':'; ParseHostPort explains the brackets.
  if (!has_port && (text.front() == '[' || text.find(':') == std::string_view::npos)) {
    full += ":" + std::to_string(kDefaultSentinelPort);
  }
  HostPort hp;
  try {
    hp = ParseHostPort(full);
  } catch (const ValueError& e) {
    throw ValueError(std::string("invalid URL: sentinel ") + e.what());
  }
  if (hp.port == 0) throw ValueError("invalid URL: sentinel port 0 (got " + Quote(text) + ")");
  return hp;
}

namespace {

// redis+sentinel://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB][?db=DB]. Not
// boost::urls: a list of hosts is not an RFC 3986 authority.
UpstreamUrl ParseSentinelUrl(std::string_view text) {
  UpstreamUrl out;
  out.scheme = UpstreamScheme::kSentinel;
  out.host.clear();
  out.port = 0;
  std::string_view rest = text.substr(text.find("://") + 3);
  if (rest.find('#') != std::string_view::npos) {
    throw ValueError("invalid URL: unexpected '#' fragment");
  }
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      out.password = PctDecode(userinfo, "password");
    } else {
      out.username = PctDecode(userinfo.substr(0, colon), "user name");
      out.password = PctDecode(userinfo.substr(colon + 1), "password");
    }
  }
  if (authority.empty()) throw ValueError("invalid URL: missing sentinel address");
  while (true) {
    size_t comma = authority.find(',');
    out.sentinels.push_back(ParseSentinelAddress(authority.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    authority = authority.substr(comma + 1);
  }
  std::string_view name = path.substr(0, path.find('/'));
  if (name.empty()) {
    throw ValueError("invalid URL: missing the master name (redis+sentinel://HOST:PORT/MASTER)");
  }
  out.master_name = PctDecode(name, "master name");
  for (unsigned char c : out.master_name) {
    if (c <= ' ' || c == 0x7f) {
      throw ValueError("invalid URL: the master name has spaces or control characters");
    }
  }
  bool db_in_path = false;
  if (size_t s2 = path.find('/'); s2 != std::string_view::npos) {
    std::string_view db = path.substr(s2 + 1);
    if (!db.empty()) {
      out.db = ParseDb(db, "expected /DB, a database number, after the master name");
      db_in_path = true;
    }
  }
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view param = query.substr(0, amp);
    size_t eq = param.find('=');
    std::string_view key = param.substr(0, eq);
    if (key != "db") {
      throw ValueError("invalid URL: unsupported query parameter " + Quote(key) +
                       " (only db is supported; the sentinels' credentials are set in "
                       "upstream_sentinel)");
    }
    if (db_in_path) throw ValueError("invalid URL: the database is given twice");
    out.db = ParseDb(eq == std::string_view::npos ? "" : param.substr(eq + 1),
                     "db must be a database number");
    db_in_path = true;
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return out;
}

}  // namespace

std::string Quote(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : text) {
    if (n++ == kMax) {
      out += "...";
      break;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  // Optimal string alignment: Levenshtein plus adjacent transpositions ("fro" -> "for" is 1).
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

ValueError OutOfRange(std::string_view lo, std::string_view hi, std::string_view got) {
  return ValueError("value out of range (must be between " + std::string(lo) + " and " +
                    std::string(hi) + ", got " + std::string(got) + ")");
}

Duration ParseDuration(std::string_view text) {
  if (text == "0") return Duration{0};
  std::string_view number, unit;
  int64_t unit_us = 0;
  if (SplitNumberUnit(text, &number, &unit)) {
    static constexpr std::pair<std::string_view, int64_t> kUnits[] = {
        {"us", 1}, {"ms", 1000}, {"s", 1000000}, {"m", 60000000}, {"h", 3600000000}};
    for (const auto& [name, us] : kUnits) {
      if (unit == name) unit_us = us;
    }
  }
  if (unit_us == 0) {
    throw ValueError("expected a duration like 10ms, 2s, 5m (got " + Quote(text) + ")");
  }
  double us = ToDouble(number) * static_cast<double>(unit_us);
  if (!(us <= 1e15)) throw ValueError("duration too long (got " + Quote(text) + ")");
  return Duration{std::llround(us)};
}

uint64_t ParseSize(std::string_view text) {
  std::string_view number, unit;
  bool whole = false;
  uint64_t unit_bytes = 0;
  if (SplitNumberUnit(text, &number, &unit)) {
    whole = number.find('.') == std::string_view::npos;
    static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
        {"", 1}, {"B", 1}, {"KiB", kKiB}, {"MiB", kMiB}, {"GiB", kGiB}};
    for (const auto& [name, bytes] : kUnits) {
      if (unit == name) unit_bytes = bytes;
    }
    if (unit_bytes == 1 && !whole) unit_bytes = 0;  // "1.5" or "1.5B": no fractional bytes
  }
  if (unit_bytes == 0) {
    throw ValueError("expected a size like 512KiB, 8MiB (got " + Quote(text) + ")");
  }
  double bytes = ToDouble(number) * static_cast<double>(unit_bytes);
  if (!(bytes <= static_cast<double>(uint64_t{1} << 50))) {
    throw ValueError("size too large (got " + Quote(text) + ")");
  }
  return static_cast<uint64_t>(bytes);
}

HostPort ParseHostPort(std::string_view text) {
  const std::string expected =
      "expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got " + Quote(text) + ")";
  HostPort out;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw ValueError(expected);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!boost::urls::parse_ipv6_address(host)) {
      throw ValueError("invalid IPv6 address " + Quote(host));
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) throw ValueError(expected);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      throw ValueError("IPv6 addresses need brackets, like [::1]:6380 (got " + Quote(text) + ")");
    }
    if (host.empty()) {
      throw ValueError("missing host in " + Quote(text) +
                       " (use 0.0.0.0:PORT to listen on every interface)");
    }
    bool ipv4_like = true;
    for (char c : host) ipv4_like = ipv4_like && (IsDigit(c) || c == '.');
    if (ipv4_like ? !boost::urls::parse_ipv4_address(host) : !IsHostName(host)) {
      throw ValueError("invalid host " + Quote(host));
    }
  }
  out.host = std::string(host);
  out.port = ParsePort(port, 0, "");
  return out;
}

ListenAddress ParseListenAddress(std::string_view text) {
  if (text.size() < 5 || !EqualsNoCase(text.substr(0, 5), "unix:")) {
    return ListenAddress{ParseHostPort(text), {}};
  }
  std::string_view path = text.substr(5);
  if (path.starts_with("//")) {
    path.remove_prefix(2);
    if (!path.starts_with("/")) {
      throw ValueError("a unix socket address has no host; write unix:///ABSOLUTE/PATH (got " +
                       Quote(text) + ")");
    }
  }
  if (path.empty()) throw ValueError("missing socket path in " + Quote(text));
  if (path.front() != '/') {
    throw ValueError("the socket path must be absolute (got " + Quote(path) + ")");
  }
  if (path.back() == '/') {
    throw ValueError("the socket path names a directory (got " + Quote(path) + ")");
  }
  if (path.find('\0') != std::string_view::npos || path.find('?') != std::string_view::npos ||
      path.find('#') != std::string_view::npos) {
    throw ValueError("unexpected '?', '#' or NUL in the socket path " + Quote(path));
  }
  if (path.size() > kMaxUnixPath) {
    throw ValueError("the socket path is " + std::to_string(path.size()) +
                     " bytes long; the system allows at most " + std::to_string(kMaxUnixPath) +
                     " (got " + Quote(path) + ")");
  }
  return ListenAddress{HostPort{}, std::string(path)};
}

std::vector<ListenAddress> ParseListenList(std::string_view text) {
  std::vector<ListenAddress> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item =
        text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) throw ValueError("empty listen address in " + Quote(text));
    ListenAddress a = ParseListenAddress(item);
    if (std::find(out.begin(), out.end(), a) != out.end()) {
      throw ValueError("listen address " + Quote(item) + " given twice");
    }
    out.push_back(std::move(a));
    if (out.size() > kMaxListeners) {
      throw ValueError("at most " + std::to_string(kMaxListeners) + " listen addresses");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

uint32_t ParseFileMode(std::string_view text) {
  const std::string expected =
      "expected permission bits in octal like 0660 or 0600 (got " + Quote(text) + ")";
  std::string_view digits = text;
  if (digits.size() > 2 && digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O')) {
    digits.remove_prefix(2);
  }
  if (digits.empty() || digits.size() > 4) throw ValueError(expected);
  uint32_t mode = 0;
  for (char c : digits) {
    if (c < '0' || c > '7') throw ValueError(expected);
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (mode > 0777) throw ValueError("setuid, setgid and sticky bits are not allowed: " + expected);
  return mode;
}

std::string FormatFileMode(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0%03o", static_cast<unsigned>(mode & 0777));
  return buf;
}

UpstreamUrl ParseUpstreamUrl(std::string_view text) {
  static const std::string kForms =
      "expected redis://[USER:PASSWORD@]HOST[:PORT][/DB], rediss://..., unix:///PATH or "
      "redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB]";
  if (text.size() >= 17 && EqualsNoCase(text.substr(0, 17), "redis+sentinel://")) {
    return ParseSentinelUrl(text);
  }
  bool unix_form = text.size() >= 5 && EqualsNoCase(text.substr(0, 5), "unix:");
  if (!unix_form && text.find("://") == std::string_view::npos) {
    throw ValueError("invalid URL: " + kForms);
  }
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw ValueError("invalid URL: " + kForms);
  const boost::urls::url_view& u = *parsed;

  UpstreamUrl out;
  std::string scheme(u.scheme());
  for (char& c : scheme) c = Lower(c);
  if (scheme == "redis") {
    out.scheme = UpstreamScheme::kRedis;
  } else if (scheme == "rediss") {
    out.scheme = UpstreamScheme::kRediss;
  } else if (scheme == "unix") {
    out.scheme = UpstreamScheme::kUnix;
  } else {
    throw ValueError("invalid URL: unsupported scheme " + Quote(scheme) +
                     " (expected redis, rediss, unix or redis+sentinel)");
  }
  if (u.has_fragment()) throw ValueError("invalid URL: unexpected '#' fragment");
  if (u.has_userinfo()) {
    // redis-cli: "user:pass" is a user and a password; no ':' means a password alone.
    if (u.has_password()) {
      out.username = u.user();
      out.password = u.password();
    } else {
      out.password = u.user();
    }
  }

  std::string path = u.path();
  if (out.scheme == UpstreamScheme::kUnix) {
    out.host.clear();
    out.port = 0;
    if (!u.encoded_host().empty()) {
      throw ValueError(
          "invalid URL: a unix socket URL has no host; write unix:///ABSOLUTE/PATH "
          "(got host " +
          Quote(u.encoded_host()) + ")");
    }
    if (u.has_port()) throw ValueError("invalid URL: a unix socket URL has no port");
    if (path.empty()) throw ValueError("invalid URL: missing socket path");
    if (path.front() != '/') {
      throw ValueError("invalid URL: the socket path must be absolute (got " + Quote(path) + ")");
    }
    out.path = path;
  } else {
    if (u.host_type() == boost::urls::host_type::ipvfuture) {
      throw ValueError("invalid URL: unsupported IPvFuture host");
    }
    out.host = u.host_address();
    if (out.host.empty()) throw ValueError("invalid URL: missing host");
    if (u.host_type() == boost::urls::host_type::name && !IsHostName(out.host)) {
      throw ValueError("invalid URL: invalid host " + Quote(out.host));
    }
    if (u.has_port()) out.port = ParsePort(u.port(), 1, "invalid URL: ");
    if (!path.empty() && path != "/") {
      out.db = ParseDb(std::string_view(path).substr(1),
                       "expected /DB, a database number, after the address");
    }
  }

  if (u.has_query()) {
    bool db_in_path = !path.empty() && path != "/" && out.scheme != UpstreamScheme::kUnix;
    for (auto param : u.params()) {
      if (param.key != "db") {
        throw ValueError("invalid URL: unsupported query parameter " + Quote(param.key) +
                         " (only db is supported)");
      }
      if (db_in_path) throw ValueError("invalid URL: the database is given twice");
      out.db = ParseDb(param.value, "db must be a database number");
    }
  }
  return out;
}

HistoryTier ParseHistoryTier(std::string_view text) {
  // Three words: RESOLUTION for RETENTION.
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') ++i;
    size_t start = i;
    while (i < text.size() && text[i] != ' ') ++i;
    if (i > start) words.push_back(text.substr(start, i - start));
  }
  if (words.size() != 3 || words[1] != "for") {
    throw ValueError("expected RESOLUTION for RETENTION like 10s for 1h (got " + Quote(text) + ")");
  }
  HistoryTier tier{ParseDuration(words[0]), ParseDuration(words[2])};
  constexpr Duration kSecond = std::chrono::seconds(1);
  if (tier.resolution < kSecond || tier.resolution % kSecond != Duration{0}) {
    throw ValueError("the resolution must be a whole number of seconds (got " +
                     FormatDuration(tier.resolution) + ")");
  }
  if (tier.retention < tier.resolution || tier.retention % tier.resolution != Duration{0}) {
    throw ValueError("the retention must be a multiple of the resolution (got " +
                     FormatDuration(tier.resolution) + " for " + FormatDuration(tier.retention) +
                     ")");
  }
  int64_t points = tier.retention / tier.resolution;
  if (points > kMaxHistoryPoints) {
    throw ValueError("too many points (" + FormatDuration(tier.resolution) + " for " +
                     FormatDuration(tier.retention) + " is " + std::to_string(points) +
                     ", at most " + std::to_string(kMaxHistoryPoints) + ")");
  }
  return tier;
}

std::string ParseAdminToken(std::string_view text) {
  for (char c : text) {
    if (c == '\n' || c == '\r') {
      throw ValueError("the token contains a line break (a secret file with a trailing newline?)");
    }
    if (c <= ' ' || c > '~') throw ValueError("the token must be printable ASCII without spaces");
  }
  return std::string(text);
}

int64_t ParseInteger(std::string_view text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range) {
    throw ValueError("integer too large (got " + Quote(text) + ")");
  }
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw ValueError("expected an integer (got " + Quote(text) + ")");
  }
  return v;
}

double ParseNumber(std::string_view text) {
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(v)) {
    throw ValueError("expected a number (got " + Quote(text) + ")");
  }
  return v;
}

bool ParseBool(std::string_view text) {
  if (EqualsNoCase(text, "true")) return true;
  if (EqualsNoCase(text, "false")) return false;
  throw ValueError("expected true or false (got " + Quote(text) + ")");
}

LogLevel ParseLogLevel(std::string_view text) {
  static constexpr EnumName<LogLevel> kNames[] = {
      {"trace", LogLevel::kTrace}, {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
      {"warn", LogLevel::kWarn},   {"error", LogLevel::kError}, {"warning", LogLevel::kWarn}};
  return ParseEnum(text, kNames, 5);
}

UpstreamPooling ParseUpstreamPooling(std::string_view text) {
  static constexpr EnumName<UpstreamPooling> kNames[] = {{"auto", UpstreamPooling::kAuto},
                                                         {"dedicated", UpstreamPooling::kDedicated}};
  return ParseEnum(text, kNames, 2);
}

TlsVersion ParseTlsVersion(std::string_view text) {
  if (text == "1.2" || EqualsNoCase(text, "tlsv1.2")) return TlsVersion::k12;
  if (text == "1.3" || EqualsNoCase(text, "tlsv1.3")) return TlsVersion::k13;
  throw ValueError("expected 1.2 or 1.3 (got " + Quote(text) + ")");
}

LogFormat ParseLogFormat(std::string_view text) {
  static constexpr EnumName<LogFormat> kNames[] = {
      {"json", LogFormat::kJson}, {"text", LogFormat::kText}, {"auto", LogFormat::kAuto}};
  return ParseEnum(text, kNames, 3);
}

SanitizeMode ParseSanitizeMode(std::string_view text) {
  static constexpr EnumName<SanitizeMode> kNames[] = {{"hash", SanitizeMode::kHash},
                                                      {"redact", SanitizeMode::kRedact}};
  return ParseEnum(text, kNames, 2);
}

AlertMetric ParseAlertMetric(std::string_view text) {
  static constexpr EnumName<AlertMetric> kNames[] = {
      {"hit_rate", AlertMetric::kHitRate},
      {"error_rate", AlertMetric::kErrorRate},
      {"p99_latency", AlertMetric::kP99Latency},
      {"job_failure_rate", AlertMetric::kJobFailureRate},
      {"queue_backlog", AlertMetric::kQueueBacklog},
      {"stalled_jobs", AlertMetric::kStalledJobs},
      {"slow_jobs", AlertMetric::kSlowJobs},
      {"upstream_down", AlertMetric::kUpstreamDown},
      {"memory_used_ratio", AlertMetric::kMemoryUsedRatio},
      {"insight", AlertMetric::kInsight}};
  return ParseEnum(text, kNames, 10);
}

Severity ParseSeverity(std::string_view text) {
  static constexpr EnumName<Severity> kNames[] = {{"info", Severity::kInfo},
                                                  {"warning", Severity::kWarning},
                                                  {"error", Severity::kError},
                                                  {"critical", Severity::kCritical}};
  return ParseEnum(text, kNames, 4);
}

ChannelType ParseChannelType(std::string_view text) {
  static constexpr EnumName<ChannelType> kNames[] = {{"webhook", ChannelType::kWebhook},
                                                     {"slack", ChannelType::kSlack}};
  return ParseEnum(text, kNames, 2);
}

std::string FormatDuration(Duration d) {
  static constexpr std::pair<int64_t, const char*> kUnits[] = {
      {3600000000, "h"}, {60000000, "m"}, {1000000, "s"}, {1000, "ms"}, {1, "us"}};
  int64_t us = d.count();
  if (us == 0) return "0s";
  for (const auto& [size, name] : kUnits) {
    if (us % size == 0) return std::to_string(us / size) + name;
  }
  return std::to_string(us) + "us";  // not reached: 1 divides everything
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}};
  for (const auto& [size, name] : kUnits) {
    if (bytes != 0 && bytes % size == 0) return std::to_string(bytes / size) + name;
  }
  return std::to_string(bytes) + "B";
}

}  // namespace respscope::config
