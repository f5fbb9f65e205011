// SessionCore: the sans-IO heart of one client <-> upstream connection pair.
//
// The net layer forwards every byte unchanged and, on the way, hands the same bytes here:
// client bytes to OnClientBytes(), upstream bytes to OnUpstreamBytes(). SessionCore matches
// each reply to its command through a pending FIFO and emits one Observation per command
// into the thread's ObservationSink. It never decides what is forwarded.
//
//   client bytes --> RequestScanner --> command table --> Pending{t0, id, keys...} --+
//                                                                                    | FIFO
//   upstream bytes --> ReplyScanner --> frame --(push? message? confirmation?)--> pop -+
//                                                  --> Observation --> sink
//
// Handled explicitly: pipelines; MULTI/EXEC/DISCARD (QUEUED replies, EXEC arrays, EXECABORT,
// WATCH aborts); (P|S)SUBSCRIBE and unsubscribes in RESP2 (subscribed mode) and RESP3 (push
// frames interleaved with replies); MONITOR (the stream is forwarded, not observed); CLIENT
// REPLY OFF/SKIP/ON; RESP3 push invalidations; HELLO switching protocol; RESET; blocking
// commands flagged as blocking. If matching is ever lost (a reply nobody asked for, a
// protocol error on either side, too many commands in flight), the session stops observing
// for good, counts it once, and the net layer keeps forwarding: the application never breaks
// because of analytics.
//
// Thread: one SessionCore per connection, used only on its IO thread.
// Memory: bounded by kMaxPending commands in flight and the captured keys/args they hold.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "analytics/observation.h"
#include "proxy/commands/command_table.h"
#include "proxy/resp/reply_scanner.h"
#include "proxy/resp/request_scanner.h"

namespace respscope::session {

struct SessionOptions {
  // Commands (by command table id) whose arguments and raw reply are captured for the
  // analytics in addition to every kFlagScript command (the job tracker asks for a few).
  std::vector<uint16_t> capture_commands;
  // Largest raw script reply / argument captured.
  size_t max_capture_bytes = 1 << 20;
};

// Which subscription count a subscribe-family command moves.
enum class SubCounter : uint8_t { kChannels, kPatterns, kShardChannels };

class SessionCore {
 public:
  // Commands in flight (sent, reply not yet read) beyond which observation stops.
  static constexpr size_t kMaxPending = 256 * 1024;

  SessionCore(std::shared_ptr<const commands::CommandTable> table, analytics::ObservationSink* sink,
              uint64_t client_id, std::string peer, const SessionOptions* options = nullptr);

  // Bytes just read from the client (they are forwarded to the upstream unchanged).
  // now_ns: steady clock at the read.
  void OnClientBytes(std::string_view bytes, int64_t now_ns);
  // Bytes just read from the upstream (they are forwarded to the client unchanged).
  void OnUpstreamBytes(std::string_view bytes, int64_t now_ns);

  // Shared upstream connections frame the client's commands themselves (the connection's
  // scanner): one scan serves routing and observation. UseCapturePolicy gives that scanner
  // this session's capture policy; Resolve gives the table entry of each command it returns,
  // and OnFramedRequest observes it, as OnClientBytes would have. Commands not handed over
  // this way are passed later as bytes (OnClientBytes) instead, in order.
  void UseCapturePolicy(resp::RequestScanner* scanner) {
    scanner->SetCapturePolicy(&SessionCore::CapturePolicy, this);
  }
  const commands::CommandInfo& Resolve(const resp::Request& req);
  void OnFramedRequest(const resp::Request& req, const commands::CommandInfo& info,
                       int64_t now_ns) {
    if (observing_) OnRequest(req, info, now_ns);
  }
  // The client's bytes are not Redis protocol (the framing scanner said so).
  void OnClientProtocolError();
  // Likewise for replies: a shared connection's router cuts them and hands each one over
  // (OnFramedReply) instead of its bytes; RawWanted says, before a reply starts, how many of
  // its raw bytes this session wants (0: none). Replies respscope answers itself still come
  // as bytes (OnUpstreamBytes), only at reply boundaries.
  size_t RawWanted() {
    return observing_ && pending_count_ > 0 && Front().want_raw ? RawCaptureLimit() : 0;
  }
  void OnFramedReply(const resp::ReplyInfo& reply, int64_t now_ns) {
    if (!observing_) return;
    OnReply(reply, now_ns);
    if (observing_) ArmCapture();
  }
  // How the client's commands from now on reach Redis: analytics::kObsShared or kObsPinned
  // (with the pin reason, static storage), or 0 for a dedicated connection (the default).
  void SetUpstreamMode(uint32_t mode_flag, const char* pin_reason) {
    mode_flag_ = mode_flag;
    pin_reason_ = pin_reason;
  }

  bool observing() const { return observing_; }
  // True while a reply frame has been partly forwarded: closing now would cut it.
  bool reply_in_progress() const { return replies_.frame_in_progress(); }
  size_t pending() const { return pending_count_; }
  int protocol() const { return proto_; }
  bool subscribed() const { return subscribed_; }
  const std::string& client_name() const { return client_name_; }
  // Why observation stopped (empty while observing): for logs and tests.
  const std::string& lost_reason() const { return lost_reason_; }

