#include "analytics/recorder/recorder.h"

#include "analytics/patterns/bytes.h"
#include "analytics/recorder/recorder_slots.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>

namespace respscope::recorder {

using analytics::Lookup;
using analytics::Observation;
using analytics::SessionEvent;
using patterns::KeyClass;

namespace {

constexpr std::array<std::string_view, 23> kErrorPrefixes = {
    "ERR",       "WRONGTYPE", "OOM",        "NOSCRIPT",   "MOVED",       "ASK",
    "BUSY",      "LOADING",   "NOAUTH",     "NOPERM",     "WRONGPASS",   "READONLY",
    "EXECABORT", "CROSSSLOT", "TRYAGAIN",   "CLUSTERDOWN", "MASTERDOWN", "MISCONF",
    "NOREPLICAS", "BUSYKEY",  "NOGROUP",    "UNBLOCKED",  "other"};
constexpr size_t kOtherError = kErrorPrefixes.size() - 1;
static_assert(kErrorPrefixes.size() == kErrorPrefixCount);

size_t ErrorIndex(std::string_view prefix) {
  for (size_t i = 0; i < kOtherError; ++i) {
    if (kErrorPrefixes[i] == prefix) return i;
  }
  return kOtherError;
}

// The pattern dedup set per command: a command is counted once per distinct pattern among
// its first kMaxDistinct patterns (more distinct patterns in one command are counted again).
constexpr size_t kMaxDistinct = 64;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "10.0.0.7:53122" -> "10.0.0.7", "[::1]:6000" -> "[::1]": peer ports churn with every
// connection and would exhaust the bounded client table. Names set with CLIENT SETNAME are
// kept as they are.
std::string_view StripPeerPort(std::string_view name) {
  size_t colon = name.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == name.size()) return name;
  for (size_t i = colon + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return name;
  }
  std::string_view host = name.substr(0, colon);
  for (char c : host) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
              c == '.' || c == ':' || c == '[' || c == ']';
    if (!ok) return name;
  }
  return host.empty() ? name : host;
}

// Tells two keys apart cheaply (their length, first and last 8 bytes) without hashing them:
// a run of reads of one key repeated is polling, not an N+1.
uint64_t KeySignature(std::string_view key) {
  uint64_t head = 0, tail = 0;
  std::memcpy(&head, key.data(), std::min<size_t>(8, key.size()));
  if (key.size() > 8) std::memcpy(&tail, key.data() + key.size() - 8, 8);
  return head ^ (tail * 0x9e3779b97f4a7c15ULL) ^ (uint64_t{key.size()} << 56);
}

}  // namespace

std::string_view ErrorPrefixBucket(std::string_view prefix) {
  return kErrorPrefixes[ErrorIndex(prefix)];
}

std::string_view ErrorPrefixName(size_t index) { return kErrorPrefixes[index]; }

Recorder::Recorder(RecorderOptions options, std::shared_ptr<const patterns::RulesHub> rules)
    : options_(options),
      hub_(std::move(rules)),
      commands_(new std::atomic<CommandSlot*>[std::max<size_t>(options_.max_commands, 1)]),
      patterns_(new std::atomic<PatternSlot*>[options_.max_patterns_cap + 1]),
      clients_(new std::atomic<ClientSlot*>[std::max<size_t>(options_.max_clients, 1)]),
      errors_(new ErrorSlot[kErrorPrefixCount]),
      slow_(new SlowRecord[std::max<size_t>(options_.slow_log_size, 1)]),
      hot_keys_(options_.hot_key_capacity) {
  for (size_t i = 0; i < std::max<size_t>(options_.max_commands, 1); ++i) commands_[i] = nullptr;
  for (size_t i = 0; i <= options_.max_patterns_cap; ++i) patterns_[i] = nullptr;
  for (size_t i = 0; i < std::max<size_t>(options_.max_clients, 1); ++i) clients_[i] = nullptr;
  if (options_.key_lifecycle) runs_.reset(new ClientRun[kRunSlots]);
  first_key_.reserve(kMaxStoredKey + 8);
  client_buf_.reserve(80);
  last_client_raw_.reserve(128);
  // Slot 0 of commands and clients is "other", the overflow.
  auto* other_cmd = new CommandSlot();
  other_cmd->name = "other";
  commands_[0].store(other_cmd, std::memory_order_release);
  command_index_.emplace("other", 0);
  n_commands_.store(1, std::memory_order_release);
  auto* other_client = new ClientSlot();
  other_client->name = "other";
  clients_[0].store(other_client, std::memory_order_release);
  client_index_.emplace("other", 0);
  n_clients_.store(1, std::memory_order_release);
  MaybeReloadRules();
}

