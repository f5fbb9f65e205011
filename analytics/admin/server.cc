#include "analytics/admin/server.h"

#include <openssl/crypto.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>
#include <charconv>
#include <list>
#include <optional>

#include "analytics/admin/api.h"
#include "analytics/admin/export.h"
#include "common/descriptors.h"

namespace respscope::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string UrlDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] == '%' && i + 2 < in.size()) {
      int v = 0;
      auto r = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
      if (r.ec == std::errc() && r.ptr == in.data() + i + 3) {
        out.push_back(static_cast<char>(v));
        i += 2;
      } else {
        out.push_back('%');
      }
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

HttpRequest Parse(std::string_view method, std::string_view target) {
  HttpRequest r;
  r.method = std::string(method);
  size_t q = target.find('?');
  r.path = UrlDecode(target.substr(0, q));
  if (q != std::string_view::npos) {
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
      size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      size_t eq = pair.find('=');
      if (!pair.empty()) {
        r.query[UrlDecode(pair.substr(0, eq))] =
            eq == std::string_view::npos ? "" : UrlDecode(pair.substr(eq + 1));
      }
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
  }
  return r;
}

HttpResponse Json(int status, std::string body) { return {status, "application/json", std::move(body)}; }

HttpResponse Error(int status, std::string_view message) {
  return Json(status, "{\"error\":\"" + std::string(message) + "\"}");
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<int64_t> ParseInt(const std::map<std::string, std::string>& q, const char* name) {
  auto it = q.find(name);
  if (it == q.end() || it->second.empty()) return std::nullopt;
  int64_t v = 0;
  auto r = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (r.ec != std::errc() || r.ptr != it->second.data() + it->second.size()) {
    throw std::invalid_argument(name);
  }
  return v;
}

class Session;

// The live sessions and the counters behind Stats(). `live` is touched on the admin thread
// only; the counters are read by Stats() from any thread.
struct Registry {
  std::list<Session*> live;  // accept order: the oldest first
  std::atomic<uint64_t> connections{0};
  std::atomic<uint64_t> rejected_idle{0};
  std::atomic<uint64_t> rejected_refused{0};
  std::atomic<uint64_t> request_timeouts{0};
  std::atomic<uint64_t> accept_fd_exhausted{0};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, AdminServer& server, const AdminOptions& options, Registry& registry)
      : stream_(std::move(socket)), server_(server), options_(options), registry_(registry) {
    self_ = registry_.live.insert(registry_.live.end(), this);
    registry_.connections.store(registry_.live.size(), std::memory_order_relaxed);
  }
  ~Session() { Unregister(); }

  void Run() {
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&Session::Read, shared_from_this()));
  }

  // Waiting for a request (or the rest of one): nothing is lost by closing it.
  bool waiting() const { return waiting_; }

  // Closes the connection now to make room for a new one (the descriptor is free on return).
  void Evict() {
    Unregister();
    evicted_ = true;
    beast::error_code ignored;
    stream_.socket().close(ignored);  // the pending read completes with operation_aborted
  }

 private:
  void Unregister() {
    if (self_ == registry_.live.end()) return;
    registry_.live.erase(self_);
    self_ = registry_.live.end();
    registry_.connections.store(registry_.live.size(), std::memory_order_relaxed);
  }

  void Read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(options_.max_body_bytes);
    waiting_ = true;
    // A connection that never sends a request costs a descriptor and a slot of
    // max_connections: it gets header_timeout; a keep-alive one (Prometheus) idle_timeout.
    stream_.expires_after(served_ == 0 ? options_.header_timeout : options_.idle_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    waiting_ = false;
    if (evicted_) return;
    if (ec == beast::error::timeout) {
      registry_.request_timeouts.fetch_add(1, std::memory_order_relaxed);
      return Close();
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec) {
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        return Send(HttpResponse{413, "application/json", "{\"error\":\"request too large\"}"},
                    11, false);
      }
      return Close();
    }
    ++served_;
    auto& req = parser_->get();
    HttpRequest request = Parse(req.method_string(), req.target());
    HttpResponse response = server_.Handle(request, req[http::field::authorization]);
    if (req.method() == http::verb::head) response.body.clear();
    Send(std::move(response), req.version(), req.keep_alive());
  }

  void Send(HttpResponse r, unsigned version, bool keep_alive) {
    res_ = {};
    res_.version(version);
    res_.result(static_cast<http::status>(r.status));
    res_.set(http::field::server, "respscope");
    res_.set(http::field::content_type, r.content_type);
    res_.set(http::field::cache_control, "no-store");
    if (r.status == 401) res_.set(http::field::www_authenticate, "Bearer");
    res_.keep_alive(keep_alive);
    res_.body() = std::move(r.body);
    res_.prepare_payload();
    stream_.expires_after(options_.timeout);
    http::async_write(stream_, res_,
                      beast::bind_front_handler(&Session::OnWrite, shared_from_this(),
                                                !keep_alive));
  }

  void OnWrite(bool close, beast::error_code ec, size_t) {
    if (ec || close) return Close();
    Read();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  AdminServer& server_;
  const AdminOptions& options_;
  Registry& registry_;
  std::list<Session*>::iterator self_;
  uint64_t served_ = 0;
  bool waiting_ = false;
  bool evicted_ = false;
};

