// Server: the listener and the IO threads of the data plane.
//
// `threads` IO threads, each with its own io_context, its own scratch buffer, its own Poller
// (the epoll set of its connections' sockets, see poller.h), its own ObservationSink and the
// list of its connections. The listeners (listener.h: TCP addresses, Unix socket files) accept
// on thread 0 and hand each accepted socket to the next thread round robin; a connection stays
// on its thread for life.
//
// Thread: Start()/BeginDrain()/Stop() are called from the main thread; everything else runs on
// the IO threads.
#pragma once

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "analytics/observation.h"
#include "common/descriptors.h"
#include "common/tls.h"
#include "proxy/commands/command_table.h"
#include "proxy/net/connection.h"
#include "proxy/net/listener.h"
#include "proxy/net/pool.h"
#include "proxy/net/poller.h"
#include "proxy/session/session_core.h"

namespace respscope::net {

struct ServerOptions {
  // Where clients connect: one or more TCP addresses and Unix socket files.
  std::vector<ListenSpec> listen{ListenSpec{}};
  // The first upstream address; Server::SetUpstream replaces it at run time (a name that
  // resolves at last, Sentinel). Connections read Server::upstream(), never this.
  UpstreamAddress upstream;
  // rediss://: every upstream connection (dedicated, shared, spare) handshakes with it; null
  // for a plain upstream.
  std::shared_ptr<common::UpstreamTls> tls;
  // upstream_pooling: auto. Off: every client gets its own upstream connection (dedicated).
  bool pooling = false;
  PoolOptions pool;
  // Dedicated mode: bytes read from one side and not yet written to the other, per direction
  // (limits.max_inflight_bytes_per_client); one read is at most this much.
  size_t max_inflight = 8 << 20;
  int threads = 2;
  // Beyond it a new client gets Redis's "-ERR max number of clients reached" and is closed.
  // The app lowers it to what the descriptor limit allows (common::PlanDescriptors).
  size_t max_clients = 10000;
  std::chrono::milliseconds connect_timeout{2000};
  // Draining (limits.drain_idle_timeout): a connection idle this long is closed.
  std::chrono::milliseconds drain_idle{2000};
  session::SessionOptions session;
};

class Server;

// Per IO thread state. Only touched on its own thread (the atomics excepted).
class ThreadContext {
 public:
  ThreadContext(Server* server, analytics::ObservationSink* sink) : server_(server), sink_(sink) {}

  boost::asio::io_context& io() { return io_; }
  analytics::ObservationSink* sink() { return sink_; }
  Server* server() { return server_; }
  char* scratch() { return scratch_.get(); }
  static constexpr size_t kScratch = 64 * 1024;

  // The shared upstream connections and spares of this thread; null in dedicated mode.
  UpstreamPool* pool() { return pool_.get(); }
  PoolStats* pool_stats() { return &pool_stats_; }
  // How much one read of a dedicated connection may take (scratch size, or less by the limit).
  size_t read_size() const { return read_size_; }

  // The generation of the last upstream address this thread has applied (see
  // OnUpstreamChanged): a connection made with an older one is to a former master.
  uint64_t upstream_generation() const { return upstream_generation_; }
  // Posted by Server::SetUpstream: drops the pool's connections to older addresses and closes
  // the clients bound to them.
  void OnUpstreamChanged(uint64_t generation);

  void Add(const std::shared_ptr<Connection>& c) { connections_[c->id()] = c; }
  void Remove(uint64_t id) { connections_.erase(id); }
  // SIGTERM's first phase: every tick, each connection idle for drain_idle is closed.
  void BeginDrain();
  // The last phase: every connection stops reading its client.
  void DrainAll();
  void CloseAll();
  // Start(): the poller of the data-plane sockets, and sink()->Tick() every
  // analytics::kSinkTickIntervalMs. Stop(): both end (the sink ticks once more).
  void Start();
  void Stop();
  Poller& poller() { return poller_; }

 private:
  void ArmTick();