Recorder::~Recorder() {
  for (uint32_t i = 0; i < n_commands_.load(); ++i) delete commands_[i].load();
  for (uint32_t i = 0; i < n_patterns_.load(); ++i) delete patterns_[i].load();
  for (uint32_t i = 0; i < n_clients_.load(); ++i) delete clients_[i].load();
}

void Recorder::MaybeReloadRules() {
  // One relaxed load per command; the mutex inside Get() is taken only after a reload.
  uint64_t v = hub_->Version();
  if (v == rules_version_ && rules_) return;
  rules_ = hub_->Get();
  rules_version_ = v;
  sanitizer_.Bind(*rules_);
}

Recorder::CommandSlot& Recorder::CommandFor(uint16_t id, std::string_view name) {
  if (id < command_by_id_.size()) {
    int32_t s = command_by_id_[id];
    if (s >= 0) {
      CommandSlot* slot = commands_[s].load(std::memory_order_relaxed);
      // The command table can be replaced at run time: trust the id only with its name.
      if (patterns::SameBytes(slot->name, name)) return *slot;
    }
  } else {
    command_by_id_.resize(static_cast<size_t>(id) + 1, -1);
  }
  uint32_t index;
  if (auto it = command_index_.find(name); it != command_index_.end()) {
    index = it->second;
  } else {
    index = n_commands_.load(std::memory_order_relaxed);
    if (index >= options_.max_commands || name.empty() || name.size() > 64) {
      index = 0;
    } else {
      auto* slot = new CommandSlot();
      slot->name.assign(name);
      slot->effect = KeyEffectOf(slot->name);
      commands_[index].store(slot, std::memory_order_release);
      n_commands_.store(index + 1, std::memory_order_release);
      command_index_.emplace(std::string(name), index);
    }
  }
  command_by_id_[id] = static_cast<int32_t>(index);
  return *commands_[index].load(std::memory_order_relaxed);
}

Recorder::PatternSlot& Recorder::PatternFor(uint32_t pattern_id) {
  if (pattern_id > options_.max_patterns_cap) pattern_id = patterns::Normalizer::kOther;
  PatternSlot* slot = patterns_[pattern_id].load(std::memory_order_relaxed);
  if (slot != nullptr) return *slot;
  slot = new PatternSlot();
  slot->name.assign(normalizer_.Name(pattern_id));
  patterns_[pattern_id].store(slot, std::memory_order_release);
  if (n_patterns_.load(std::memory_order_relaxed) <= pattern_id) {
    n_patterns_.store(pattern_id + 1, std::memory_order_release);
  }
  return *slot;
}

Recorder::ClientSlot& Recorder::ClientFor(std::string_view raw) {
  std::string_view name = StripPeerPort(raw);
  if (auto it = client_index_.find(name); it != client_index_.end()) {
    return *clients_[it->second].load(std::memory_order_relaxed);
  }
  // New name: sanitise (printable, cut) before storing.
  name = sanitizer_.Key(name, KeyClass{});
  if (name.size() > 64) name = name.substr(0, 64);
  if (auto it = client_index_.find(name); it != client_index_.end()) {
    return *clients_[it->second].load(std::memory_order_relaxed);
  }
  uint32_t index = n_clients_.load(std::memory_order_relaxed);
  if (index >= options_.max_clients || name.empty()) {
    return *clients_[0].load(std::memory_order_relaxed);
  }
  auto* slot = new ClientSlot();
  slot->name.assign(name);
  clients_[index].store(slot, std::memory_order_release);
  n_clients_.store(index + 1, std::memory_order_release);
  client_index_.emplace(std::string(StripPeerPort(raw)), index);
  if (slot->name != StripPeerPort(raw)) client_index_.emplace(slot->name, index);
  return *slot;
}

