#include "proxy/commands/command_table.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "proxy/commands/command_reply.h"
#include "proxy/commands/commands_tsv.h"
#include "proxy/resp/resp_util.h"

namespace respscope::commands {

using resp::EqualsLower;

namespace detail {
namespace {

// ---------------------------------------------------------------------------------------------
// Find(): a leaf name is packed into 64-bit words (byte i at bits 8*(i%8) of word i/8, zero
// padded) with whole-word loads, lowercased 8 bytes at a time, hashed and compared a word at a
// time. Short names (most commands) take one word and a handful of instructions.

constexpr size_t kMaxWords = (kMaxNameLength + 7) / 8;

// ASCII 'A'..'Z' -> 'a'..'z' in all 8 bytes at once; other bytes, non-ASCII included, stay.
inline uint64_t LowerAscii(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  const uint64_t heptets = w & (0x7f * kOnes);
  const uint64_t ge_a = heptets + (0x80 - 'A') * kOnes;      // high bit: byte >= 'A'
  const uint64_t gt_z = heptets + (0x80 - 'Z' - 1) * kOnes;  // high bit: byte > 'Z'
  const uint64_t upper = ge_a & ~gt_z & ~w & (0x80 * kOnes);
  return w | (upper >> 2);
}

// Bytes p[0, m) as a word, m in 1..8, reading nothing outside them.
inline uint64_t LoadPartial(const char* p, size_t m) {
  if constexpr (std::endian::native == std::endian::little) {
    if (m >= 4) {  // two overlapping 4-byte loads; the overlap ORs equal bytes
      uint32_t lo, hi;
      std::memcpy(&lo, p, 4);
      std::memcpy(&hi, p + m - 4, 4);
      return lo | (static_cast<uint64_t>(hi) << (8 * (m - 4)));
    }
    const auto byte = [p](size_t i) { return static_cast<uint64_t>(static_cast<uint8_t>(p[i])); };
    return byte(0) | byte(m >> 1) << (8 * (m >> 1)) | byte(m - 1) << (8 * (m - 1));
  } else {
    uint64_t w = 0;
    for (size_t i = 0; i < m; ++i)
      w |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
    return w;
  }
}

inline uint64_t Load64(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  } else {
    return LoadPartial(p, 8);
  }
}

// s.size() is 1..kMaxNameLength; returns the number of words written.
inline size_t PackLower(std::string_view s, uint64_t* words) {
  size_t k = 0;
  size_t at = 0;
  for (; at + 8 <= s.size(); at += 8) words[k++] = LowerAscii(Load64(s.data() + at));
  if (at < s.size()) words[k++] = LowerAscii(LoadPartial(s.data() + at, s.size() - at));
  return k;
}

inline uint32_t HashWords(uint16_t parent, const uint64_t* words, size_t count, size_t len) {
  uint64_t h = (len | (static_cast<uint64_t>(parent) << 8)) * 0x9e3779b97f4a7c15ull;
  for (size_t i = 0; i < count; ++i) {
    h = (h ^ words[i]) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 29;
  }
  return static_cast<uint32_t>(h ^ (h >> 32));
}

// Slot::meta without the id.
inline uint64_t MetaKey(uint32_t hash, uint16_t parent, size_t len) {
  return (hash >> 16) | (static_cast<uint64_t>(parent) << 16) | (static_cast<uint64_t>(len) << 32);
}
constexpr uint64_t kMetaKeyMask = (uint64_t{1} << 48) - 1;

// Index just past the keyword of a kKeyword spec, 0 when absent. Mirrors Redis's
// getKeysUsingKeySpecs: forwards from startfrom up to, not including, the last argument;
// backwards from argc+startfrom down to, not including, the command name. Arguments that were
// not captured (>= avail) cannot match.
int64_t FindKeyword(const KeySpec& s, std::span<const std::string_view> args, int64_t avail,
                    int64_t argc) {
  if (s.keyword_startfrom > 0) {
    const int64_t end = std::min(argc - 1, avail);
    for (int64_t i = s.keyword_startfrom; i < end; ++i) {
      if (EqualsLower(args[i], s.keyword)) return i + 1;
    }
  } else {
    for (int64_t i = std::min(argc + s.keyword_startfrom, avail - 1); i > 0; --i) {
      if (EqualsLower(args[i], s.keyword)) return i + 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace detail

namespace {
SessionRole RoleOf(std::string_view n) {
  static constexpr struct {
    std::string_view name;
    SessionRole role;
  } kRoles[] = {
      {"multi", SessionRole::kMulti},           {"exec", SessionRole::kExec},
      {"discard", SessionRole::kDiscard},       {"watch", SessionRole::kWatch},
      {"quit", SessionRole::kQuit},             {"reset", SessionRole::kReset},
      {"monitor", SessionRole::kMonitor},       {"hello", SessionRole::kHello},
      {"client|setname", SessionRole::kClientSetName},
      {"client|reply", SessionRole::kClientReply},
      {"subscribe", SessionRole::kSubscribe},   {"psubscribe", SessionRole::kPSubscribe},
      {"ssubscribe", SessionRole::kSSubscribe}, {"unsubscribe", SessionRole::kUnsubscribe},
      {"punsubscribe", SessionRole::kPUnsubscribe},
      {"sunsubscribe", SessionRole::kSUnsubscribe},
  };
  for (const auto& r : kRoles) {
    if (r.name == n) return r.role;
  }
  return SessionRole::kNone;
}

uint8_t ExpiryOptionsFrom(std::string_view n) {
  if (n == "set") return 3;
  if (n == "getex") return 2;
  return 0;
}
}  // namespace

std::shared_ptr<const CommandTable> CommandTable::BuiltIn() {
  static const std::shared_ptr<const CommandTable> table = [] {
    std::vector<CommandInfo> infos;
    std::string error;
    if (!detail::ParseCommandsTsv(detail::kCommandsTsv, &infos, &error)) {
      // The build (embed_tsv.cmake) and command_table_test check the file: a binary that
      // gets here was built from an untested table.
      std::fprintf(stderr, "respscope: built-in commands.tsv is malformed: %s\n", error.c_str());
      std::abort();
    }
    return FromInfos(std::move(infos));
  }();
  return table;
}

std::shared_ptr<const CommandTable> CommandTable::FromCommandReply(std::string_view reply,
                                                                   std::string* error) {
  std::string scratch;
  if (!error) error = &scratch;
  std::vector<detail::ReplyEntry> entries;
  if (!detail::ReadCommandReply(reply, &entries, error)) return nullptr;

  // What COMMAND does not carry comes from the built-in entry of the same name.
  const std::shared_ptr<const CommandTable> builtin = BuiltIn();
  std::vector<CommandInfo> infos;
  infos.reserve(entries.size());
  for (detail::ReplyEntry& e : entries) {
    CommandInfo& info = e.info;
    if (auto it = builtin->by_name_.find(info.name); it != builtin->by_name_.end()) {
      const CommandInfo& b = builtin->commands_[it->second];
      info.flags |= b.flags & (kFlagScript | kFlagSensitiveArgs | kFlagEchoesArgs | kFlagBlocking);
      info.lookup = b.lookup;
      if (info.flags & kFlagBlocking) info.blocking_keyword = b.blocking_keyword;
      if (e.specs_incomplete) info.key_specs = b.key_specs;
      info.pool = b.pool;
    } else {
      // Newer than the built-in table: a subcommand takes its container's rule (every CLIENT
      // subcommand pins); a command shares unless it blocks or subscribes (the connection
      // state commands are old and all in the built-in table).
      const size_t bar = info.name.find('|');
      auto container = bar == std::string::npos ? builtin->by_name_.end()
                                                : builtin->by_name_.find(info.name.substr(0, bar));
      if (container != builtin->by_name_.end()) {
        info.pool = builtin->commands_[container->second].pool;
      } else {
        info.pool = (info.flags & (kFlagBlocking | kFlagPubSub)) ? PoolRule::kPin : PoolRule::kShare;
      }
    }
    infos.push_back(std::move(info));
  }
  return FromInfos(std::move(infos), /*from_upstream=*/true);
}

std::shared_ptr<const CommandTable> CommandTable::FromInfos(std::vector<CommandInfo> infos,
                                                           bool from_upstream) {
  std::shared_ptr<CommandTable> t(new CommandTable());
  t->from_upstream_ = from_upstream;
  t->commands_.reserve(infos.size() + 8);
  CommandInfo other;
  other.name = "other";
  t->commands_.push_back(std::move(other));

  const auto add = [&t](CommandInfo info) {
    if (t->commands_.size() > UINT16_MAX || info.name.empty() ||
        info.name.size() > detail::kMaxNameLength || t->by_name_.count(info.name)) {
      return;
    }
    info.id = static_cast<uint16_t>(t->commands_.size());
    info.has_subcommands = false;
    t->by_name_.emplace(info.name, info.id);
    t->commands_.push_back(std::move(info));
  };
  for (CommandInfo& info : infos) {
    info.role = RoleOf(info.name);
    info.expiry_options_from = ExpiryOptionsFrom(info.name);
    add(std::move(info));
  }

  for (size_t id = 1; id < t->commands_.size(); ++id) {
    const size_t bar = t->commands_[id].name.find('|');
    if (bar == std::string::npos) continue;
    const std::string container = t->commands_[id].name.substr(0, bar);
    if (!t->by_name_.count(container)) {
      CommandInfo c;
      c.name = container;
      c.arity = -2;
      add(std::move(c));
    }
    if (auto it = t->by_name_.find(container); it != t->by_name_.end()) {
      t->commands_[it->second].has_subcommands = true;
    }
  }

  // Open addressing, linear probing, load factor <= 1/4: short probe runs for 16 KiB (Redis
  // 7.0: 1024 slots for 367 names); a lookup touches one or two cache lines of it.
  size_t cap = 16;
  while (cap < 4 * t->commands_.size()) cap <<= 1;
  t->slots_.assign(cap, Slot{});
  t->slot_mask_ = static_cast<uint32_t>(cap - 1);
  for (size_t id = 1; id < t->commands_.size(); ++id) {
    const std::string& name = t->commands_[id].name;
    const size_t bar = name.find('|');
    uint16_t parent = 0;
    std::string_view leaf = name;
    if (bar != std::string::npos) {
      parent = t->by_name_.at(name.substr(0, bar));  // made above if it was missing
      leaf.remove_prefix(bar + 1);
    }
    if (leaf.empty()) continue;  // "container|": cannot be asked for
    uint64_t words[detail::kMaxWords];
    const size_t count = detail::PackLower(leaf, words);
    const uint32_t hash = detail::HashWords(parent, words, count, leaf.size());
    Slot slot;
    slot.head = words[0];
    slot.meta = detail::MetaKey(hash, parent, leaf.size()) | (static_cast<uint64_t>(id) << 48);
    uint32_t i = hash & t->slot_mask_;
    while (t->slots_[i].meta != 0) i = (i + 1) & t->slot_mask_;
    t->slots_[i] = slot;
    t->max_name_len_ = std::max(t->max_name_len_, name.size());
  }
  return t;
}

// Out of line so that the inlined short path needs few registers.
[[gnu::noinline]] uint16_t CommandTable::ProbeLong(uint16_t parent, std::string_view leaf) const {
  const size_t n = leaf.size();
  uint64_t words[detail::kMaxWords];
  const size_t count = detail::PackLower(leaf, words);
  const uint32_t hash = detail::HashWords(parent, words, count, n);
  const uint64_t key = detail::MetaKey(hash, parent, n);
  for (uint32_t i = hash & slot_mask_;; i = (i + 1) & slot_mask_) {
    const Slot& s = slots_[i];
    if (s.meta == 0) return 0;
    if ((s.meta & detail::kMetaKeyMask) != key || s.head != words[0]) continue;
    // Compare the rest with the stored leaf (lowercase already: packed as it is).
    const auto id = static_cast<uint16_t>(s.meta >> 48);
    const std::string& name = commands_[id].name;
    const char* stored = name.data() + name.size() - n;
    size_t k = 1;
    for (size_t at = 8; k < count; ++k, at += 8) {
      const size_t m = std::min<size_t>(8, n - at);
      if (detail::LoadPartial(stored + at, m) != words[k]) break;
    }
    if (k == count) return id;
  }
}

// Inlined into Find(): most names fit one word, and then a slot holds all of the name.
[[gnu::always_inline]] inline uint16_t CommandTable::Probe(uint16_t parent,
                                                           std::string_view leaf) const {
  const size_t n = leaf.size();
  if (n > 8) return ProbeLong(parent, leaf);
  const uint64_t word = detail::LowerAscii(detail::LoadPartial(leaf.data(), n));
  const uint32_t hash = detail::HashWords(parent, &word, 1, n);
  const uint64_t key = detail::MetaKey(hash, parent, n);
  for (uint32_t i = hash & slot_mask_;; i = (i + 1) & slot_mask_) {
    const Slot& s = slots_[i];
    if (s.meta == 0) return 0;
    if ((s.meta & detail::kMetaKeyMask) == key && s.head == word) {
      return static_cast<uint16_t>(s.meta >> 48);
    }
  }
}

const CommandInfo& CommandTable::Find(std::string_view name, std::string_view subcommand) const {
  // size - 1 wraps for an empty name; max_name_len_ <= kMaxNameLength.
  if (name.size() - 1 >= max_name_len_) return commands_[0];
  const CommandInfo& info = commands_[Probe(0, name)];
  if (!info.has_subcommands || subcommand.size() - 1 >= max_name_len_) return info;
  const uint16_t sub = Probe(info.id, subcommand);
  return sub != 0 ? commands_[sub] : info;
}

void CommandTable::KeyIndices(const CommandInfo& info, std::span<const std::string_view> args,
                              size_t argc_in, std::vector<uint32_t>* out) const {
  // Signed 64-bit positions: spec values are bounded by kMaxSpecValue, so no sum overflows.
  const int64_t argc = static_cast<int64_t>(std::min<size_t>(argc_in, UINT32_MAX));
  const int64_t avail = std::min<int64_t>(static_cast<int64_t>(args.size()), argc);
  for (const KeySpec& s : info.key_specs) {
    int64_t first = s.begin_index;
    if (s.begin == KeySpec::Begin::kKeyword) {
      first = detail::FindKeyword(s, args, avail, argc);
      if (first == 0) continue;
    }
    int64_t last = 0;
    if (s.find == KeySpec::Find::kRange) {
      if (s.lastkey >= 0) {
        last = first + s.lastkey;
      } else if (s.limit == 0) {
        last = argc + s.lastkey;
      } else {
        if (first >= argc) continue;
        last = first + ((argc - first) / s.limit + s.lastkey);
      }
    } else {
      const int64_t count_at = first + s.keynumidx;
      int64_t count = 0;
      if (count_at >= avail || !detail::ParseInt64(args[count_at], &count) || count < 0) continue;
      first += s.firstkey;
      // Redis rejects a count beyond the arguments; observing it, keep the keys that exist.
      last = first + std::min(count, argc) - 1;
    }
    if (first < 1 || first >= argc) continue;
    last = std::min(last, avail - 1);
    for (int64_t i = first; i <= last; i += s.keystep) out->push_back(static_cast<uint32_t>(i));
  }
}

bool CommandTable::IsBlockingCall(const CommandInfo& info,
                                  std::span<const std::string_view> args) const {
  if (!(info.flags & kFlagBlocking)) return false;
  if (info.blocking_keyword.empty()) return true;
  // The option is searched where options are: from where the key keyword search starts
  // (XREADGROUP: after GROUP group consumer) up to that keyword (STREAMS), so that a stream,
  // group or consumer named "block" is not mistaken for the option.
  size_t start = 1;
  std::string_view stop;
  for (const KeySpec& s : info.key_specs) {
    if (s.begin == KeySpec::Begin::kKeyword) {
      stop = s.keyword;
      if (s.keyword_startfrom > 0) start = static_cast<size_t>(s.keyword_startfrom);
      break;
    }
  }
  for (size_t i = start; i < args.size(); ++i) {
    if (!stop.empty() && EqualsLower(args[i], stop)) return false;
    if (EqualsLower(args[i], info.blocking_keyword)) return true;
  }
  return false;
}

}  // namespace respscope::commands