  Server* server_;
  analytics::ObservationSink* sink_;
  boost::asio::io_context io_{1};
  boost::asio::steady_timer tick_{io_};
  bool ticking_ = false;
  bool sweeping_ = false;  // BeginDrain() was called
  Poller poller_{io_};
  std::unique_ptr<char[]> scratch_{new char[kScratch]};
  size_t read_size_ = kScratch;
  uint64_t upstream_generation_ = 0;
  PoolStats pool_stats_;
  std::shared_ptr<UpstreamPool> pool_;
  std::vector<std::shared_ptr<Connection>> Live() const;
  std::unordered_map<uint64_t, std::weak_ptr<Connection>> connections_;
};

class Server {
 public:
  // sinks: one per IO thread (options.threads of them), owned by the caller, outliving Server.
  Server(ServerOptions options, std::shared_ptr<const commands::CommandTable> table,
         std::vector<analytics::ObservationSink*> sinks);
  ~Server();

  // Binds every listener and starts the IO threads. Throws std::runtime_error naming the
  // address when one cannot be bound (taken, a live Unix socket, ...); nothing is left bound.
  void Start();
  // Stops accepting; the connections keep being served, each closed once it is idle
  // (ServerOptions::drain_idle; at once when that is 0, as FinishDrain). Returns at once; poll
  // active_connections().
  void BeginDrain();
  // Connections stop reading their clients and close once their replies are delivered.
  void FinishDrain();
  // Closes everything and joins the threads.
  void Stop();

  // The port of the first TCP listener (the real one when 0 was asked), 0 when none.
  uint16_t bound_port() const { return bound_port_; }
  // "127.0.0.1:6380, unix:///run/respscope.sock", with bound ports (for the start-up line).
  std::string ListenText() const;
  size_t active_connections() const { return active_.load(std::memory_order_relaxed); }
  bool upstream_up() const { return upstream_up_.load(std::memory_order_relaxed); }

  // Used by connections.
  const ServerOptions& options() const { return options_; }
  const std::shared_ptr<const commands::CommandTable>& table() const { return table_; }
  // Reachability as the data plane and the side channel see it (/readyz). Never up while no
  // address is known. Down also calls the connect-failure hook.
  void SetUpstreamUp(bool up);

  // Where upstream connections go now. Any thread; each connect takes one snapshot.
  std::shared_ptr<const UpstreamAddress> upstream() const { return upstream_.load(); }
  // Moves the data plane to `address` (numbered here), or marks it unknown when
  // address.unavailable is set. Any thread, returns at once; each IO thread then closes the
  // clients bound to the old address and reconnects its shared connections and spares.
  void SetUpstream(UpstreamAddress address);
  // Called when a connection to the upstream fails (Sentinel checks the master again). Set
  // before Start(); runs on IO threads and must not block.
  void SetConnectFailureHook(std::function<void()> hook) { on_connect_failure_ = std::move(hook); }
  // The pool's counters of every IO thread (empty in dedicated mode): for the metrics.
  std::vector<const PoolStats*> pool_stats() const;
  void OnClosed() { active_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  void Accept(Listener* listener);
  // accept() failed: out of descriptors -> shed the pending connections with the spare
  // descriptor, count, log (rate limited) and back off; other errors that would repeat at
  // once -> log and back off; a connection aborted before accept -> go on.
  void OnAcceptError(Listener* listener, const boost::system::error_code& ec);
  void CloseListeners();

  ServerOptions options_;
  std::shared_ptr<const commands::CommandTable> table_;
  std::vector<std::unique_ptr<ThreadContext>> threads_;
  std::vector<std::thread> workers_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  // Created by Start() on the main thread; then used on thread 0 only.
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::string listen_text_;
  // Accept loop state, thread 0 only.
  common::SpareDescriptor spare_;
  common::LogThrottle accept_log_{std::chrono::seconds(10)};
  size_t next_thread_ = 0;
  uint64_t next_id_ = 1;
  uint16_t bound_port_ = 0;
  std::atomic<size_t> active_{0};
  std::atomic<bool> upstream_up_{true};
  std::atomic<std::shared_ptr<const UpstreamAddress>> upstream_;
  std::atomic<uint64_t> upstream_generation_{1};
  std::function<void()> on_connect_failure_;
  std::atomic<bool> draining_{false};
};

// Monotonic nanoseconds, the clock of Observation::start_ns/end_ns.
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace respscope::net