void Recorder::Record(const Observation& obs) {
  MaybeReloadRules();
  const bool error = (obs.flags & analytics::kObsError) != 0;
  const bool blocking = (obs.flags & analytics::kObsBlocking) != 0;
  const bool timed = (obs.flags & (analytics::kObsNoReply | analytics::kObsInMulti)) == 0 &&
                     obs.end_ns >= obs.start_ns;
  const uint64_t duration_ns = timed ? static_cast<uint64_t>(obs.end_ns - obs.start_ns) : 0;

  CommandSlot& cmd = CommandFor(obs.command_id, obs.command);
  (error ? cmd.error : cmd.ok).Inc();
  if (timed) {
    if (blocking) {
      AtomicHistogram* h = cmd.blocking.load(std::memory_order_relaxed);
      if (h == nullptr) {
        h = new AtomicHistogram();
        cmd.blocking.store(h, std::memory_order_release);
      }
      h->Record(duration_ns);
    } else {
      cmd.latency.Record(duration_ns);
    }
  }
  // Pipelined commands arrive in runs from one connection: remember the last client name.
  ClientSlot* cp = last_client_;
  if (cp == nullptr || obs.client_name != std::string_view(last_client_raw_)) {
    cp = &ClientFor(obs.client_name);
    last_client_ = nullptr;
    if (obs.client_name.size() <= last_client_raw_.capacity()) {  // never allocates
      last_client_raw_.assign(obs.client_name);
      last_client_ = cp;
    }
  }
  ClientSlot& client = *cp;
  client.commands.Inc();
  if (obs.flags & analytics::kObsShared) {
    client.shared.Inc();
  } else if (obs.flags & analytics::kObsPinned) {
    client.pinned.Inc();
    if (obs.pin_reason != nullptr) client.pin_reason.store(obs.pin_reason, std::memory_order_relaxed);
  }
  if (error) {
    client.errors.Inc();
    RecordError(obs);
  }
  // What the command does to its keys' lifetimes: one byte of the command's slot, the SET /
  // GETEX options the session flagged; nothing for errors or with key_lifecycle off.
  const KeyEffect effect =
      options_.key_lifecycle && !error
          ? EffectOfCall(cmd.effect, obs.flags, analytics::kObsTtlSet, analytics::kObsTtlCleared)
          : KeyEffect::kNone;
  RecordKeys(obs, timed && !blocking, duration_ns, effect, &client);
}

