#include "proxy/session/session_core.h"

#include <algorithm>
#include <optional>

#include "proxy/resp/resp_util.h"

namespace respscope::session {

using analytics::Lookup;
using analytics::Observation;
using analytics::SessionEvent;
using commands::CommandInfo;
using commands::LookupKind;
using commands::SessionRole;
using resp::ElementKind;

namespace {

using resp::EqualsLower;

// Arena bytes already consumed by answered commands before the arena is compacted.
constexpr size_t kCompactBytes = 64 * 1024;

// SET / GETEX options from `from` on (CommandInfo::expiry_options_from): which expiry the
// command leaves on its key. A handful of short compares, SET and GETEX only. Options that
// were not captured (empty views) say nothing.
uint32_t ExpiryFlags(std::span<const std::string_view> args, size_t from) {
  uint32_t flags = 0;
  for (size_t i = from; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a.size() < 2 || a.size() > 7) continue;
    if (EqualsLower(a, "ex") || EqualsLower(a, "px") || EqualsLower(a, "exat") ||
        EqualsLower(a, "pxat") || EqualsLower(a, "keepttl")) {
      flags |= analytics::kObsTtlSet;
    } else if (EqualsLower(a, "persist")) {
      flags |= analytics::kObsTtlCleared;
    }
  }
  return flags;
}

// Subscribe family: which confirmation a command expects, and which counter it moves.
struct SubFamily {
  std::string_view command;
  std::string_view confirmation;
  bool subscribe;   // adds subscriptions
  SubCounter counter;
};
constexpr SubFamily kSubFamilies[] = {
    {"subscribe", "subscribe", true, SubCounter::kChannels},
    {"psubscribe", "psubscribe", true, SubCounter::kPatterns},
    {"ssubscribe", "ssubscribe", true, SubCounter::kShardChannels},
    {"unsubscribe", "unsubscribe", false, SubCounter::kChannels},
    {"punsubscribe", "punsubscribe", false, SubCounter::kPatterns},
    {"sunsubscribe", "sunsubscribe", false, SubCounter::kShardChannels},
};

const SubFamily* FindSubFamily(std::string_view name) {
  for (const SubFamily& f : kSubFamilies) {
    if (f.command == name) return &f;
  }
  return nullptr;
}

// kSubFamilies is in the order of SessionRole::kSubscribe .. kSUnsubscribe.
const SubFamily* FamilyOf(commands::SessionRole role) {
  using commands::SessionRole;
  if (role < SessionRole::kSubscribe || role > SessionRole::kSUnsubscribe) return nullptr;
  return &kSubFamilies[static_cast<int>(role) - static_cast<int>(SessionRole::kSubscribe)];
}

bool IsMessageKind(std::string_view first) {
  return EqualsLower(first, "message") || EqualsLower(first, "pmessage") ||
         EqualsLower(first, "smessage");
}

}  // namespace

// Runs once the command name is known, before the arguments: scripts capture their bodies.
// The looked-up entry is kept so OnRequest does not look the name up again.
size_t SessionCore::CapturePolicy(void* ctx, std::string_view name) {
  auto* self = static_cast<SessionCore*>(ctx);
  const CommandInfo& info = self->table_->Find(name, {});
  self->policy_info_ = &info;
  if ((info.flags & commands::kFlagScript) || info.has_subcommands) {
    // SCRIPT LOAD bodies, and containers whose subcommand is not known yet.
    return info.has_subcommands && info.name != "script" ? resp::RequestLimits::kDefaultCapture
                                                          : size_t{1} << 20;
  }
  return resp::RequestLimits::kDefaultCapture;
}

SessionCore::SessionCore(std::shared_ptr<const commands::CommandTable> table,
                         analytics::ObservationSink* sink, uint64_t client_id, std::string peer,
                         const SessionOptions* options)
    : table_(std::move(table)),
      sink_(sink),
      options_(options),
      client_id_(client_id),
      peer_(std::move(peer)) {
  requests_.SetCapturePolicy(&SessionCore::CapturePolicy, this);
}

bool SessionCore::WantsCapture(const CommandInfo& info) const {
  if (info.flags & commands::kFlagScript) return true;
  if (!options_) return false;
  const auto& ids = options_->capture_commands;
  return std::find(ids.begin(), ids.end(), info.id) != ids.end();
}

