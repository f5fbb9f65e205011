// What a write command does to the lifetime of its keys, for no_ttl_pattern: looked up once per
// command name (the recorder caches it in the command's slot), never per call.
//
// Thread: none (pure).
#pragma once

#include <cstdint>
#include <string_view>

namespace respscope::recorder {

enum class KeyEffect : uint8_t {
  kNone,         // reads, and writes that neither create keys nor touch their expiry
  kCreate,       // writes every key it names, leaving it without an expiry when it creates it
                 // (SET without EX/PX/..., HSET, LPUSH, SADD, ZADD, XADD, INCR, MSET, ...)
  kCreateFirst,  // writes (creates) its first key only: the *STORE family, BITOP
  kExpire,       // gives its keys an expiry (SETEX, PSETEX, EXPIRE, PEXPIRE, EXPIREAT, ...)
  kPersist,      // removes the expiry (PERSIST)
  kDelete,       // deletes its keys (DEL, UNLINK, GETDEL)
};

// The effect of `command` (lowercase, as in Observation::command). SET and GETEX are decided
// per call from kObsTtlSet / kObsTtlCleared (see EffectOfCall).
KeyEffect KeyEffectOf(std::string_view command);

// The effect of one call of a command whose name gives `by_name`.
inline KeyEffect EffectOfCall(KeyEffect by_name, uint32_t obs_flags, uint32_t ttl_set_flag,
                              uint32_t ttl_cleared_flag) {
  if (obs_flags & ttl_set_flag) return KeyEffect::kExpire;
  if (obs_flags & ttl_cleared_flag) return KeyEffect::kPersist;
  return by_name;
}

}  // namespace respscope::recorder