 private:
  static size_t CapturePolicy(void* ctx, std::string_view name);

  enum class ReplyMode : uint8_t { kOn, kSkipNext, kOff };
  enum class Kind : uint8_t {
    kNormal, kMulti, kExec, kDiscard, kQueued, kSubscribe, kUnsubscribe, kMonitor, kHello,
    kReset, kClientSetName
  };
  // Offsets below are "virtual": they count from the session's first byte of arena, so that
  // compaction (dropping the answered prefix) never rewrites them.
  struct Pending {
    int64_t start_ns;
    uint64_t request_bytes;
    uint64_t arena_mark;    // arena offset where this command's data begins
    uint64_t key_begin;     // into key_refs_
    uint64_t arg_begin;     // into arg_refs_ (captured commands only)
    uint32_t flags;         // analytics::ObservationFlag bits known at request time
    uint32_t key_count;
    uint32_t arg_count;
    uint32_t confirmations; // subscribe family: replies expected (0 = one per subscription)
    uint32_t seen;          // subscribe family: confirmations received
    uint16_t command_id;
    Kind kind;
    SubCounter sub_kind;    // subscribe family: which subscriptions it counts
    uint8_t hello_proto;    // HELLO n: requested protocol, 0 = unchanged
    bool want_raw;          // capture the raw reply (scripts; EXEC holding scripts)
  };
  struct Ref {  // a copied argument: arena offset, captured size, real length
    uint64_t off;
    uint32_t size;
    uint64_t len;
  };

  void OnRequest(const resp::Request& req, const commands::CommandInfo& info, int64_t now_ns);
  void OnReply(const resp::ReplyInfo& reply, int64_t now_ns);
  bool HandlePush(const resp::ReplyInfo& reply);
  void Emit(const Pending& p, const resp::ReplyInfo& reply, int64_t end_ns, uint32_t extra_flags,
            std::optional<uint8_t> element_kind, std::string_view raw_override);
  void EmitNoReply(const Pending& p);
  void EmitExec(const Pending& exec, const resp::ReplyInfo& reply, int64_t now_ns);
  void Lose(const char* why, analytics::SessionEvent event);
  void Push(const Pending& p);
  Pending& Front() { return ring_[head_ & (ring_.size() - 1)]; }
  size_t RawCaptureLimit() const { return options_ ? options_->max_capture_bytes : (1 << 20); }
  void Pop();
  void ArmCapture();
  void CompactArena();
  bool WantsCapture(const commands::CommandInfo& info) const;

  std::shared_ptr<const commands::CommandTable> table_;
  analytics::ObservationSink* sink_;
  const SessionOptions* options_;
  uint64_t client_id_;
  std::string peer_;
  std::string client_name_;
  uint32_t mode_flag_ = 0;              // analytics::kObsShared / kObsPinned / 0
  const char* pin_reason_ = nullptr;
  const commands::CommandInfo* policy_info_ = nullptr;  // the capture policy's lookup

  resp::RequestScanner requests_;
  resp::ReplyScanner replies_;
  bool observing_ = true;
  std::string lost_reason_;

  // Pending FIFO as a power-of-two ring (no allocation per command in steady state).
  std::vector<Pending> ring_;
  uint64_t head_ = 0;
  uint64_t tail_ = 0;
  size_t pending_count_ = 0;
  std::string arena_;          // keys and captured args of pending commands
  std::vector<Ref> key_refs_;
  std::vector<Ref> arg_refs_;
  uint64_t arena_base_ = 0;      // virtual offset of arena_[0]
  uint64_t refs_base_keys_ = 0;  // virtual index of key_refs_[0]
  uint64_t refs_base_args_ = 0;

  // MULTI bookkeeping: commands queued (their +QUEUED seen) await the EXEC array.
  bool req_in_multi_ = false;     // request side: between MULTI and EXEC/DISCARD
  bool multi_wants_raw_ = false;  // a queued command wants its raw reply from the EXEC array
  std::vector<Pending> queued_;   // reply side: queued commands, in order

  // Reply modes.
  int proto_ = 2;
  bool subscribed_ = false;       // RESP2 subscribed mode (messages are plain arrays)
  bool monitoring_ = false;
  ReplyMode reply_mode_ = ReplyMode::kOn;  // CLIENT REPLY
  // Subscriptions per family (channels, patterns, shard channels) and the totals Redis last
  // reported (channels+patterns together, shard channels apart).
  uint64_t sub_counts_[3] = {0, 0, 0};
  uint64_t regular_total_ = 0;
  uint64_t shard_total_ = 0;

  // Scratch for building Observations (reused, never shrinks below its high-water mark).
  std::vector<uint32_t> key_index_;
  std::vector<std::string_view> obs_keys_;
  std::vector<uint32_t> obs_key_lengths_;
  std::vector<analytics::Lookup> obs_lookups_;
  std::vector<std::string_view> obs_args_;
  std::vector<std::string_view> arg_views_;
};

}  // namespace respscope::session