void Recorder::RecordKeys(const Observation& obs, bool timed, uint64_t duration_ns,
                          KeyEffect effect, ClientSlot* client) {
  const bool sampled = sanitizer_.Sampled();
  const size_t max_shown =
      std::min<size_t>(rules_->sanitize_options().max_key_length, kMaxStoredKey);
  const bool write = (obs.flags & analytics::kObsWrite) != 0;
  const bool read = !write && (obs.flags & analytics::kObsRead) != 0;
  uint32_t seen[kMaxDistinct];
  size_t n_seen = 0;
  PatternSlot* first = nullptr;
  uint32_t first_pattern = 0;
  bool first_captured = false;
  // The first key's shown form: a view into the observation or the sanitiser's buffer, copied
  // into first_key_ only when a later key is about to reuse that buffer.
  std::string_view first_shown;
  bool first_copied = false;

  for (size_t i = 0; i < obs.keys.size(); ++i) {
    std::string_view key = obs.keys[i];
    // A key over the scanner's capture limit arrives empty with its real length: it can be
    // neither classified nor shown, so it counts under "other" and is not tracked per key.
    bool captured = !key.empty() || i >= obs.key_lengths.size() || obs.key_lengths[i] == 0;
    KeyClass cls;
    uint32_t pid = patterns::Normalizer::kOther;
    bool printable = false;  // the key, as it is, is its own shown form
    uint64_t hot_hash = 0;
    bool hashed = false;
    if (captured) {
      cls = rules_->Classify(key);
      if (cls.kind == KeyClass::kExcluded) continue;
      // Start loading the hot-key table entry now; normalising the key hides the latency.
      if (sampled && cls.kind == KeyClass::kNormal && !key.empty() && key.size() <= max_shown) {
        hot_hash = hot_keys_.Prefetch(key);
        hashed = true;
      }
      pid = normalizer_.PatternId(*rules_, key, cls, &printable);
    }
    PatternSlot& p = PatternFor(pid);
    if (effect != KeyEffect::kNone && captured && pid != patterns::Normalizer::kOther) {
      switch (effect) {
        case KeyEffect::kCreateFirst:
          if (i != 0) break;
          [[fallthrough]];
        case KeyEffect::kCreate: {
          p.no_ttl_writes.Inc();
          DistinctSketch* sketch = p.no_ttl_keys.load(std::memory_order_relaxed);
          if (sketch == nullptr) {  // once per pattern and shard
            sketch = new DistinctSketch();
            p.no_ttl_keys.store(sketch, std::memory_order_release);
          }
          sketch->Add(DistinctSketch::Hash(key.data(), key.size()));
          break;
        }
        case KeyEffect::kExpire: p.ttl_sets.Inc(); break;
        case KeyEffect::kPersist: p.ttl_clears.Inc(); break;
        case KeyEffect::kDelete: p.deletes.Inc(); break;
        case KeyEffect::kNone: break;
      }
    }
    if (i < obs.lookups.size()) {
      if (obs.lookups[i] == Lookup::kHit) p.hits.Inc();
      if (obs.lookups[i] == Lookup::kMiss) p.misses.Inc();
    }
    bool is_new = true;
    for (size_t k = 0; k < n_seen; ++k) is_new = is_new && seen[k] != pid;
    if (is_new) {
      if (n_seen < kMaxDistinct) seen[n_seen++] = pid;
      (write ? p.write : read ? p.read : p.other).Inc();
      if (timed) p.latency.Record(duration_ns);
    }
    bool display = sampled && captured && !key.empty();
    std::string_view shown;
    if (display) {
      if (first_captured && !first_copied) {
        first_key_.assign(first_shown);
        first_shown = first_key_;
        first_copied = true;
      }
      if (printable && hashed) {  // printable, short, not sensitive: Sanitizer::Key's fast path
        shown = key;
        hot_keys_.OfferHashed(shown, hot_hash, pid);
      } else {
        shown = sanitizer_.Key(key, cls);
        hot_keys_.Offer(shown, pid);
      }
    }
    if (first == nullptr) {
      first = &p;
      first_pattern = pid;
      first_captured = display;
      if (display) first_shown = shown;
    }
  }
  if (first != nullptr) {
    first->bytes_in.Add(obs.request_bytes);
    first->bytes_out.Add(obs.reply_bytes);
    if (first_captured) MaybeBigValue(*first, obs, first_shown);
  }
  if (timed && duration_ns >= options_.slow_threshold_ns) {
    RecordSlow(obs, duration_ns, first ? first_pattern : UINT32_MAX, first_shown);
  }
  constexpr uint32_t kNotARunRead = analytics::kObsBlocking | analytics::kObsInMulti |
                                    analytics::kObsScript | analytics::kObsNoReply |
                                    analytics::kObsError;
  if (runs_ && read && obs.keys.size() == 1 && first != nullptr &&
      first_pattern != patterns::Normalizer::kOther && (obs.flags & kNotARunRead) == 0 &&
      !obs.keys[0].empty()) {
    TrackRun(obs, *first, first_pattern, obs.keys[0], client);
  }
}

void Recorder::TrackRun(const Observation& obs, PatternSlot& p, uint32_t pattern_id,
                        std::string_view key, ClientSlot* client) {
  ClientRun& r = runs_[obs.client_id % kRunSlots];
  const uint64_t sig = KeySignature(key);
  // Sequential: sent after the previous reply arrived (a pipelined read was sent before it).
  const bool next = r.client_id == obs.client_id && r.pattern == pattern_id && r.key_sig != sig &&
                    obs.start_ns >= r.end_ns && obs.start_ns - r.end_ns <= options_.run_max_gap_ns;
  if (!next) {
    r.client_id = obs.client_id;
    r.pattern = pattern_id;
    r.reads = 1;
    r.gap_ns = 0;
  } else {
    const auto gap = static_cast<uint64_t>(obs.start_ns - r.end_ns);
    ++r.reads;
    if (r.reads < options_.run_min_reads) {
      r.gap_ns += gap;
    } else if (r.reads == options_.run_min_reads) {  // a run now: publish what it held
      p.runs.Inc();
      p.run_reads.Add(r.reads);
      p.run_gap_ns.Add(r.gap_ns + gap);
      RunOffender o{};
      if (client != nullptr) o.client.Assign(client->name);
      o.command.Assign(obs.command);
      p.run_offender.Write(o);
    } else {
      p.run_reads.Inc();
      p.run_gap_ns.Add(gap);
      if ((r.reads - options_.run_min_reads) % kRunBatch == 0) p.runs.Inc();
    }
  }
  r.end_ns = obs.end_ns;
  r.key_sig = sig;
}