void SessionCore::Lose(const char* why, SessionEvent event) {
  if (!observing_) return;
  observing_ = false;
  lost_reason_ = why;
  sink_->OnEvent(event, client_id_);
  ring_.clear();
  ring_.shrink_to_fit();
  head_ = tail_ = 0;
  pending_count_ = 0;
  queued_.clear();
  arena_.clear();
  arena_.shrink_to_fit();
  key_refs_.clear();
  arg_refs_.clear();
}

void SessionCore::Push(const Pending& p) {
  if (pending_count_ == ring_.size()) {
    // Grow the ring, keeping order; amortised, and only up to the high-water mark.
    std::vector<Pending> bigger(std::max<size_t>(16, ring_.size() * 2));
    for (size_t i = 0; i < pending_count_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_.swap(bigger);
    head_ = 0;
    tail_ = pending_count_;
  }
  ring_[tail_ & (ring_.size() - 1)] = p;
  ++tail_;
  ++pending_count_;
}

void SessionCore::Pop() {
  ++head_;
  --pending_count_;
  CompactArena();
}

void SessionCore::CompactArena() {
  if (!queued_.empty()) return;  // queued commands still point into the arena
  if (pending_count_ == 0) {
    arena_.clear();
    key_refs_.clear();
    arg_refs_.clear();
    arena_base_ = refs_base_keys_ = refs_base_args_ = 0;
    if (arena_.capacity() > kCompactBytes) std::string().swap(arena_);
    return;
  }
  const Pending& front = Front();
  uint64_t drop = front.arena_mark - arena_base_;
  if (drop < kCompactBytes) return;
  arena_.erase(0, drop);
  arena_base_ = front.arena_mark;
  key_refs_.erase(key_refs_.begin(), key_refs_.begin() + (front.key_begin - refs_base_keys_));
  refs_base_keys_ = front.key_begin;
  arg_refs_.erase(arg_refs_.begin(), arg_refs_.begin() + (front.arg_begin - refs_base_args_));
  refs_base_args_ = front.arg_begin;
}

// Arms (or disarms) the raw capture of the next reply frame scanned here, for the command now
// at the front. Called after each reply, wherever it was scanned: when a shared connection's
// router observed the last one, the next may still come here as bytes (after a pin).
void SessionCore::ArmCapture() {
  if (!replies_.frame_in_progress()) replies_.CaptureNextRaw(RawWanted());
}

void SessionCore::OnClientBytes(std::string_view bytes, int64_t now_ns) {
  if (!observing_) return;
  resp::Request req;
  for (;;) {
    resp::ScanStatus st = requests_.Next(&bytes, &req);
    if (st == resp::ScanStatus::kCommand) {
      OnRequest(req, Resolve(req), now_ns);
      if (!observing_) return;
      continue;
    }
    if (st == resp::ScanStatus::kError) OnClientProtocolError();
    return;
  }
}

void SessionCore::OnClientProtocolError() {
  Lose("client protocol error", SessionEvent::kClientProtocolError);
}

const CommandInfo& SessionCore::Resolve(const resp::Request& req) {
  // The capture policy already looked the name up (multibulk form); containers need their
  // subcommand too.
  const CommandInfo* found = req.inline_form ? nullptr : policy_info_;
  policy_info_ = nullptr;
  if (found && !found->has_subcommands) return *found;
  std::string_view name = req.args.empty() ? std::string_view() : req.args[0];
  std::string_view sub = req.args.size() > 1 ? req.args[1] : std::string_view();
  return table_->Find(name, sub);
}

void SessionCore::OnUpstreamBytes(std::string_view bytes, int64_t now_ns) {
  if (!observing_) return;
  resp::ReplyInfo reply;
  for (;;) {
    resp::ScanStatus st = replies_.Next(&bytes, &reply);
    if (st == resp::ScanStatus::kCommand) {
      OnReply(reply, now_ns);
      if (!observing_) return;
      ArmCapture();
      continue;
    }
    if (st == resp::ScanStatus::kError) {
      Lose("upstream protocol error", SessionEvent::kUpstreamProtocolError);
    }
    return;
  }
}

void SessionCore::OnRequest(const resp::Request& req, const CommandInfo& info, int64_t now_ns) {
  if (pending_count_ >= kMaxPending) {
    Lose("too many commands in flight", SessionEvent::kObservationLost);
    return;
  }
  const SessionRole role = info.role;

  Pending p{};
  p.start_ns = now_ns;
  p.request_bytes = req.wire_bytes;
  p.command_id = info.id;
  p.kind = Kind::kNormal;
  p.flags |= mode_flag_;
  if (info.flags & commands::kFlagRead) p.flags |= analytics::kObsRead;
  if (info.flags & commands::kFlagWrite) p.flags |= analytics::kObsWrite;
  if (info.flags & commands::kFlagPubSub) p.flags |= analytics::kObsPubSub;
  if (info.flags & commands::kFlagAdmin) p.flags |= analytics::kObsAdmin;
  if (info.flags & commands::kFlagScript) p.flags |= analytics::kObsScript;
  if (req.argc > req.args.size()) p.flags |= analytics::kObsArgsTruncated;
  if ((info.flags & commands::kFlagBlocking) && table_->IsBlockingCall(info, req.args)) {
    p.flags |= analytics::kObsBlocking;
  }
  if (info.expiry_options_from != 0) p.flags |= ExpiryFlags(req.args, info.expiry_options_from);

  // Keys, copied: the request bytes are gone by the time the reply arrives.
  p.arena_mark = arena_base_ + arena_.size();
  p.key_begin = refs_base_keys_ + key_refs_.size();
  key_index_.clear();
  table_->KeyIndices(info, req.args, req.argc, &key_index_);
  for (uint32_t idx : key_index_) {
    if (idx >= req.args.size()) break;
    std::string_view k = req.args[idx];
    key_refs_.push_back(Ref{arena_base_ + arena_.size(), static_cast<uint32_t>(k.size()),
                            req.lengths[idx]});
    arena_.append(k);
  }
  p.key_count = static_cast<uint32_t>(key_refs_.size() - (p.key_begin - refs_base_keys_));

  const bool sensitive = (info.flags & commands::kFlagSensitiveArgs) != 0;
  bool capture = WantsCapture(info) && !sensitive;
  // A command whose error reply can echo an optional argument unquoted (EXPIRE k 10 BOGUS:
  // "ERR Unsupported option BOGUS") keeps its arguments when it has optional ones, so the
  // analytics can keep them out of the error text; EXPIRE k 10 copies nothing but its key.
  const bool echoes = (info.flags & commands::kFlagEchoesArgs) && !sensitive &&
                      req.argc > static_cast<uint64_t>(info.arity < 0 ? -info.arity : info.arity);
  bool keep_args = capture || echoes || role == SessionRole::kClientSetName;
  p.arg_begin = refs_base_args_ + arg_refs_.size();
  if (keep_args) {
    for (size_t i = 0; i < req.args.size(); ++i) {
      arg_refs_.push_back(Ref{arena_base_ + arena_.size(),
                              static_cast<uint32_t>(req.args[i].size()), req.lengths[i]});
      arena_.append(req.args[i]);
    }
  }
  p.arg_count = static_cast<uint32_t>(arg_refs_.size() - (p.arg_begin - refs_base_args_));
  p.want_raw = capture;

  // Connection-level semantics, as Redis's own networking code has them.
  bool queues = req_in_multi_ && role != SessionRole::kExec && role != SessionRole::kDiscard &&
                role != SessionRole::kMulti && role != SessionRole::kWatch &&
                role != SessionRole::kQuit && role != SessionRole::kReset;
  if (queues) {
    p.kind = Kind::kQueued;
    if (capture) multi_wants_raw_ = true;
    p.want_raw = false;  // the raw reply comes inside the EXEC array
  } else {
    switch (role) {
      case SessionRole::kMulti:
        p.kind = Kind::kMulti;
        req_in_multi_ = true;
        multi_wants_raw_ = false;
        break;
      case SessionRole::kExec:
      case SessionRole::kDiscard:
        p.kind = role == SessionRole::kExec ? Kind::kExec : Kind::kDiscard;
        p.want_raw = req_in_multi_ && multi_wants_raw_;
        req_in_multi_ = false;
        break;
      case SessionRole::kSubscribe:
      case SessionRole::kPSubscribe:
      case SessionRole::kSSubscribe:
      case SessionRole::kUnsubscribe:
      case SessionRole::kPUnsubscribe:
      case SessionRole::kSUnsubscribe: {
        const SubFamily* f = FamilyOf(role);
        p.kind = f->subscribe ? Kind::kSubscribe : Kind::kUnsubscribe;
        p.sub_kind = f->counter;
        p.confirmations = static_cast<uint32_t>(std::min<uint64_t>(req.argc - 1, UINT32_MAX));
        break;
      }
      case SessionRole::kMonitor:
        p.kind = Kind::kMonitor;
        break;
      case SessionRole::kHello: {
        p.kind = Kind::kHello;
        int64_t v = 0;
        if (req.args.size() > 1 && resp::ParseInt64(req.args[1], &v) && (v == 2 || v == 3)) {
          p.hello_proto = static_cast<uint8_t>(v);
        }
        break;
      }
      case SessionRole::kReset:
        p.kind = Kind::kReset;
        req_in_multi_ = false;
        reply_mode_ = ReplyMode::kOn;
        break;
      case SessionRole::kClientSetName:
        p.kind = Kind::kClientSetName;
        break;
      default:
        break;
    }
  }

  // CLIENT REPLY OFF|SKIP and the commands they silence get no reply at all.
  bool silent = false;
  if (role == SessionRole::kClientReply && req.args.size() > 2) {
    if (EqualsLower(req.args[2], "on")) {
      reply_mode_ = ReplyMode::kOn;
    } else if (EqualsLower(req.args[2], "off")) {
      reply_mode_ = ReplyMode::kOff;
      silent = true;
    } else if (EqualsLower(req.args[2], "skip")) {
      silent = true;
      if (reply_mode_ == ReplyMode::kOn) reply_mode_ = ReplyMode::kSkipNext;
    }
  } else if (reply_mode_ == ReplyMode::kOff) {
    silent = true;
  } else if (reply_mode_ == ReplyMode::kSkipNext) {
    silent = true;
    reply_mode_ = ReplyMode::kOn;
  }
  if (silent) {
    EmitNoReply(p);
    // Drop what this command appended: nothing will come back for it.
    if (pending_count_ == 0 && queued_.empty()) CompactArena();
    return;
  }
  bool was_empty = pending_count_ == 0;
  Push(p);
  if (was_empty) ArmCapture();
}

void SessionCore::OnReply(const resp::ReplyInfo& reply, int64_t now_ns) {
  std::string_view first = reply.first_element;
  // RESP3 push frames and RESP2 messages in subscribed mode belong to no command, except
  // subscribe-family confirmations, which answer the command at the head of the FIFO.
  bool confirmation = false;
  if (reply.is_push || (proto_ == 2 && subscribed_ && reply.type == '*')) {
    if (IsMessageKind(first) || (reply.is_push && !FindSubFamily(first))) {
      return;  // message, invalidation or other push: forwarded, not a reply
    }
    confirmation = FindSubFamily(first) != nullptr;
  } else if (reply.type == '*' && pending_count_ && !reply.is_error) {
    const Pending& head = Front();
    confirmation = (head.kind == Kind::kSubscribe || head.kind == Kind::kUnsubscribe) &&
                   FindSubFamily(first) != nullptr;
  }

  for (;;) {
    if (pending_count_ == 0) {
      if (monitoring_) return;
      Lose("reply without a pending command", SessionEvent::kObservationLost);
      return;
    }
    Pending& p = Front();
    if (p.kind == Kind::kSubscribe || p.kind == Kind::kUnsubscribe) {
      const SubFamily* head_family = nullptr;
      for (const SubFamily& f : kSubFamilies) {
        if (f.counter == p.sub_kind && f.subscribe == (p.kind == Kind::kSubscribe)) head_family = &f;
      }
      bool mine = confirmation && head_family && EqualsLower(first, head_family->confirmation);
      if (!mine && p.seen > 0) {
        // A no-argument unsubscribe ended before this frame: finish it, then match again.
        Emit(p, {}, now_ns, 0, std::nullopt, {});
        Pop();
        continue;
      }
      if (mine) {
        int64_t total = reply.has_last_integer ? reply.last_integer : 0;
        uint64_t& counter = sub_counts_[static_cast<size_t>(p.sub_kind)];
        if (p.seen == 0 && p.confirmations == 0) {
          // UNSUBSCRIBE with no argument: one confirmation per subscription, at least one.
          p.confirmations = static_cast<uint32_t>(std::max<uint64_t>(counter, 1));
        }
        // Redis reports channels+patterns together (shard channels apart): the change in
        // that total is the change in this family's own count.
        uint64_t& total_prev =
            p.sub_kind == SubCounter::kShardChannels ? shard_total_ : regular_total_;
        int64_t delta = total - static_cast<int64_t>(total_prev);
        total_prev = static_cast<uint64_t>(std::max<int64_t>(total, 0));
        counter = static_cast<uint64_t>(std::max<int64_t>(static_cast<int64_t>(counter) + delta, 0));
        subscribed_ = (regular_total_ + shard_total_) > 0;
        if (++p.seen >= p.confirmations) {
          Emit(p, reply, now_ns, 0, std::nullopt, {});
          Pop();
        }
        return;
      }
      Emit(p, reply, now_ns, 0, std::nullopt, {});  // an error instead of confirmations
      Pop();
      return;
    }
    if (confirmation) {
      Lose("subscribe confirmation without a subscribe", SessionEvent::kObservationLost);
      return;
    }
    break;
  }

  Pending& p = Front();
  switch (p.kind) {
    case Kind::kQueued:
      if (!reply.is_error && reply.short_string == "QUEUED") {
        queued_.push_back(p);
      } else {
        Emit(p, reply, now_ns, analytics::kObsInMulti, std::nullopt, {});
      }
      // The entry stays referenced from queued_: pop without compacting the arena.
      ++head_;
      --pending_count_;
      return;
    case Kind::kExec:
      EmitExec(p, reply, now_ns);
      queued_.clear();
      Pop();
      return;
    case Kind::kDiscard:
      queued_.clear();
      break;
    case Kind::kMonitor:
      if (!reply.is_error) {
        Emit(p, reply, now_ns, 0, std::nullopt, {});
        Pop();
        // The monitor stream is forwarded as it is; it is not observed.
        monitoring_ = true;
        observing_ = false;
        lost_reason_ = "monitor";
        return;
      }
      break;
    case Kind::kHello:
      if (!reply.is_error && p.hello_proto) proto_ = p.hello_proto;
      break;
    case Kind::kReset:
      proto_ = 2;
      subscribed_ = false;
      regular_total_ = shard_total_ = 0;
      sub_counts_[0] = sub_counts_[1] = sub_counts_[2] = 0;
      queued_.clear();
      break;
    case Kind::kClientSetName:
      if (!reply.is_error && p.arg_count > 2) {
        const Ref& r = arg_refs_[p.arg_begin - refs_base_args_ + 2];
        client_name_.assign(arena_.data() + (r.off - arena_base_), r.size);
      }
      break;
    default:
      break;
  }
  Emit(p, reply, now_ns, 0, std::nullopt, {});
  Pop();
}

void SessionCore::EmitExec(const Pending& exec, const resp::ReplyInfo& reply, int64_t now_ns) {
  if (reply.type == '*' && !reply.is_null && !reply.is_error) {
    size_t next_error = 0;
    for (size_t i = 0; i < queued_.size(); ++i) {
      uint8_t kind = i < reply.element_kind.size() ? reply.element_kind[i]
                                                   : static_cast<uint8_t>(resp::kElemValue);
      std::string_view raw;
      if (i < reply.element_raw.size()) {
        auto [b, e] = reply.element_raw[i];
        raw = reply.raw.substr(b, e - b);
      }
      resp::ReplyInfo element{};
      element.type = '?';
      // An error element keeps its own prefix and text (WRONGTYPE inside a transaction).
      while (next_error < reply.element_errors.size() &&
             reply.element_errors[next_error].index < i) {
        ++next_error;
      }
      if (next_error < reply.element_errors.size() &&
          reply.element_errors[next_error].index == i) {
        const std::string& text = reply.element_errors[next_error].text;
        element.is_error = true;
        element.error_text = text;
        element.error_prefix = std::string_view(text).substr(0, text.find(' '));
      }
      Emit(queued_[i], element, now_ns, analytics::kObsInMulti,
           kind, raw);
    }
  }
  // EXECABORT or a WATCH abort (null): the queued commands never ran.
  resp::ReplyInfo own = reply;
  own.raw = {};
  Emit(exec, own, now_ns, 0, std::nullopt, {});
}

void SessionCore::EmitNoReply(const Pending& p) {
  resp::ReplyInfo none{};
  none.type = '?';
  Emit(p, none, p.start_ns, analytics::kObsNoReply, std::nullopt, {});
}

void SessionCore::Emit(const Pending& p, const resp::ReplyInfo& reply, int64_t end_ns,
                       uint32_t extra_flags, std::optional<uint8_t> element,
                       std::string_view raw_override) {
  // element: this observation is one element of an EXEC array, of that kind.
  const bool over = element.has_value();
  const uint8_t element_kind = element.value_or(resp::kElemValue);
  const CommandInfo& info = table_->at(p.command_id);
  Observation o;
  o.command_id = p.command_id;
  o.command = info.name;
  o.flags = p.flags | extra_flags;
  o.start_ns = p.start_ns;
  o.end_ns = end_ns;
  o.request_bytes = p.request_bytes;
  o.reply_bytes = over ? raw_override.size() : reply.wire_bytes;
  bool is_error = over ? element_kind == resp::kElemError : reply.is_error;
  if (is_error) o.flags |= analytics::kObsError;

  obs_keys_.clear();
  obs_key_lengths_.clear();
  obs_lookups_.clear();
  size_t kb = p.key_begin - refs_base_keys_;
  for (uint32_t i = 0; i < p.key_count; ++i) {
    const Ref& r = key_refs_[kb + i];
    obs_keys_.emplace_back(arena_.data() + (r.off - arena_base_), r.size);
    obs_key_lengths_.push_back(static_cast<uint32_t>(std::min<uint64_t>(r.len, UINT32_MAX)));
  }
  o.keys = obs_keys_;
  o.key_lengths = obs_key_lengths_;

  // Cache lookups: the command table says which reply shape is a miss.
  if (!is_error && !(o.flags & analytics::kObsNoReply) && info.lookup != LookupKind::kNone &&
      p.key_count > 0) {
    bool known = true;
    auto single = [&](bool miss) {
      obs_lookups_.assign(p.key_count, Lookup::kNone);
      obs_lookups_[0] = miss ? Lookup::kMiss : Lookup::kHit;
    };
    switch (info.lookup) {
      case LookupKind::kNilIsMiss:
        single(over ? element_kind == resp::kElemNull : reply.is_null);
        break;
      case LookupKind::kEmptyIsMiss:
        single(over ? (element_kind == resp::kElemEmpty || element_kind == resp::kElemNull)
                    : (reply.is_null || reply.elements == 0));
        break;
      case LookupKind::kZeroIsMiss:
        single(over ? element_kind == resp::kElemZero
                    : (reply.has_integer && reply.integer == 0) ||
                          (reply.type == '#' && reply.short_string == "f"));
        break;
      case LookupKind::kFieldsNilIsMiss: {
        if (over) { known = false; break; }
        bool any = false;
        for (uint8_t k : reply.element_kind) any |= k != resp::kElemNull;
        single(!any);
        break;
      }
      case LookupKind::kElementNilIsMiss:
        if (over || reply.element_kind.size() < p.key_count) { known = false; break; }
        obs_lookups_.resize(p.key_count);
        for (uint32_t i = 0; i < p.key_count; ++i) {
          obs_lookups_[i] = reply.element_kind[i] == resp::kElemNull ? Lookup::kMiss : Lookup::kHit;
        }
        break;
      case LookupKind::kCountKeys: {
        // EXISTS k1..kn answers how many exist, not which: the first n are counted as hits.
        if (over || !reply.has_integer) { known = false; break; }
        int64_t found = std::clamp<int64_t>(reply.integer, 0, p.key_count);
        obs_lookups_.resize(p.key_count);
        for (uint32_t i = 0; i < p.key_count; ++i) {
          obs_lookups_[i] = i < found ? Lookup::kHit : Lookup::kMiss;
        }
        break;
      }
      case LookupKind::kNone:
        break;
    }
    if (!known) obs_lookups_.clear();
  }
  o.lookups = obs_lookups_;

  if (p.arg_count) {
    obs_args_.clear();
    size_t ab = p.arg_begin - refs_base_args_;
    for (uint32_t i = 0; i < p.arg_count; ++i) {
      const Ref& r = arg_refs_[ab + i];
      obs_args_.emplace_back(arena_.data() + (r.off - arena_base_), r.size);
    }
    o.args = obs_args_;
  }
  if (is_error) {
    o.error_prefix = reply.error_prefix;
    o.error_text = reply.error_text;
  }
  o.reply_raw = over ? raw_override : reply.raw;
  if ((o.flags & analytics::kObsScript) && o.reply_raw.empty() && !(o.flags & analytics::kObsNoReply)) {
    o.flags |= analytics::kObsReplyTruncated;
  }
  o.reply_is_integer = reply.has_integer;
  o.reply_integer = reply.integer;
  o.client_id = client_id_;
  o.client_name = client_name_.empty() ? std::string_view(peer_) : std::string_view(client_name_);
  o.pin_reason = (o.flags & analytics::kObsPinned) ? pin_reason_ : nullptr;
  sink_->Record(o);
}

}  // namespace respscope::session
