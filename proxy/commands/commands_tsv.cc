#include "proxy/commands/commands_tsv.h"

#include <array>
#include <unordered_set>

namespace respscope::commands::detail {
namespace {

struct FlagName {
  std::string_view name;
  uint32_t bit;
};

// Redis 7.0's COMMAND flag vocabulary (gen_commands.py keeps the same list) and the three the
// overlay adds. Flags with bit 0 are understood but unused.
constexpr std::array<FlagName, 25> kFlagNames = {{
    {"readonly", kFlagRead},
    {"write", kFlagWrite},
    {"blocking", kFlagBlocking},
    {"pubsub", kFlagPubSub},
    {"admin", kFlagAdmin},
    {"script", kFlagScript},
    {"noscript", kFlagNoScript},
    {"loading", kFlagLoading},
    {"stale", kFlagStale},
    {"fast", kFlagFast},
    {"movablekeys", kFlagMovableKeys},
    {"sensitive_args", kFlagSensitiveArgs},
    {"echo_args", kFlagEchoesArgs},
    {"allow_busy", 0},
    {"asking", 0},
    {"denyoom", 0},
    {"may_replicate", 0},
    {"no_async_loading", 0},
    {"no_auth", 0},
    {"no_mandatory_keys", 0},
    {"no_multi", 0},
    {"only_sentinel", 0},
    {"sentinel", 0},
    {"skip_monitor", 0},
    {"skip_slowlog", 0},
}};

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(sep, start);
    out.push_back(s.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

bool ParseIntIn(std::string_view s, int lo, int hi, int* out) {
  int64_t v = 0;
  if (!ParseInt64(s, &v) || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// "NAME(a,b,c)" -> args; false when the shape is wrong.
bool ParseCall(std::string_view s, std::string_view name, std::vector<std::string_view>* args) {
  if (s.size() < name.size() + 2 || s.substr(0, name.size()) != name || s[name.size()] != '(' ||
      s.back() != ')') {
    return false;
  }
  *args = Split(s.substr(name.size() + 1, s.size() - name.size() - 2), ',');
  return true;
}

bool ParseSpec(std::string_view text, KeySpec* spec, std::string* why) {
  const size_t gt = text.find('>');
  if (gt == std::string_view::npos) {
    *why = "key spec without '>'";
    return false;
  }
  const std::string_view begin = text.substr(0, gt);
  const std::string_view find = text.substr(gt + 1);
  std::vector<std::string_view> a;
  constexpr int kMax = kMaxSpecValue;
  if (ParseCall(begin, "idx", &a) && a.size() == 1) {
    spec->begin = KeySpec::Begin::kIndex;
    if (!ParseIntIn(a[0], -kMax, kMax, &spec->begin_index)) {
      *why = "bad idx()";
      return false;
    }
  } else if (ParseCall(begin, "kw", &a) && a.size() == 2) {
    spec->begin = KeySpec::Begin::kKeyword;
    spec->keyword = std::string(a[0]);
    if (!ParseIntIn(a[1], -kMax, kMax, &spec->keyword_startfrom)) {
      *why = "bad kw() start";
      return false;
    }
  } else {
    *why = "begin is neither idx(I) nor kw(WORD,S)";
    return false;
  }
  if (ParseCall(find, "range", &a) && a.size() == 3) {
    spec->find = KeySpec::Find::kRange;
    if (!ParseIntIn(a[0], -kMax, kMax, &spec->lastkey) ||
        !ParseIntIn(a[1], -kMax, kMax, &spec->keystep) ||
        !ParseIntIn(a[2], -kMax, kMax, &spec->limit)) {
      *why = "bad range()";
      return false;
    }
  } else if (ParseCall(find, "keynum", &a) && a.size() == 3) {
    spec->find = KeySpec::Find::kKeynum;
    if (!ParseIntIn(a[0], -kMax, kMax, &spec->keynumidx) ||
        !ParseIntIn(a[1], -kMax, kMax, &spec->firstkey) ||
        !ParseIntIn(a[2], -kMax, kMax, &spec->keystep)) {
      *why = "bad keynum()";
      return false;
    }
  } else {
    *why = "find is neither range(L,T,M) nor keynum(N,F,T)";
    return false;
  }
  return ValidKeySpec(*spec, why);
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  int bars = 0;
  for (char c : name) {
    if (c == '|') {
      ++bars;
    } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) {
      return false;
    }
  }
  return bars == 0 || (bars == 1 && name.front() != '|' && name.back() != '|');
}

bool ParseLookup(std::string_view s, LookupKind* out) {
  struct Entry {
    std::string_view name;
    LookupKind kind;
  };
  static constexpr Entry kLookups[] = {
      {"none", LookupKind::kNone},
      {"nil", LookupKind::kNilIsMiss},
      {"element_nil", LookupKind::kElementNilIsMiss},
      {"fields_nil", LookupKind::kFieldsNilIsMiss},
      {"empty", LookupKind::kEmptyIsMiss},
      {"zero", LookupKind::kZeroIsMiss},
      {"count", LookupKind::kCountKeys},
  };
  for (const Entry& e : kLookups) {
    if (e.name == s) {
      *out = e.kind;
      return true;
    }
  }
  return false;
}

bool ParsePoolRule(std::string_view s, PoolRule* out) {
  static constexpr struct {
    std::string_view name;
    PoolRule rule;
  } kRules[] = {{"share", PoolRule::kShare},   {"pin", PoolRule::kPin},
                {"auth", PoolRule::kAuth},     {"select", PoolRule::kSelect},
                {"setinfo", PoolRule::kSetInfo}, {"quit", PoolRule::kQuit},
                {"hello", PoolRule::kHello}};
  for (const auto& r : kRules) {
    if (r.name == s) {
      *out = r.rule;
      return true;
    }
  }
  return false;
}

bool ParseLine(std::string_view line, CommandInfo* info, std::string* why) {
  const std::vector<std::string_view> cols = Split(line, '\t');
  if (cols.size() != 7) {
    *why = "expected 7 TAB separated columns, got " + std::to_string(cols.size());
    return false;
  }
  if (!ValidName(cols[0])) {
    *why = "bad name '" + std::string(cols[0]) + "'";
    return false;
  }
  info->name = std::string(cols[0]);
  if (!ParseIntIn(cols[1], -kMaxSpecValue, kMaxSpecValue, &info->arity) || info->arity == 0) {
    *why = "bad arity";
    return false;
  }
  if (cols[2] != "-") {
    for (std::string_view f : Split(cols[2], ',')) {
      uint32_t bit = 0;
      if (!FlagFromName(f, &bit)) {
        *why = "unknown flag '" + std::string(f) + "'";
        return false;
      }
      info->flags |= bit;
    }
  }
  if (cols[3] != "-") {
    for (std::string_view s : Split(cols[3], ' ')) {
      KeySpec spec;
      if (!ParseSpec(s, &spec, why)) {
        *why = "key spec '" + std::string(s) + "': " + *why;
        return false;
      }
      info->key_specs.push_back(std::move(spec));
    }
  }
  if (!ParseLookup(cols[4], &info->lookup)) {
    *why = "unknown lookup '" + std::string(cols[4]) + "'";
    return false;
  }
  if (cols[5] != "-") {
    if (!ValidName(cols[5]) || cols[5].find('|') != std::string_view::npos) {
      *why = "bad blocking keyword";
      return false;
    }
    if (!(info->flags & kFlagBlocking)) {
      *why = "a blocking keyword without the blocking flag";
      return false;
    }
    info->blocking_keyword = std::string(cols[5]);
  }
  if (!ParsePoolRule(cols[6], &info->pool)) {
    *why = "unknown pool rule '" + std::string(cols[6]) + "'";
    return false;
  }
  return true;
}

}  // namespace

bool ParseInt64(std::string_view s, int64_t* out) {
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  // 18 digits always fit; Redis never needs more in a count or a position.
  if (s.empty() || s.size() > 18 || (s[0] == '0' && (s.size() > 1 || neg))) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = neg ? -v : v;
  return true;
}

bool FlagFromName(std::string_view name, uint32_t* bit) {
  for (const FlagName& f : kFlagNames) {
    if (f.name == name) {
      *bit = f.bit;
      return true;
    }
  }
  return false;
}

bool ValidKeySpec(const KeySpec& s, std::string* why) {
  constexpr int kMax = kMaxSpecValue;
  auto fail = [why](const char* what) {
    *why = what;
    return false;
  };
  if (s.begin == KeySpec::Begin::kIndex) {
    if (s.begin_index < 1 || s.begin_index > kMax) return fail("index must be 1..65536");
  } else {
    if (s.keyword.empty() || s.keyword.size() > kMaxNameLength) return fail("bad keyword");
    for (char c : s.keyword) {
      if (c >= 'A' && c <= 'Z') return fail("keyword must be lowercase");
    }
    if (s.keyword_startfrom == 0 || s.keyword_startfrom < -kMax || s.keyword_startfrom > kMax) {
      return fail("keyword startfrom must be non-zero");
    }
  }
  if (s.keystep < 1 || s.keystep > kMax) return fail("keystep must be >= 1");
  if (s.find == KeySpec::Find::kRange) {
    if (s.lastkey < -kMax || s.lastkey > kMax) return fail("lastkey out of range");
    if (s.limit < 0 || s.limit > kMax) return fail("limit must be >= 0");
    // Redis asserts the same: a limit only divides "the rest", i.e. lastkey -1.
    if (s.limit > 0 && s.lastkey != -1) return fail("limit needs lastkey -1");
  } else {
    if (s.keynumidx < 0 || s.keynumidx > kMax) return fail("keynumidx must be >= 0");
    if (s.firstkey < 0 || s.firstkey > kMax) return fail("firstkey must be >= 0");
  }
  return true;
}

bool ParseCommandsTsv(std::string_view text, std::vector<CommandInfo>* out, std::string* error) {
  std::unordered_set<std::string_view> names;
  size_t line_no = 0;
  size_t pos = 0;
  if (!text.empty() && text.back() != '\n') {
    *error = "the file must end with a newline";
    return false;
  }
  while (pos < text.size()) {
    const size_t eol = text.find('\n', pos);
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    CommandInfo info;
    std::string why;
    if (!ParseLine(line, &info, &why)) {
      *error = "line " + std::to_string(line_no) + ": " + why;
      return false;
    }
    const size_t bar = info.name.find('|');
    if (bar != std::string::npos && !names.count(std::string_view(info.name).substr(0, bar))) {
      *error = "line " + std::to_string(line_no) + ": " + info.name + " before its container";
      return false;
    }
    if (!names.insert(line.substr(0, line.find('\t'))).second) {
      *error = "line " + std::to_string(line_no) + ": duplicate " + info.name;
      return false;
    }
    out->push_back(std::move(info));
  }
  if (out->empty()) {
    *error = "no commands";
    return false;
  }
  return true;
}

}  // namespace respscope::commands::detail
