// The command table: for every Redis 7 command and subcommand, its arity, flags, where its
// keys are, and what reply means a cache miss. Built in from proxy/commands/commands.tsv
// (embedded at build time) and replaceable at run time from the reply of `COMMAND INFO`.
//
// No I/O. Thread: a CommandTable is immutable once built; share it by const reference or
// shared_ptr<const CommandTable> between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace respscope::commands {

enum CommandFlag : uint32_t {
  kFlagRead = 1u << 0,       // "readonly"
  kFlagWrite = 1u << 1,      // "write"
  kFlagBlocking = 1u << 2,   // "blocking" (see CommandInfo::blocking_keyword)
  kFlagPubSub = 1u << 3,     // "pubsub"
  kFlagAdmin = 1u << 4,      // "admin"
  kFlagScript = 1u << 5,     // EVAL/EVALSHA/EVAL_RO/EVALSHA_RO/FCALL/FCALL_RO/SCRIPT LOAD:
                             // arguments and raw reply are captured for the job tracker
  kFlagNoScript = 1u << 6,   // "noscript"
  kFlagLoading = 1u << 7,    // "loading"
  kFlagStale = 1u << 8,      // "stale"
  kFlagFast = 1u << 9,       // "fast"
  kFlagMovableKeys = 1u << 10,  // "movablekeys"
  kFlagSensitiveArgs = 1u << 11,  // arguments carry secrets (AUTH, HELLO AUTH, MIGRATE AUTH,
                                  // CONFIG SET requirepass/masterauth, ACL SETUSER): never
                                  // captured into any output
  kFlagEchoesArgs = 1u << 12,  // an error reply can echo an optional argument unquoted
                               // (EXPIRE's "Unsupported option x"): its arguments are kept
                               // when optional ones are present, so the error text can be
                               // checked against them
};

// How a reply tells a cache hit from a miss.
enum class LookupKind : uint8_t {
  kNone,            // not a cache lookup
  kNilIsMiss,       // single key; null reply = miss (GET, GETEX, GETDEL, HGET, LINDEX, ZSCORE, ...)
  kElementNilIsMiss,// MGET: one reply element per key, null = miss for that key
  kFieldsNilIsMiss, // HMGET: one key; hit if any element is non-null
  kEmptyIsMiss,     // single key; empty aggregate = miss (HGETALL, SMEMBERS, LRANGE, ...)
  kZeroIsMiss,      // single key; integer 0 = miss (HEXISTS, SISMEMBER, ...)
  kCountKeys,       // EXISTS k1..kn: integer n_found; hits = n_found, misses = n - n_found
};

// What a command means to the connection it is sent on, as Redis's networking code treats it:
// the reply matcher (session/) keys its special cases on it. Derived from the name once, when
// a table is built.
enum class SessionRole : uint8_t {
  kNone, kMulti, kExec, kDiscard, kWatch, kQuit, kReset, kMonitor, kHello, kClientSetName,
  kClientReply, kSubscribe, kPSubscribe, kSSubscribe, kUnsubscribe, kPUnsubscribe,
  kSUnsubscribe,
};

// What a command means to a shared upstream connection (upstream_pooling: auto), from the
// `pool` column of commands.tsv. Blocking calls, inline commands, unknown commands and large
// requests pin whatever this says (net/ decides those from the request).
enum class PoolRule : uint8_t {
  kShare,    // sent on the shared connection with other clients' commands
  kPin,      // needs connection state: the client moves to its own upstream connection first
  kAuth,     // AUTH: answered by respscope when it names the URL's credentials, else pin
  kSelect,   // SELECT: answered by respscope for the database the pool uses (0), else pin
  kSetInfo,  // CLIENT SETINFO: recorded and answered as the upstream would, else pin
  kQuit,     // QUIT: answered +OK and the client closed once its replies are delivered
  kHello,    // HELLO that keeps RESP2 and sets no name (node-redis's handshake): shared, else
             // pin
};

// Redis 7 key specification (see https://redis.io/docs/reference/key-specs/), reduced to what
// locating keys needs.
struct KeySpec {
  enum class Begin : uint8_t { kIndex, kKeyword };
  enum class Find : uint8_t { kRange, kKeynum };
  Begin begin = Begin::kIndex;
  int begin_index = 1;          // kIndex: argument index (0 is the command name)
  std::string keyword;          // kKeyword: lowercase keyword to search for
  int keyword_startfrom = 1;    // kKeyword: index to start from; negative = from the end
  Find find = Find::kRange;
  int lastkey = 0;              // kRange: relative to begin; -1 = last arg, -2 = second last
  int keystep = 1;              // kRange and kKeynum
  int limit = 0;                // kRange with lastkey -1: 0 = all, 2 = half the rest, ...
  int keynumidx = 0;            // kKeynum: index of the count, relative to begin
  int firstkey = 1;             // kKeynum: first key, relative to begin
};

