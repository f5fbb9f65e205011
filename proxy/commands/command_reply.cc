#include "proxy/commands/command_reply.h"

#include <algorithm>
#include <cstdint>

#include "proxy/commands/commands_tsv.h"
#include "proxy/resp/resp_util.h"
#include "proxy/resp/resp_value.h"

namespace respscope::commands::detail {
namespace {

using resp::AsciiLowerChar;
using resp::EqualsIgnoreCase;
using resp::RespValue;

// A whole Redis 7 COMMAND reply is about 200 KiB; modules add little.
constexpr size_t kMaxReplyBytes = 64u << 20;

// COMMAND nests 8 aggregates deep (reply, command, subcommands, subcommand, key specs, key
// spec, begin_search, spec); twice that leaves room without letting the stack run away.
constexpr size_t kMaxReplyDepth = 16;

// An array, set or push (RESP3 replies may send sets where RESP2 sends arrays).
bool IsList(const RespValue* v) { return v && v->IsArray(); }
// Simple, bulk or verbatim.
bool IsString(const RespValue* v) { return v && v->IsString(); }

std::string Lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLowerChar(c);
  return out;
}

// A RESP3 map, or its RESP2 form, a flat array of key, value pairs.
const RespValue* Field(const RespValue* v, std::string_view key) {
  if (!v || (!v->IsMap() && !v->IsArray())) {
    return nullptr;
  }
  for (size_t i = 0; i + 1 < v->items.size(); i += 2) {
    if (IsString(&v->items[i]) && EqualsIgnoreCase(v->items[i].str, key)) return &v->items[i + 1];
  }
  return nullptr;
}

bool IntField(const RespValue* v, std::string_view key, int* out) {
  const RespValue* f = Field(v, key);
  if (!f || f->type != RespValue::Type::kInteger || f->integer < -kMaxSpecValue ||
      f->integer > kMaxSpecValue) {
    return false;
  }
  *out = static_cast<int>(f->integer);
  return true;
}

enum class SpecKind { kKey, kNotKey, kUnknown };

bool SpecFromReply(const RespValue& v, KeySpec* spec, SpecKind* kind, std::string* why) {
  *kind = SpecKind::kKey;
  if (const RespValue* flags = Field(&v, "flags"); IsList(flags)) {
    for (const RespValue& f : flags->items) {
      if (IsString(&f) && EqualsIgnoreCase(f.str, "not_key")) *kind = SpecKind::kNotKey;
    }
  }
  const RespValue* bs = Field(&v, "begin_search");
  const RespValue* fk = Field(&v, "find_keys");
  const RespValue* bs_type = Field(bs, "type");
  const RespValue* fk_type = Field(fk, "type");
  if (!IsString(bs_type) || !IsString(fk_type)) {
    *why = "key spec without begin_search/find_keys type";
    return false;
  }
  const RespValue* bs_spec = Field(bs, "spec");
  const RespValue* fk_spec = Field(fk, "spec");
  if (EqualsIgnoreCase(bs_type->str, "index")) {
    spec->begin = KeySpec::Begin::kIndex;
    if (!IntField(bs_spec, "index", &spec->begin_index)) {
      *why = "bad begin_search index";
      return false;
    }
  } else if (EqualsIgnoreCase(bs_type->str, "keyword")) {
    spec->begin = KeySpec::Begin::kKeyword;
    const RespValue* keyword = Field(bs_spec, "keyword");
    if (!IsString(keyword) || !IntField(bs_spec, "startfrom", &spec->keyword_startfrom)) {
      *why = "bad begin_search keyword";
      return false;
    }
    spec->keyword = Lowercase(keyword->str);
  } else {
    *kind = *kind == SpecKind::kNotKey ? SpecKind::kNotKey : SpecKind::kUnknown;
    return true;
  }
  if (EqualsIgnoreCase(fk_type->str, "range")) {
    spec->find = KeySpec::Find::kRange;
    if (!IntField(fk_spec, "lastkey", &spec->lastkey) ||
        !IntField(fk_spec, "keystep", &spec->keystep) ||
        !IntField(fk_spec, "limit", &spec->limit)) {
      *why = "bad find_keys range";
      return false;
    }
  } else if (EqualsIgnoreCase(fk_type->str, "keynum")) {
    spec->find = KeySpec::Find::kKeynum;
    if (!IntField(fk_spec, "keynumidx", &spec->keynumidx) ||
        !IntField(fk_spec, "firstkey", &spec->firstkey) ||
        !IntField(fk_spec, "keystep", &spec->keystep)) {
      *why = "bad find_keys keynum";
      return false;
    }
  } else {
    *kind = *kind == SpecKind::kNotKey ? SpecKind::kNotKey : SpecKind::kUnknown;
    return true;
  }
  return ValidKeySpec(*spec, why);
}

// One command entry: [name, arity, flags, first, last, step, acl categories, tips, key specs,
// subcommands]; Redis 6 sends only the first seven.
bool EntryFromReply(const RespValue& v, bool is_sub, std::vector<ReplyEntry>* out,
                    std::string* why) {
  if (v.type == RespValue::Type::kNull) return true;  // COMMAND INFO of an unknown name
  const std::vector<RespValue>& f = v.items;
  if (v.type != RespValue::Type::kArray || f.size() < 6 || !IsString(&f[0]) ||
      f[1].type != RespValue::Type::kInteger || !IsList(&f[2])) {
    *why = "command entry is not [name, arity, flags, ...]";
    return false;
  }
  ReplyEntry e;
  e.info.name = Lowercase(f[0].str);
  const std::string& name = e.info.name;
  if (f[1].integer < -kMaxSpecValue || f[1].integer > kMaxSpecValue) {
    *why = name + ": arity out of range";
    return false;
  }
  e.info.arity = static_cast<int>(f[1].integer);
  for (const RespValue& flag : f[2].items) {
    uint32_t bit = 0;
    // Flags unknown to respscope (newer servers, modules) are fine to ignore.
    if (IsString(&flag) && FlagFromName(Lowercase(flag.str), &bit)) e.info.flags |= bit;
  }
  // The overlay-only flags are never taken from a server.
  e.info.flags &= ~(kFlagScript | kFlagSensitiveArgs | kFlagEchoesArgs);

  if (f.size() >= 9) {
    if (!IsList(&f[8])) {
      *why = name + ": key specs are not a list";
      return false;
    }
    for (const RespValue& s : f[8].items) {
      KeySpec spec;
      SpecKind kind;
      if (!SpecFromReply(s, &spec, &kind, why)) {
        *why = name + ": " + *why;
        return false;
      }
      if (kind == SpecKind::kKey) e.info.key_specs.push_back(std::move(spec));
      if (kind == SpecKind::kUnknown) e.specs_incomplete = true;
    }
  } else {
    // Redis 6: first/last/step only.
    if (f[3].type != RespValue::Type::kInteger || f[4].type != RespValue::Type::kInteger ||
        f[5].type != RespValue::Type::kInteger) {
      *why = name + ": first/last/step are not integers";
      return false;
    }
    const int64_t first = f[3].integer, last = f[4].integer, step = f[5].integer;
    if (first > 0) {
      KeySpec spec;
      spec.begin_index = static_cast<int>(std::min<int64_t>(first, kMaxSpecValue));
      spec.lastkey = static_cast<int>(
          std::clamp<int64_t>(last < 0 ? last : last - first, -kMaxSpecValue, kMaxSpecValue));
      spec.keystep = static_cast<int>(std::clamp<int64_t>(step, 0, kMaxSpecValue));
      if (!ValidKeySpec(spec, why)) {
        *why = name + ": legacy key positions: " + *why;
        return false;
      }
      e.info.key_specs.push_back(std::move(spec));
    }
    e.specs_incomplete = (e.info.flags & kFlagMovableKeys) != 0;
  }
  const bool has_subs = !is_sub && f.size() >= 10 && IsList(&f[9]) && !f[9].items.empty();
  if (name.empty() || name.size() > kMaxNameLength) {
    if (name.empty()) {
      *why = "empty command name";
      return false;
    }
    return true;  // cannot be looked up (see kMaxNameLength); leave it out
  }
  out->push_back(std::move(e));
  if (has_subs) {
    for (const RespValue& sub : f[9].items) {
      if (!EntryFromReply(sub, true, out, why)) return false;
    }
  }
  return true;
}

}  // namespace

bool ReadCommandReply(std::string_view reply, std::vector<ReplyEntry>* out, std::string* error) {
  if (reply.size() > kMaxReplyBytes) {
    *error = "reply larger than 64 MiB";
    return false;
  }
  resp::RespLimits limits;
  limits.max_depth = kMaxReplyDepth;
  // Every value takes at least 3 bytes: within kMaxReplyBytes this never binds.
  limits.max_values = kMaxReplyBytes / 3;
  const std::optional<RespValue> root = resp::ParseResp(reply, limits, error);
  if (!root) return false;
  if (root->IsError()) {
    *error = "error reply: " + std::string(root->str.substr(0, 200));
    return false;
  }
  if (!root->IsArray()) {
    *error = "COMMAND reply is not an array";
    return false;
  }
  for (const RespValue& v : root->items) {
    if (!EntryFromReply(v, false, out, error)) return false;
  }
  if (out->empty()) {
    *error = "COMMAND reply names no command";
    return false;
  }
  return true;
}

}  // namespace respscope::commands::detail
