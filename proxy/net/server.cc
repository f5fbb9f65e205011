#include "proxy/net/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>

namespace respscope::net {

namespace asio = boost::asio;
using boost::system::error_code;

// A copy: Close() removes entries while the caller iterates.
std::vector<std::shared_ptr<Connection>> ThreadContext::Live() const {
  std::vector<std::shared_ptr<Connection>> live;
  for (auto& [id, weak] : connections_) {
    if (auto c = weak.lock()) live.push_back(std::move(c));
  }
  return live;
}

void ThreadContext::DrainAll() {
  for (auto& c : Live()) c->BeginDrain();
}

void ThreadContext::BeginDrain() { sweeping_ = true; }

void ThreadContext::CloseAll() {
  for (auto& c : Live()) c->Close();
}

void ThreadContext::OnUpstreamChanged(uint64_t generation) {
  if (generation <= upstream_generation_) return;
  upstream_generation_ = generation;
  if (pool_) pool_->OnUpstreamChanged(generation);
  for (auto& c : Live()) c->OnUpstreamChanged(generation);
}

void ThreadContext::Start() {
  ticking_ = true;
  ArmTick();
  poller_.Start();
  const ServerOptions& opts = server_->options();
  read_size_ = std::clamp<size_t>(opts.max_inflight, 1, kScratch);
  if (opts.pooling) {
    pool_ = std::make_shared<UpstreamPool>(this, opts.pool, &pool_stats_);
    pool_->Start();
  }
}

void ThreadContext::ArmTick() {
  tick_.expires_after(std::chrono::milliseconds(analytics::kSinkTickIntervalMs));
  tick_.async_wait([this](const error_code& ec) {
    if (ec || !ticking_) return;
    sink_->Tick();
    if (sweeping_) {
      const int64_t quiet = std::chrono::nanoseconds(server_->options().drain_idle).count();
      const int64_t now = NowNs();
      for (auto& c : Live()) c->DrainSweep(now, quiet);
    }
    ArmTick();
  });
}

void ThreadContext::Stop() {
  if (!ticking_) return;
  ticking_ = false;
  tick_.cancel();
  if (pool_) pool_->Stop();
  poller_.Stop();
  sink_->Tick();  // what the last commands left unpublished
}

Server::Server(ServerOptions options, std::shared_ptr<const commands::CommandTable> table,
               std::vector<analytics::ObservationSink*> sinks)
    : options_(std::move(options)), table_(std::move(table)) {
  if (options_.threads < 1) options_.threads = 1;
  options_.upstream.generation = 1;
  upstream_.store(std::make_shared<const UpstreamAddress>(options_.upstream));
  if (!options_.upstream.unavailable.empty()) upstream_up_.store(false);
  if (sinks.size() != static_cast<size_t>(options_.threads)) {
    throw std::invalid_argument("one observation sink per IO thread is required");
  }
  for (int i = 0; i < options_.threads; ++i) {
    threads_.push_back(std::make_unique<ThreadContext>(this, sinks[i]));
    threads_.back()->OnUpstreamChanged(1);
    // Two sockets per client; clients spread round robin over the threads.
    threads_.back()->poller().Reserve(2 * (options_.max_clients / options_.threads + 1));
  }
}

Server::~Server() { Stop(); }

void Server::SetUpstreamUp(bool up) {
  if (up && !upstream()->unavailable.empty()) return;  // a late answer from a former master
  upstream_up_.store(up, std::memory_order_relaxed);
  if (!up && on_connect_failure_) on_connect_failure_();
}

void Server::SetUpstream(UpstreamAddress address) {
  address.generation = upstream_generation_.fetch_add(1) + 1;
  const uint64_t generation = address.generation;
  const bool known = address.unavailable.empty();
  upstream_.store(std::make_shared<const UpstreamAddress>(std::move(address)));
  upstream_up_.store(known, std::memory_order_relaxed);
  // Before Start() the posts wait for the threads to run; after Stop() nothing runs them.
  for (auto& t : threads_) {
    asio::post(t->io(), [ctx = t.get(), generation] { ctx->OnUpstreamChanged(generation); });
  }
}

std::vector<const PoolStats*> Server::pool_stats() const {
  std::vector<const PoolStats*> out;
  if (!options_.pooling) return out;
  for (const auto& t : threads_) out.push_back(t->pool_stats());
  return out;
}

void Server::Start() {
  asio::io_context& io0 = threads_[0]->io();
  for (const ListenSpec& spec : options_.listen) {
    // On a failure the listeners made so far close (socket files removed) with the Server.
    listeners_.push_back(std::make_unique<Listener>(io0, spec));
    Listener& l = *listeners_.back();
    if (!l.unix_socket() && bound_port_ == 0) bound_port_ = l.port();
    listen_text_ += (listen_text_.empty() ? "" : ", ") + l.ToString();
  }
  if (listeners_.empty()) throw std::invalid_argument("no listen address");
  for (auto& t : threads_) guards_.push_back(asio::make_work_guard(t->io()));
  for (auto& t : threads_) asio::post(t->io(), [ctx = t.get()] { ctx->Start(); });
  for (auto& t : threads_) {
    workers_.emplace_back([ctx = t.get()] { ctx->io().run(); });
  }
  for (auto& l : listeners_) asio::post(io0, [this, l = l.get()] { Accept(l); });
}

std::string Server::ListenText() const { return listen_text_; }

void Server::Accept(Listener* listener) {
  if (draining_.load()) return;
  ThreadContext* target = threads_[next_thread_].get();
  next_thread_ = (next_thread_ + 1) % threads_.size();
  listener->acceptor().async_accept(target->io(), [this, target, listener](
                                                      const error_code& ec,
                                                      Listener::Socket socket) {
    if (ec == asio::error::operation_aborted || draining_.load()) return;
    if (!ec) {
      uint64_t id = next_id_++;
      if (active_.load(std::memory_order_relaxed) >= options_.max_clients) {
        // Same words as Redis's own limit, then close.
        auto msg = std::make_shared<std::string>("-ERR max number of clients reached\r\n");
        auto sock = std::make_shared<Listener::Socket>(std::move(socket));
        asio::post(target->io(), [target, sock, msg, id] {
          target->sink()->OnEvent(analytics::SessionEvent::kClientRejectedMaxClients, id);
          asio::async_write(*sock, asio::buffer(*msg), [sock, msg](const error_code&, size_t) {
            error_code ignored;
            sock->close(ignored);
          });
        });
      } else {
        active_.fetch_add(1, std::memory_order_relaxed);
        auto sock = std::make_shared<Listener::Socket>(std::move(socket));
        const ClientKind kind = listener->unix_socket() ? ClientKind::kUnix : ClientKind::kTcp;
        asio::post(target->io(), [target, sock, id, kind] {
          auto c = std::make_shared<Connection>(target, std::move(*sock), id, kind);
          target->Add(c);
          c->Start();
        });
      }
    } else {
      return OnAcceptError(listener, ec);
    }
    Accept(listener);
  });
}

namespace {
// How long the accept loop pauses after an error that would repeat at once.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// Pending connections closed per out-of-descriptors event (bounded work per wake-up).
constexpr size_t kShedPerEvent = 256;
}  // namespace

void Server::OnAcceptError(Listener* listener, const error_code& ec) {
  if (ec == asio::error::connection_aborted) return Accept(listener);  // the client gave up
  std::string what;
  if (ec.category() == boost::system::system_category() && common::IsOutOfDescriptors(ec.value())) {
    threads_[0]->sink()->OnEvent(analytics::SessionEvent::kAcceptFdExhausted, 0);
    size_t shed = spare_.Shed(listener->acceptor().native_handle(), kShedPerEvent);
    what = "out of file descriptors (" + ec.message() + "): closed " + std::to_string(shed) +
           " pending connection(s) unserved; " + std::to_string(active_.load()) +
           " clients open, limits.max_clients " + std::to_string(options_.max_clients);
  } else {
    what = ec.message();
  }
  if (auto suppressed = accept_log_.Allow()) {
    spdlog::warn(
        "client listener: accept failed: {}; pausing accepts on {} for {} ms ({} similar "
        "lines suppressed)",
        what, listener->ToString(), kAcceptBackoff.count(), *suppressed);
  }
  listener->backoff().expires_after(kAcceptBackoff);
  listener->backoff().async_wait([this, listener](const error_code& wait_ec) {
    if (wait_ec != asio::error::operation_aborted) Accept(listener);
  });
}

// Thread 0. Unix socket files go with their listeners: a client that finds no file knows at
// once that nobody will answer.
void Server::CloseListeners() {
  for (auto& l : listeners_) l->Close();
}

void Server::BeginDrain() {
  if (draining_.exchange(true)) return;
  if (!listeners_.empty()) asio::post(threads_[0]->io(), [this] { CloseListeners(); });
  if (options_.drain_idle.count() == 0) {
    FinishDrain();
    return;
  }
  for (auto& t : threads_) {
    asio::post(t->io(), [ctx = t.get()] { ctx->BeginDrain(); });
  }
}

void Server::FinishDrain() {
  for (auto& t : threads_) {
    asio::post(t->io(), [ctx = t.get()] { ctx->DrainAll(); });
  }
}

void Server::Stop() {
  if (workers_.empty()) return;
  draining_.store(true);
  for (auto& t : threads_) {
    asio::post(t->io(), [ctx = t.get(), this] {
      ctx->CloseAll();
      ctx->Stop();
      if (ctx == threads_[0].get()) CloseListeners();
    });
  }
  guards_.clear();
  for (auto& t : threads_) {
    // Give the posted closes a moment to run, then stop whatever remains.
    asio::post(t->io(), [ctx = t.get()] { ctx->io().stop(); });
  }
  for (auto& w : workers_) w.join();
  workers_.clear();
  CloseListeners();  // the threads are joined: safe here, in case the posted close did not run
}

}  // namespace respscope::net