struct CommandInfo {
  uint16_t id = 0;              // dense, 0 is "other"
  std::string name;             // lowercase; subcommands as "client|setname"
  int arity = 0;                // Redis convention: negative = at least -arity
  uint32_t flags = 0;
  std::vector<KeySpec> key_specs;
  LookupKind lookup = LookupKind::kNone;
  // For commands flagged blocking only when an option is present (XREAD/XREADGROUP "block"):
  // lowercase keyword; empty = always blocking when kFlagBlocking is set. WAIT and WAITAOF
  // are blocking unconditionally.
  std::string blocking_keyword;
  bool has_subcommands = false;  // container such as "client", "config", "xinfo"
  SessionRole role = SessionRole::kNone;  // set by the table from the name
  PoolRule pool = PoolRule::kShare;
  // Commands whose options can give their key an expiry (SET ... EX|PX|EXAT|PXAT|KEEPTTL,
  // GETEX ... EX|PX|EXAT|PXAT|PERSIST): the argument index where the options start (SET 3,
  // GETEX 2); 0 for every other command. Set by the table from the name; the session turns
  // the options into kObsTtlSet / kObsTtlCleared.
  uint8_t expiry_options_from = 0;
};

class CommandTable {
 public:
  // The table built in from commands.tsv. Never fails (the build checks the file).
  static std::shared_ptr<const CommandTable> BuiltIn();

  // A table from the raw RESP2 or RESP3 reply of `COMMAND` / `COMMAND INFO` (the whole
  // reply bytes). Lookup semantics and kFlagScript/kFlagSensitiveArgs come from the
  // built-in table by name (COMMAND INFO does not carry them). On a malformed reply returns
  // nullptr and sets *error.
  static std::shared_ptr<const CommandTable> FromCommandReply(std::string_view reply,
                                                              std::string* error);

  // Finds a command by name (any case) and, for containers, by its subcommand (args[1], any
  // case). Returns the "other" entry (id 0) when unknown; never nullptr. For a container whose
  // subcommand is unknown or missing, returns the container itself.
  const CommandInfo& Find(std::string_view name, std::string_view subcommand) const;
  const CommandInfo& Other() const { return commands_[0]; }
  // True for a table read from the upstream's COMMAND reply: every command and subcommand the
  // server has is in it, so an unknown subcommand is one the server will refuse.
  bool from_upstream() const { return from_upstream_; }
  const CommandInfo& at(uint16_t id) const { return commands_[id]; }
  size_t size() const { return commands_.size(); }

  // Appends to *out the indices into args (args[0] is the command name) of the key
  // arguments, in order, following the key specs. args may hold empty views for arguments
  // that were not captured; a keynum argument that is not a valid number yields no keys.
  // `argc` is the real number of arguments (args.size() may be smaller when truncated).
  // Positions are computed from argc as Redis does; only indices < args.size() are appended,
  // so every appended index is safe to use on args. A count that runs past argc is clamped.
  void KeyIndices(const CommandInfo& info, std::span<const std::string_view> args, size_t argc,
                  std::vector<uint32_t>* out) const;

  // True when this call of `info` can block (kFlagBlocking, and the blocking keyword present
  // when the command has one).
  bool IsBlockingCall(const CommandInfo& info, std::span<const std::string_view> args) const;

 private:
  // Open-addressing index behind Find(), keyed by (parent, lowercase leaf name): commands
  // have parent 0 and leaf = name; subcommands have their container's id and leaf = the part
  // after '|'. Both lookups of "CLIENT SETNAME" thus hash a short name. No allocation.
  struct Slot {
    uint64_t head = 0;  // first 8 bytes of the leaf, lowercase, zero padded
    uint64_t meta = 0;  // bits 0-15 hash tag, 16-31 parent, 32-39 leaf length (<= 64),
                        // 48-63 id; 0 = empty (id 0, "other", is never indexed)
  };

  CommandTable() = default;
  // Ids follow the order of infos from 1 (0 is "other"). A duplicate name keeps the first; a
  // subcommand whose container is missing gets one. Builds by_name_ and slots_.
  static std::shared_ptr<const CommandTable> FromInfos(std::vector<CommandInfo> infos,
                                                       bool from_upstream = false);
  // Id of (parent, leaf in any case), 0 when unknown. leaf.size() is 1..kMaxNameLength.
  // Probe() handles leaves of up to 8 bytes inline and hands longer ones to ProbeLong().
  uint16_t Probe(uint16_t parent, std::string_view leaf) const;
  uint16_t ProbeLong(uint16_t parent, std::string_view leaf) const;

  std::vector<CommandInfo> commands_;
  bool from_upstream_ = false;
  // lowercase name -> id; subcommands under "container|sub". Off the hot path (building,
  // merging); Find() uses slots_.
  std::unordered_map<std::string, uint16_t> by_name_;
  std::vector<Slot> slots_;
  uint32_t slot_mask_ = 0;
  size_t max_name_len_ = 0;  // longer names cannot be known: Other() without hashing
};

}  // namespace respscope::commands
