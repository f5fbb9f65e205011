#include "analytics/recorder/key_effect.h"

#include <algorithm>
#include <array>
#include <utility>

namespace respscope::recorder {

namespace {

// Core Redis 7 writes that create keys or change their expiry, and a few module writes (searched
// once per command slot, so a plain list). Anything not listed is kNone: a command missing here
// only loses evidence, it never raises a finding.
constexpr std::array<std::pair<std::string_view, KeyEffect>, 51> kEffects = {{
    {"append", KeyEffect::kCreate},
    {"bitop", KeyEffect::kCreateFirst},
    {"decr", KeyEffect::kCreate},
    {"decrby", KeyEffect::kCreate},
    {"del", KeyEffect::kDelete},
    {"expire", KeyEffect::kExpire},
    {"expireat", KeyEffect::kExpire},
    {"geoadd", KeyEffect::kCreate},
    {"geosearchstore", KeyEffect::kCreateFirst},
    {"getdel", KeyEffect::kDelete},
    {"getset", KeyEffect::kCreate},
    {"hincrby", KeyEffect::kCreate},
    {"hincrbyfloat", KeyEffect::kCreate},
    {"hmset", KeyEffect::kCreate},
    {"hset", KeyEffect::kCreate},
    {"hsetnx", KeyEffect::kCreate},
    {"incr", KeyEffect::kCreate},
    {"incrby", KeyEffect::kCreate},
    {"incrbyfloat", KeyEffect::kCreate},
    {"lpush", KeyEffect::kCreate},
    {"mset", KeyEffect::kCreate},
    {"msetnx", KeyEffect::kCreate},
    {"persist", KeyEffect::kPersist},
    {"pexpire", KeyEffect::kExpire},
    {"pexpireat", KeyEffect::kExpire},
    {"pfadd", KeyEffect::kCreate},
    {"pfmerge", KeyEffect::kCreateFirst},
    {"psetex", KeyEffect::kExpire},
    {"rpush", KeyEffect::kCreate},
    {"sadd", KeyEffect::kCreate},
    {"sdiffstore", KeyEffect::kCreateFirst},
    {"set", KeyEffect::kCreate},
    {"setbit", KeyEffect::kCreate},
    {"setex", KeyEffect::kExpire},
    {"setnx", KeyEffect::kCreate},
    {"setrange", KeyEffect::kCreate},
    {"sinterstore", KeyEffect::kCreateFirst},
    {"sunionstore", KeyEffect::kCreateFirst},
    {"unlink", KeyEffect::kDelete},
    {"xadd", KeyEffect::kCreate},
    {"zadd", KeyEffect::kCreate},
    {"zdiffstore", KeyEffect::kCreateFirst},
    {"zincrby", KeyEffect::kCreate},
    {"zinterstore", KeyEffect::kCreateFirst},
    {"zrangestore", KeyEffect::kCreateFirst},
    {"zunionstore", KeyEffect::kCreateFirst},
    {"json.set", KeyEffect::kCreate},
    {"ts.add", KeyEffect::kCreate},
    {"ts.create", KeyEffect::kCreate},
    {"bf.add", KeyEffect::kCreate},
    {"cf.add", KeyEffect::kCreate},
}};

}  // namespace

KeyEffect KeyEffectOf(std::string_view command) {
  for (const auto& [name, effect] : kEffects) {
    if (name == command) return effect;
  }
  return KeyEffect::kNone;
}

}  // namespace respscope::recorder