// How long the accept loop pauses after an error that would repeat at once.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);
// Pending connections closed per out-of-descriptors event (bounded work per wake-up).
constexpr size_t kShedPerEvent = 256;

}  // namespace

struct AdminServer::Impl {
  // Declared before the io_context: sessions still pending when it is destroyed unregister.
  Registry registry;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer backoff{ioc};
  common::SpareDescriptor spare;
  common::LogThrottle cap_log{std::chrono::seconds(10)};
  common::LogThrottle accept_log{std::chrono::seconds(10)};
  std::thread thread;
  AdminServer* server = nullptr;

  void Accept() {
    acceptor.async_accept(ioc, [this](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) return OnAcceptError(ec);
      Admit(std::move(s));
      Accept();
    });
  }

  void Admit(tcp::socket s) {
    const AdminOptions& o = server->options_;
    if (registry.live.size() >= o.max_connections) {
      Session* idle = nullptr;
      for (Session* live : registry.live) {
        if (live->waiting()) {
          idle = live;
          break;
        }
      }
      const char* action;
      if (idle != nullptr) {
        idle->Evict();
        registry.rejected_idle.fetch_add(1, std::memory_order_relaxed);
        action = "closed the oldest idle one to admit a new one";
      } else {
        beast::error_code ignored;
        s.close(ignored);
        registry.rejected_refused.fetch_add(1, std::memory_order_relaxed);
        action = "none is idle, so the new one was closed";
      }
      if (auto suppressed = cap_log.Allow()) {
        spdlog::warn(
            "admin: {} connections open (admin.max_connections): {} ({} similar lines "
            "suppressed)",
            o.max_connections, action, *suppressed);
      }
      if (idle == nullptr) return;
    }
    std::make_shared<Session>(std::move(s), *server, o, registry)->Run();
  }

  void OnAcceptError(const beast::error_code& ec) {
    if (ec == asio::error::connection_aborted) return Accept();  // the client gave up
    std::string what = ec.message();
    if (ec.category() == boost::system::system_category() &&
        common::IsOutOfDescriptors(ec.value())) {
      registry.accept_fd_exhausted.fetch_add(1, std::memory_order_relaxed);
      size_t shed = spare.Shed(acceptor.native_handle(), kShedPerEvent);
      what = "out of file descriptors (" + what + "): closed " + std::to_string(shed) +
             " pending connection(s) unserved; " + std::to_string(registry.live.size()) +
             " admin connections open";
    }
    if (auto suppressed = accept_log.Allow()) {
      spdlog::warn(
          "admin: accept failed: {}; pausing accepts for {} ms ({} similar lines "
          "suppressed)",
          what, kAcceptBackoff.count(), *suppressed);
    }
    backoff.expires_after(kAcceptBackoff);
    backoff.async_wait([this](const beast::error_code& wait_ec) {
      if (!wait_ec && acceptor.is_open()) Accept();
    });
  }
};

AdminServer::AdminServer(AdminOptions options, engine::Engine& engine,
                         std::function<bool()> upstream_ready)
    : options_(std::move(options)), engine_(engine), upstream_ready_(std::move(upstream_ready)) {}

AdminServer::~AdminServer() { Stop(); }

std::error_code AdminServer::Start() {
  if (impl_) return {};
  auto impl = std::make_unique<Impl>();
  impl->server = this;
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.address, ec);
  if (ec) return ec;
  tcp::endpoint endpoint(address, options_.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return ec;
  port_ = impl->acceptor.local_endpoint().port();
  impl->Accept();
  impl->thread = std::thread([io = &impl->ioc] { io->run(); });
  impl_ = std::move(impl);
  return {};
}

void AdminServer::Stop() {
  if (!impl_) return;
  asio::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->backoff.cancel();
    impl->ioc.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_.reset();  // destroys pending sessions with the io_context
}

engine::AdminListenerStats AdminServer::Stats() const {
  engine::AdminListenerStats out;
  if (!impl_) return out;
  const Registry& r = impl_->registry;
  out.connections = r.connections.load(std::memory_order_relaxed);
  out.rejected_idle = r.rejected_idle.load(std::memory_order_relaxed);
  out.rejected_refused = r.rejected_refused.load(std::memory_order_relaxed);
  out.request_timeouts = r.request_timeouts.load(std::memory_order_relaxed);
  out.accept_fd_exhausted = r.accept_fd_exhausted.load(std::memory_order_relaxed);
  return out;
}

