// What the data plane hands to analytics for every observed command, and the sink it hands
// it to. This is the only analytics header the data plane includes.
//
// Lifetime: every view and span in an Observation points into session-owned buffers and is
// valid only for the duration of ObservationSink::Record(). A sink that keeps anything must
// copy it (and should sanitise before copying; see analytics/patterns/).
// Thread: Record() is called on the IO thread that owns the session; one sink per thread.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace respscope::analytics {

// Per-key outcome of a cache lookup, aligned with Observation::keys.
enum class Lookup : uint8_t {
  kNone = 0,  // the command is not a lookup for this key (writes, admin, ...)
  kHit = 1,
  kMiss = 2,
};

// Bits of Observation::flags. Derived from the command table (see proxy/commands/).
enum ObservationFlag : uint32_t {
  kObsRead = 1u << 0,
  kObsWrite = 1u << 1,
  kObsBlocking = 1u << 2,   // actually blocked-capable call (BLPOP, XREAD BLOCK, WAIT, ...)
  kObsError = 1u << 3,      // the reply (or the EXEC element) was an error
  kObsInMulti = 1u << 4,    // executed as part of MULTI/EXEC; timing is the EXEC's
  kObsScript = 1u << 5,     // EVAL/EVALSHA/FCALL family: args and raw reply are captured
  kObsPubSub = 1u << 6,
  kObsAdmin = 1u << 7,
  kObsArgsTruncated = 1u << 8,  // more arguments than the scanner tracks; keys may be missing
  kObsReplyTruncated = 1u << 9, // reply_raw was not captured (over the capture limit)
  kObsNoReply = 1u << 10,       // CLIENT REPLY OFF/SKIP: nothing came back, latency unknown
  // Expiry options of SET / GETEX (CommandInfo::expiry_options_from): EX, PX, EXAT, PXAT or
  // KEEPTTL give (or keep) the key an expiry; GETEX PERSIST removes it. Commands that are
  // about expiry by their name alone (SETEX, EXPIRE, PERSIST, ...) carry neither bit: the
  // analytics read their name.
  kObsTtlSet = 1u << 11,
  kObsTtlCleared = 1u << 12,
  // How the command reached Redis (upstream_pooling): neither bit = the client's own
  // connection for its whole life (dedicated).
  kObsShared = 1u << 13,  // over an upstream connection shared with other clients
  kObsPinned = 1u << 14,  // over the client's own connection, after it left the shared ones
};

struct Observation {
  // Command identity from the command table. `command` is the metric label: lowercase,
  // subcommands as "client|setname", unknown commands "other".
  uint16_t command_id = 0;
  std::string_view command;
  uint32_t flags = 0;

  // Monotonic nanoseconds (steady clock): when the request's last byte was read from the
  // client, and when the reply's last byte was read from the upstream.
  int64_t start_ns = 0;
  int64_t end_ns = 0;

  // Bytes of the request and of its reply on the wire.
  uint64_t request_bytes = 0;
  uint64_t reply_bytes = 0;

  // Key arguments, as sent (NOT sanitised). Keys longer than the scanner's capture limit
  // appear as an empty view with the real length in key_lengths.
  std::span<const std::string_view> keys;
  std::span<const uint32_t> key_lengths;
  std::span<const Lookup> lookups;  // same size as keys, or empty when not a lookup command

  // All captured arguments including the command name at [0]; only filled for commands with
  // kObsScript, the few the job tracker asks for, those whose error replies can echo an
  // optional argument unquoted (EXPIRE with options; the command table's echo_args flag) and
  // CLIENT SETNAME. Arguments over the capture limit are empty views.
  std::span<const std::string_view> args;

  // Error prefix ("WRONGTYPE", "ERR", "NOSCRIPT", ...) and the first bytes of the error
  // text when kObsError is set. NOT sanitised: error texts can carry values and echo the
  // command's arguments; a sink that keeps one checks it against `keys` and `args` here,
  // where they are still known.
  std::string_view error_prefix;
  std::string_view error_text;

  // The complete raw RESP reply, only for kObsScript commands and only when it fits the
  // capture limit (else kObsReplyTruncated).
  std::string_view reply_raw;

  // For integer replies, the value (EXISTS count, script return codes).
  int64_t reply_integer = 0;
  bool reply_is_integer = false;

  // Who sent it: a process-unique connection id and its name (CLIENT SETNAME, else peer
  // address "ip:port").
  uint64_t client_id = 0;
  std::string_view client_name;
  // With kObsPinned: why the client left the shared connections ("blocking", "transaction",
  // ...: the reason label of respscope_upstream_pins_total). NUL-terminated, static storage:
  // a sink may keep the pointer.
  const char* pin_reason = nullptr;
};

// Connection-level events that are not commands.
enum class SessionEvent : uint8_t {
  kClientConnected,
  kClientClosed,
  kUpstreamConnectFailed,
  kObservationLost,        // reply matching was lost; the session forwards without observing
  kClientProtocolError,
  kUpstreamProtocolError,
  kClientRejectedMaxClients,
  kBackpressureStall,      // one side stopped being read because the other did not drain
  kAcceptFdExhausted,      // the client listener's accept() found no free descriptor
};

class ObservationSink {
 public:
  virtual ~ObservationSink() = default;
  virtual void Record(const Observation& obs) = 0;
  virtual void OnEvent(SessionEvent event, uint64_t client_id) = 0;
  // Bytes moved between client and proxy, counted per read/write batch, not per command.
  virtual void OnBytes(uint64_t client_in, uint64_t client_out) = 0;
  // Called on the sink's thread every kSinkTickIntervalMs, idle or not: the sink publishes
  // what it deferred from Record() (state that is cheaper to copy out in batches).
  virtual void Tick() {}
};

inline constexpr int64_t kSinkTickIntervalMs = 100;

}  // namespace respscope::analytics