void Recorder::MaybeBigValue(PatternSlot& p, const Observation& obs, std::string_view key) {
  const bool write = (obs.flags & analytics::kObsWrite) != 0;
  const bool read = !write && (obs.flags & analytics::kObsRead) != 0;
  if ((obs.flags & analytics::kObsError) || (!read && !write)) return;
  uint64_t bytes = write ? obs.request_bytes : obs.reply_bytes;
  // Replace the same key if present, else the smallest entry; keep only growth. Either way
  // nothing changes unless `bytes` beats the smallest entry: decide that before any key
  // compare (the common case: values of steady size).
  uint64_t smallest = std::min(std::min(p.big_bytes[0], p.big_bytes[1]),
                               std::min(p.big_bytes[2], p.big_bytes[3]));
  if (bytes <= smallest) return;
  size_t target = kBigValuesPerPattern;
  for (size_t i = 0; i < kBigValuesPerPattern; ++i) {
    if (p.big_bytes[i] != 0 && p.big_keys[i].view() == key) {
      target = i;
      break;
    }
  }
  if (target == kBigValuesPerPattern) {
    target = static_cast<size_t>(std::min_element(p.big_bytes.begin(), p.big_bytes.end()) -
                                 p.big_bytes.begin());
  }
  if (bytes <= p.big_bytes[target]) return;
  BigEntry e{};
  e.bytes = bytes;
  e.wall_ms = WallMs();
  e.key.Assign(key);
  e.command.Assign(obs.command);
  p.big_bytes[target] = bytes;
  p.big_keys[target] = e.key;
  p.big[target].Write(e);
}

void Recorder::RecordError(const Observation& obs) {
  ErrorSlot& slot = errors_[ErrorIndex(obs.error_prefix)];
  slot.count.Inc();
  // One sample per prefix, refreshed at most every 1000 errors to keep the sanitiser off the
  // hot path when a client loops on a failing command.
  if (slot.count.Load() % 1000 != 1) return;
  ErrorSample s{};
  s.wall_ms = WallMs();
  // The command's arguments are known here and nowhere later: the text is checked against
  // them now (keys of every command; all arguments of the commands the session captures).
  patterns::Sanitizer::ErrorArgs from;
  from.keys = obs.keys;
  if (!obs.args.empty()) from.args = obs.args.subspan(1);
  from.known_code = ErrorIndex(obs.error_prefix) != kOtherError;
  s.text.Assign(sanitizer_.Error(obs.error_prefix, obs.error_text, from));
  s.command.Assign(obs.command);
  slot.last.Write(s);
}

void Recorder::RecordSlow(const Observation& obs, uint64_t duration_ns, uint32_t pattern_id,
                          std::string_view key) {
  SlowPayload s{};
  s.wall_ms = WallMs();
  s.duration_ns = duration_ns;
  s.command.Assign(obs.command);
  if (pattern_id != UINT32_MAX) s.pattern.Assign(normalizer_.Name(pattern_id));
  s.key.Assign(key);
  std::string_view client = StripPeerPort(obs.client_name);
  s.client.Assign(sanitizer_.Key(client.substr(0, 64), KeyClass{}));
  uint64_t head = slow_head_.Load();
  slow_[head % std::max<size_t>(options_.slow_log_size, 1)].cell.Write(s);
  slow_head_.Set(head + 1);
}

void Recorder::OnEvent(analytics::SessionEvent event, uint64_t client_id) {
  switch (event) {
    case SessionEvent::kClientConnected: ev_opened_.Inc(); break;
    case SessionEvent::kClientClosed:
      ev_closed_.Inc();
      if (runs_ && runs_[client_id % kRunSlots].client_id == client_id) {
        runs_[client_id % kRunSlots].client_id = 0;
      }
      break;
    case SessionEvent::kUpstreamConnectFailed: ev_connect_errors_.Inc(); break;
    case SessionEvent::kObservationLost: ev_lost_.Inc(); break;
    case SessionEvent::kClientProtocolError: ev_client_proto_.Inc(); break;
    case SessionEvent::kUpstreamProtocolError: ev_upstream_proto_.Inc(); break;
    case SessionEvent::kClientRejectedMaxClients: ev_rejected_.Inc(); break;
    case SessionEvent::kBackpressureStall: ev_stalls_.Inc(); break;
    case SessionEvent::kAcceptFdExhausted: ev_accept_fd_.Inc(); break;
  }
}

void Recorder::OnBytes(uint64_t client_in, uint64_t client_out) {
  bytes_in_.Add(client_in);
  bytes_out_.Add(client_out);
}

void Recorder::Tick() { hot_keys_.Publish(); }

}  // namespace respscope::recorder
