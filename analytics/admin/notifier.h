// Notifier: sends alert transitions (firing, resolved) to the configured notification channels
// (generic JSON webhook with an optional HMAC-SHA256 signature, or a Slack-compatible incoming
// webhook), each channel on its own thread with its own io_context, so that a slow or dead
// receiver never blocks the data plane, the engine or another channel.
//
//   engine thread --Enqueue(events)--> per-channel bounded queue --> channel thread:
//       POST, on failure retry up to max_attempts with backoff, backoff*2, ... (bounded);
//       every outcome counted (Stats) and failures logged.
//
// Payloads carry only what the alert already shows on /api/v1/overview (names, severity,
// metric, selector, numbers, and for insight alerts the finding's already-sanitised subject):
// no key, value or secret is ever added here. The HMAC key is read from the environment by the
// caller and never logged or sent.
//
// The body builders and the signature are pure functions (unit-tested without sockets).
// Thread: Enqueue() and stats() from any thread (a small mutex per channel, never held while
// sending). Stop() (and the destructor) drop what is queued and join the threads; an attempt in
// flight ends within its timeout.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "analytics/engine/health.h"

namespace respscope::admin {

enum class ChannelKind : uint8_t { kWebhook, kSlack };

struct ChannelOptions {
  std::string name;
  ChannelKind kind = ChannelKind::kWebhook;
  std::string url;          // http:// or https://
  int min_severity = 1;     // engine::SeverityRank: 0 info .. 3 critical
  std::string hmac_secret;  // webhook: when set, X-Respscope-Signature: sha256=<hex>
  std::chrono::milliseconds timeout{5000};  // whole attempt: resolve, connect, send, reply
  uint32_t max_attempts = 4;
  std::chrono::milliseconds backoff{1000};  // before the 2nd attempt; doubles after that
  size_t max_queue = 1000;                  // beyond it new notifications are dropped (counted)
};

struct ChannelStats {
  uint64_t sent = 0;     // delivered (2xx)
  uint64_t failed = 0;   // given up after max_attempts
  uint64_t retries = 0;  // attempts after the first
  uint64_t dropped = 0;  // queue full
};

// JSON body of the generic webhook: {"source":"respscope","status":"firing"|"resolved",
// "alert","severity","metric","selector","value","threshold","since_ms","time_ms"}.
std::string WebhookBody(const engine::AlertEvent& e);
// {"text": "..."} for Slack-compatible incoming webhooks.
std::string SlackBody(const engine::AlertEvent& e);
// Lowercase hex HMAC-SHA256 of body under key.
std::string HmacSha256Hex(std::string_view key, std::string_view body);

class Notifier {
 public:
  explicit Notifier(std::vector<ChannelOptions> channels);
  ~Notifier();  // Stop()

  // Queues each event on every channel whose min_severity the event's severity reaches.
  // Never blocks on the network.
  void Enqueue(const std::vector<engine::AlertEvent>& events);
  void Stop();
  std::vector<std::pair<std::string, ChannelStats>> stats() const;

 private:
  struct Channel;
  std::vector<std::unique_ptr<Channel>> channels_;
};

}  // namespace respscope::admin
