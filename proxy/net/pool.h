// Shared upstream connections (upstream_pooling: auto), per IO thread.
//
// Why: at pipeline depth 1 every command through a dedicated pair costs two recv and two send
// in respscope and a read and a write in Redis, per client. A shared connection carries many
// clients' commands in one write, and Redis reads them in one call and answers in one write:
//
//   client A --recv--+                                     +--send--> client A
//   client B --recv--+--> out_ --one send--> Redis --one recv--> router --+--send--> client B
//   client C --recv--+   (flushed once per wake-up)        (cut at reply  +--send--> client C
//                                                           boundaries)
//
// A client shares while its connection state is the default one (RESP2, database 0, the
// URL's credentials). The first command that needs state pins it (Connection::BeginPin): it
// waits until every reply it is owed here has been delivered, then takes a warm spare from
// the pool (no connect on the way) and carries on exactly as a dedicated connection.
//
// Thread: everything runs on the owning IO thread.
#pragma once

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/net/poller.h"
#include "proxy/net/reply_router.h"
#include "proxy/net/upstream_io.h"

namespace respscope::net {

class Connection;
class ThreadContext;
struct UpstreamAddress;

// Why a client left the shared connections: the `reason` label of respscope_upstream_pins_total.
enum class PinReason : uint8_t {
  kTransaction,   // MULTI, WATCH
  kBlocking,      // BLPOP, XREAD BLOCK, WAIT, ...
  kPubSub,        // the SUBSCRIBE family
  kMonitor,
  kHello,         // HELLO (protocol, name or credentials)
  kAuth,          // AUTH with other credentials, or a command before AUTH when the URL has some
  kSelect,        // SELECT of another database
  kClient,        // CLIENT subcommands (name, id, tracking, reply mode, ...)
  kReset,
  kInline,        // an inline command (no framing to share)
  kUnknown,       // a command the table does not know
  kLargeRequest,  // a request over pool.max_shared_request
  kOther,         // READONLY, ASKING, SYNC, SCRIPT DEBUG, ...
  kCount,
};
const char* PinReasonName(PinReason r);

struct PoolOptions {
  uint32_t shared_connections = 1;        // per IO thread
  uint32_t spare_connections = 2;         // per IO thread
  uint64_t max_shared_request = 1 << 20;  // bytes; a larger request pins its client
  uint64_t max_client_buffer = 8 << 20;   // replies buffered for a client that does not read
  // The URL's credentials: the shared connections authenticate with them, and a client that
  // says AUTH with exactly these shares. Empty password: no AUTH.
  std::string username;
  std::string password;
};

// Counters of the pool, written by one IO thread (relaxed load + store, no read-modify-write),
// read by the metrics from any thread.
class PoolCounter {
 public:
  void Add(int64_t d) {
    v_.store(v_.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  int64_t Load() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

struct PoolStats {
  // Bounds of the commands-per-shared-write histogram (upper bounds, inclusive; last: +Inf).
  static constexpr int kWriteBuckets[] = {1, 2, 4, 8, 16, 32, 64, 128};
  static constexpr size_t kBuckets = std::size(kWriteBuckets) + 1;

  PoolCounter shared;   // shared upstream connections open
  PoolCounter spare;    // warm spares open
  PoolCounter pinned;   // clients on their own connection after a pin
  PoolCounter pins[static_cast<size_t>(PinReason::kCount)];
  PoolCounter write_buckets[kBuckets];  // non-cumulative
  PoolCounter write_count;
  PoolCounter write_commands;
  PoolCounter shared_drops;        // shared connections lost with commands in flight
  PoolCounter slow_client_closes;  // clients closed at max_client_buffer
  PoolCounter spare_misses;        // pins that had to wait for a connect

  void RecordWrite(uint32_t commands);
};

// Why an upstream connection could not be made.
struct UpstreamError {
  std::string why;   // "Connection refused", "connect timeout", "unknown_ca: certificate ..."
  bool tls = false;  // the TLS handshake failed (counted and logged by common::UpstreamTls)
};
// The error reply a client gets when its upstream cannot be reached (then it is closed):
// "-ERR respscope: upstream redis://h:p unreachable (why)" or, for a failed handshake,
// "-ERR upstream TLS handshake failed: unknown_ca: ... (respscope, upstream rediss://h:p)".
std::string UpstreamErrorReply(const UpstreamAddress& upstream, const UpstreamError& error);

// Connects to the upstream (TCP or Unix socket) without blocking the thread, and with a rediss:// upstream runs the
// TLS handshake before handing it over, all within limits.connect_timeout: `done(io, error)`
// gets a connected, non-blocking UpstreamIo (the caller owns it), or an invalid one and why.
// A failure is also counted on the thread's sink (SessionEvent::kUpstreamConnectFailed).
void ConnectUpstream(ThreadContext* thread,
                     std::function<void(UpstreamIo io, UpstreamError error)> done);

class UpstreamPool;

// One shared upstream connection.
class SharedUpstream : public Pollable, public std::enable_shared_from_this<SharedUpstream> {
 public:
  // Bytes queued for the upstream beyond which clients stop being read until it drains.
  static constexpr size_t kCongested = 1 << 20;

  SharedUpstream(ThreadContext* thread, UpstreamPool* pool);
  ~SharedUpstream() override;

  void Start();
  void Close();
  // Queues complete commands of `client`, each owed one reply; written once per wake-up.
  // merge: these replies follow the client's previous ones on this connection with nothing of
  // its own in between (they may be delivered in one piece).
  void Send(const std::shared_ptr<Connection>& client, std::string_view bytes, uint32_t commands,
            bool merge);
  bool congested() const { return out_.size() - out_sent_ > kCongested; }
  // `client` is read again once the queued bytes are written.
  void AddWaiter(const std::shared_ptr<Connection>& client);
  // The upstream moved: a connection to an older address is dropped (its clients with replies
  // owed are closed) and made again to the new one.
  void OnUpstreamChanged(uint64_t generation);


  void OnPoll(uint32_t events, uint32_t tag) override;

 private:
  void PrepareHandshake();
  void Connect();
  void OnConnected(UpstreamIo io, const UpstreamError& error);
  void ScheduleFlush();
  void Flush();
  void OnReadable();
  // Drops the connection: every client owed a reply is closed (connected: as if its own
  // connection had dropped; never connected: with an error reply); reconnects after a pause.
  void Fail(const UpstreamError& error, bool connect_failed);

  ThreadContext* thread_;
  UpstreamPool* pool_;
  UpstreamIo io_;
  uint64_t token_ = 0;
  bool connecting_ = false;
  bool readable_ = false;
  bool writable_ = false;
  bool flush_scheduled_ = false;
  bool closed_ = false;
  std::string out_;
  size_t out_sent_ = 0;
  uint32_t out_commands_ = 0;  // commands in out_ not yet handed to the kernel
  ReplyRouter<std::shared_ptr<Connection>> router_;
  std::vector<std::weak_ptr<Connection>> waiters_;
  std::chrono::milliseconds backoff_{0};
  uint64_t gen_ = 0;  // the upstream address generation of the last connect
  boost::asio::steady_timer retry_;
};

// The shared connections and warm spares of one IO thread.
class UpstreamPool : public Pollable, public std::enable_shared_from_this<UpstreamPool> {
 public:
  UpstreamPool(ThreadContext* thread, PoolOptions options, PoolStats* stats);
  ~UpstreamPool() override;

  void Start();
  void Stop();

  // The shared connection a new client is bound to for as long as it shares (round robin).
  SharedUpstream* Assign();
  // Gives `client` a connected descriptor of its own (Connection::OnPrivateUpstream), now
  // when a spare is warm, else as soon as one connects.
  void RequestPrivate(const std::shared_ptr<Connection>& client);
  // The upstream moved: shared connections and spares to older addresses are replaced.
  void OnUpstreamChanged(uint64_t generation);

  const PoolOptions& options() const { return options_; }
  PoolStats* stats() { return stats_; }
  bool has_credentials() const { return !options_.password.empty(); }
  // AUTH with the URL's credentials, RESP encoded (empty without credentials).
  const std::string& auth_command() const { return auth_command_; }
  // True when a client's AUTH arguments (args[1..]) are exactly the URL's credentials.
  bool MatchesCredentials(std::string_view user, std::string_view password) const;

  void OnPoll(uint32_t events, uint32_t tag) override;

 private:
  struct Spare {
    UpstreamIo io;
    uint64_t token = 0;
    uint32_t tag = 0;
    uint64_t gen = 0;  // the upstream address generation it was connected with
  };
  void FillSpares();
  void ConnectSpare();
  void OnSpareConnected(UpstreamIo io, const UpstreamError& error, uint64_t gen);
  void HandTo(const std::shared_ptr<Connection>& client, UpstreamIo io);

  ThreadContext* thread_;
  PoolOptions options_;
  PoolStats* stats_;
  std::string auth_command_;
  std::vector<std::shared_ptr<SharedUpstream>> shared_;
  size_t next_shared_ = 0;
  std::vector<Spare> spares_;
  uint32_t next_tag_ = 1;
  uint32_t connecting_ = 0;
  std::deque<std::weak_ptr<Connection>> waiting_;
  bool stopped_ = false;
  boost::asio::steady_timer retry_;
};

}  // namespace respscope::net