void AdminServer::AddRoute(std::string path_prefix, HttpHandler handler) {
  std::lock_guard lock(routes_mu_);
  routes_.emplace_back(std::move(path_prefix), std::move(handler));
}

HttpResponse AdminServer::Handle(const HttpRequest& request, std::string_view authorization) {
  if (request.method != "GET" && request.method != "HEAD") return Error(405, "method not allowed");
  const std::string& path = request.path;
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok"};
  if (path == "/readyz") {
    bool ready = upstream_ready_ ? upstream_ready_() : true;
    return {ready ? 200 : 503, "text/plain; charset=utf-8", ready ? "ready" : "upstream not ready"};
  }
  // The dashboard page holds no data (it calls the API, which is protected).
  bool open = (path == "/metrics" && !options_.protect_metrics) || path == "/" ||
              path == "/index.html";
  if (!options_.token.empty() && !open) {
    constexpr std::string_view kBearer = "Bearer ";
    bool ok = authorization.substr(0, kBearer.size()) == kBearer &&
              ConstantTimeEqual(authorization.substr(kBearer.size()), options_.token);
    if (!ok) return Error(401, "unauthorized");
  }
  try {
    return Route(request);
  } catch (const std::invalid_argument& e) {
    return Error(400, std::string("bad parameter: ") + e.what());
  } catch (const std::exception&) {
    return Error(500, "internal error");
  }
}

HttpResponse AdminServer::Route(const HttpRequest& request) {
  const std::string& path = request.path;
  if (path == "/metrics") {
    engine_.metrics().UpdateAdmin(Stats());
    return {200, "text/plain; version=0.0.4; charset=utf-8", engine_.ScrapeMetrics()};
  }
  if (path == "/" || path == "/index.html") {
    return {200, "text/html; charset=utf-8", options_.dashboard_html};
  }
  if (path == "/api/v1/history") {
    int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    int64_t to = ParseInt(request.query, "to").value_or(now_s);
    int64_t from = ParseInt(request.query, "from").value_or(to - 3600);
    int64_t step = ParseInt(request.query, "step").value_or(10);
    if (step <= 0 || step > 86400 || from > to) throw std::invalid_argument("from/to/step");
    auto points = engine_.QueryHistory(from * 1000, to * 1000, static_cast<int>(step));
    return Json(200, HistoryJson(points, static_cast<int>(step)));
  }
  if (path == "/api/v1/correlations") {
    int64_t at = ParseInt(request.query, "at").value_or(0);
    if (at < 0) throw std::invalid_argument("at");
    return Json(200, CorrelationsJson(engine_.Correlate(at)));
  }
  static const std::map<std::string, std::string (*)(const engine::Snapshot&), std::less<>> kApi = {
      {"/api/v1/overview", &OverviewJson}, {"/api/v1/commands", &CommandsJson},
      {"/api/v1/patterns", &PatternsJson}, {"/api/v1/hotkeys", &HotKeysJson},
      {"/api/v1/slowlog", &SlowLogJson},   {"/api/v1/clients", &ClientsJson},
      {"/api/v1/insights", &InsightsJson}, {"/api/v1/health", &HealthJson}};
  if (auto it = kApi.find(path); it != kApi.end()) {
    // Read-your-writes for API users: re-merge when the periodic snapshot is older than
    // 200 ms (cheap next to an HTTP round trip; never touches the data path).
    auto snapshot = engine_.Current();
    int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (snapshot->sequence == 0 || now_ms - snapshot->wall_ms > 200) snapshot = engine_.Refresh();
    return Json(200, it->second(*snapshot));
  }
  if (path == "/api/v1/export" || path == "/api/v1/report") {
    auto it = request.query.find("format");
    std::string format = it == request.query.end() ? (path == "/api/v1/report" ? "html" : "json")
                                                   : it->second;
    auto snapshot = engine_.Refresh();
    if (path == "/api/v1/report") {
      if (format != "html") throw std::invalid_argument("format must be html");
      return {200, "text/html; charset=utf-8", ReportHtml(*snapshot)};
    }
    if (format == "json") return Json(200, ExportJson(*snapshot));
    if (format == "ndjson") return {200, "application/x-ndjson", ExportNdjson(*snapshot)};
    if (format == "csv") return {200, "text/csv; charset=utf-8", ExportCsv(*snapshot)};
    throw std::invalid_argument("format must be json, ndjson or csv");
  }
  HttpHandler best;
  size_t best_len = 0;
  {
    std::lock_guard lock(routes_mu_);
    for (const auto& [prefix, handler] : routes_) {
      if (path.rfind(prefix, 0) == 0 && prefix.size() >= best_len) {
        best = handler;  // a copy: the handler runs without the lock
        best_len = prefix.size();
      }
    }
  }
  if (best) return best(request);
  return Error(404, "not found");
}

}  // namespace respscope::admin
