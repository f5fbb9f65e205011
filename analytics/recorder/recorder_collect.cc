// The reader side of the Recorder: copies one shard's published state into a StatsView.
// See recorder.h for the memory-ordering contract.
#include <algorithm>

#include "analytics/recorder/recorder.h"
#include "analytics/recorder/recorder_slots.h"

namespace respscope::recorder {
namespace {

void AddHistogram(const AtomicHistogram& src, Histogram& dst, Histogram& scratch) {
  src.ReadInto(scratch);
  dst.Merge(scratch);
}

}  // namespace

void Recorder::CollectInto(StatsView& view) const {
  Histogram scratch;
  ++view.shards;

  uint32_t n = n_commands_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i) {
    const CommandSlot* c = commands_[i].load(std::memory_order_acquire);
    uint64_t ok = c->ok.Load(), err = c->error.Load();
    const AtomicHistogram* blocking = c->blocking.load(std::memory_order_acquire);
    if (ok + err == 0 && blocking == nullptr) continue;
    CommandView& v = view.commands[c->name];
    v.ok += ok;
    v.error += err;
    AddHistogram(c->latency, v.latency, scratch);
    if (blocking != nullptr) AddHistogram(*blocking, v.blocking, scratch);
  }

  n = n_patterns_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i) {
    const PatternSlot* p = patterns_[i].load(std::memory_order_acquire);
    if (p == nullptr) continue;
    PatternView& v = view.patterns[p->name];
    v.read += p->read.Load();
    v.write += p->write.Load();
    v.other += p->other.Load();
    v.hits += p->hits.Load();
    v.misses += p->misses.Load();
    v.bytes_in += p->bytes_in.Load();
    v.bytes_out += p->bytes_out.Load();
    AddHistogram(p->latency, v.latency, scratch);
    v.no_ttl_writes += p->no_ttl_writes.Load();
    v.ttl_sets += p->ttl_sets.Load();
    v.ttl_clears += p->ttl_clears.Load();
    v.deletes += p->deletes.Load();
    if (const DistinctSketch* sketch = p->no_ttl_keys.load(std::memory_order_acquire)) {
      DistinctSketch::Registers regs{};
      if (v.no_ttl_registers.size() == regs.size()) {
        std::copy(v.no_ttl_registers.begin(), v.no_ttl_registers.end(), regs.begin());
      }
      sketch->MaxInto(regs);
      v.no_ttl_registers.assign(regs.begin(), regs.end());
    }
    v.runs += p->runs.Load();
    v.run_reads += p->run_reads.Load();
    v.run_gap_ns += p->run_gap_ns.Load();
    if (RunOffender o; v.run_client.empty() && p->run_offender.TryRead(o)) {
      v.run_client.assign(o.client.view());
      v.run_command.assign(o.command.view());
    }
    for (const auto& cell : p->big) {
      BigEntry e;
      if (!cell.TryRead(e)) continue;
      auto same = std::find_if(v.big_values.begin(), v.big_values.end(),
                               [&](const BigValue& b) { return b.key == e.key.view(); });
      if (same != v.big_values.end()) {
        if (same->bytes >= e.bytes) continue;
        v.big_values.erase(same);
      }
      v.big_values.push_back(
          {std::string(e.key.view()), std::string(e.command.view()), e.bytes, e.wall_ms});
    }
    std::sort(v.big_values.begin(), v.big_values.end(),
              [](const BigValue& a, const BigValue& b) { return a.bytes > b.bytes; });
    if (v.big_values.size() > kBigValuesPerPattern) v.big_values.resize(kBigValuesPerPattern);
  }

  // Hot keys: the shards' summaries merge by summing counts; a key missing from a full shard
  // may have had about that shard's minimum there, which is added to its error when the
  // engine finalises (error += hot_key_min_total - present_min), keeping count - error a
  // lower bound.
  std::vector<SpaceSaving::Item> items;
  uint64_t min_count = 0;
  hot_keys_.ReadInto(items, min_count);
  for (auto& item : items) {
    const PatternSlot* p = item.tag < n ? patterns_[item.tag].load(std::memory_order_acquire)
                                        : nullptr;
    HotKeyView& v = view.hot_keys[item.key];
    if (v.pattern.empty() && p != nullptr) v.pattern = p->name;
    v.count += item.count;
    v.error += item.error;
    v.present_min += min_count;
  }
  view.hot_key_min_total += min_count;

  uint64_t head = slow_head_.Load();
  size_t cap = std::max<size_t>(options_.slow_log_size, 1);
  for (uint64_t i = head > cap ? head - cap : 0; i < head; ++i) {
    SlowPayload s;
    if (!slow_[i % cap].cell.TryRead(s)) continue;
    view.slow_log.push_back({s.wall_ms, s.duration_ns, std::string(s.command.view()),
                             std::string(s.pattern.view()), std::string(s.key.view()),
                             std::string(s.client.view())});
  }

  for (size_t i = 0; i < kErrorPrefixCount; ++i) {
    uint64_t count = errors_[i].count.Load();
    if (count == 0) continue;
    ErrorView& v = view.errors[std::string(ErrorPrefixName(i))];
    v.count += count;
    ErrorSample s;
    if (errors_[i].last.TryRead(s) && s.wall_ms >= v.last_wall_ms) {
      v.last_wall_ms = s.wall_ms;
      v.last_text.assign(s.text.view());
      v.last_command.assign(s.command.view());
    }
  }

  n = n_clients_.load(std::memory_order_acquire);
  for (uint32_t i = 0; i < n; ++i) {
    const ClientSlot* c = clients_[i].load(std::memory_order_acquire);
    uint64_t commands = c->commands.Load();
    if (commands == 0) continue;
    ClientView& v = view.clients[c->name];
    v.commands += commands;
    v.errors += c->errors.Load();
    v.shared += c->shared.Load();
    v.pinned += c->pinned.Load();
    if (const char* reason = c->pin_reason.load(std::memory_order_relaxed)) v.pin_reason = reason;
  }

  EventTotals& e = view.events;
  e.connections_opened += ev_opened_.Load();
  e.connections_closed += ev_closed_.Load();
  e.rejected_max_clients += ev_rejected_.Load();
  e.upstream_connect_errors += ev_connect_errors_.Load();
  e.observation_lost += ev_lost_.Load();
  e.client_protocol_errors += ev_client_proto_.Load();
  e.upstream_protocol_errors += ev_upstream_proto_.Load();
  e.backpressure_stalls += ev_stalls_.Load();
  e.accept_fd_exhausted += ev_accept_fd_.Load();
  e.bytes_client_in += bytes_in_.Load();
  e.bytes_client_out += bytes_out_.Load();
}

}  // namespace respscope::recorder
