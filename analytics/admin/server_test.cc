#include "analytics/admin/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace respscope::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct Reply {
  int status = 0;
  std::string body;
  std::string content_type;
};

// A tiny synchronous Beast client; one connection, several requests (keep-alive).
class Client {
 public:
  explicit Client(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  Reply Get(const std::string& target, const std::string& token = "",
            http::verb verb = http::verb::get) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "localhost");
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.keep_alive(true);
    http::write(socket_, req);
    http::response<http::string_body> res;
    http::read(socket_, buffer_, res);
    return {static_cast<int>(res.result_int()), res.body(),
            std::string(res[http::field::content_type])};
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

struct Fixture {
  explicit Fixture(AdminOptions options = {}) {
    patterns::SanitizeOptions so;
    so.hash_key = "k";
    hub = std::make_shared<patterns::RulesHub>(patterns::KeyRules::Build({}, so));
    shard = std::make_shared<recorder::Recorder>(recorder::RecorderOptions{}, hub);
    engine = std::make_unique<engine::Engine>(engine::EngineOptions{},
                                              std::vector<std::shared_ptr<recorder::Recorder>>{shard});
    options.port = 0;
    server = std::make_unique<AdminServer>(options, *engine, [this] { return ready.load(); });
    EXPECT_FALSE(server->Start());
    EXPECT_NE(server->Port(), 0);
  }
  void RecordGet(const std::string& key, analytics::Lookup lookup) {
    std::string_view keys[1] = {key};
    uint32_t lens[1] = {static_cast<uint32_t>(key.size())};
    analytics::Lookup lookups[1] = {lookup};
    analytics::Observation o;
    o.command_id = 1;
    o.command = "get";
    o.flags = analytics::kObsRead;
    o.end_ns = 20'000'000;  // 20 ms: slow
    o.keys = keys;
    o.key_lengths = lens;
    o.lookups = lookups;
    o.client_name = "worker-1";
    shard->Record(o);
    shard->Tick();
  }
  std::atomic<bool> ready{true};
  std::shared_ptr<patterns::RulesHub> hub;
  std::shared_ptr<recorder::Recorder> shard;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<AdminServer> server;
};

TEST(AdminServer, EndpointsOverRealSocket) {
  Fixture f;
  f.RecordGet("user:42:habits", analytics::Lookup::kHit);
  f.RecordGet("session:abc", analytics::Lookup::kMiss);
  f.server->AddRoute("/api/v1/queues", [](const HttpRequest& r) {
    return HttpResponse{200, "application/json", "{\"path\":\"" + r.path + "\"}"};
  });
  Client c(f.server->Port());
  Reply r = c.Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  EXPECT_EQ(c.Get("/readyz").status, 200);
  f.ready = false;
  EXPECT_EQ(c.Get("/readyz").status, 503);

  r = c.Get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("respscope_commands_total{command=\"get\",result=\"ok\"} 2"), std::string::npos);
  EXPECT_NE(r.body.find("respscope_cache_lookups_total{pattern=\"user:{id}:habits\",result=\"hit\"} 1"),
            std::string::npos);
  EXPECT_NE(r.body.find("respscope_cache_lookups_total{pattern=\"session:*\",result=\"miss\"} 1"),
            std::string::npos);
  EXPECT_EQ(r.body.find("session:abc"), std::string::npos);
  std::string metrics_text = r.body;

  r = c.Get("/api/v1/overview");
  ASSERT_EQ(r.status, 200);
  auto overview = boost::json::parse(r.body).as_object();
  EXPECT_EQ(overview["totals"].as_object()["commands"].as_int64(), 2);
  EXPECT_TRUE(overview.contains("health"));

  r = c.Get("/api/v1/patterns");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"pattern\":\"user:{id}:habits\""), std::string::npos);
  r = c.Get("/api/v1/hotkeys");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("user:42:habits"), std::string::npos);
  EXPECT_EQ(r.body.find("session:abc"), std::string::npos);  // hashed
  r = c.Get("/api/v1/slowlog");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(boost::json::parse(r.body).as_object()["entries"].as_array().size(), 2u);
  r = c.Get("/api/v1/clients");
  EXPECT_NE(r.body.find("worker-1"), std::string::npos);
  r = c.Get("/api/v1/commands");
  EXPECT_NE(r.body.find("\"command\":\"get\""), std::string::npos);
  r = c.Get("/api/v1/history?step=10");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(boost::json::parse(r.body).as_object().contains("points"));
  EXPECT_EQ(c.Get("/api/v1/history?from=abc").status, 400);
  EXPECT_EQ(c.Get("/api/v1/queues/email").body, "{\"path\":\"/api/v1/queues/email\"}");
  EXPECT_EQ(c.Get("/nope").status, 404);
  EXPECT_EQ(c.Get("/").status, 200);
  EXPECT_EQ(c.Get("/metrics", "", http::verb::post).status, 405);

  if (std::system("command -v promtool > /dev/null 2>&1") == 0) {
    std::string path = ::testing::TempDir() + "/respscope_admin_metrics.txt";
    std::ofstream(path) << metrics_text;
    EXPECT_EQ(std::system(("promtool check metrics < " + path + " > /dev/null 2>&1").c_str()), 0);
  }
}

TEST(AdminServer, BearerToken) {
  AdminOptions o;
  o.token = "s3cret";
  Fixture f(o);
  Client c(f.server->Port());
  EXPECT_EQ(c.Get("/api/v1/overview").status, 401);
  EXPECT_EQ(c.Get("/api/v1/overview", "wrong").status, 401);
  EXPECT_EQ(c.Get("/api/v1/overview", "s3cret").status, 200);
  // The dashboard page holds no data: it is served without the token; its API calls are not.
  EXPECT_EQ(c.Get("/").status, 200);
  EXPECT_EQ(c.Get("/").body.find("Bearer") != std::string::npos, true);
  EXPECT_EQ(c.Get("/healthz").status, 200);
  EXPECT_EQ(c.Get("/readyz").status, 200);
  EXPECT_EQ(c.Get("/metrics").status, 200);  // open unless protect_metrics
  EXPECT_EQ(c.Get("/nope", "s3cret").status, 404);

  AdminOptions p = o;
  p.protect_metrics = true;
  Fixture g(p);
  Client d(g.server->Port());
  EXPECT_EQ(d.Get("/metrics").status, 401);
  EXPECT_EQ(d.Get("/metrics", "s3cret").status, 200);
}

TEST(AdminServer, OversizedRequestIsRejected) {
  AdminOptions o;
  o.max_body_bytes = 16;
  Fixture f(o);
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), f.server->Port()));
  http::request<http::string_body> req{http::verb::get, "/healthz", 11};
  req.body() = std::string(1000, 'x');
  req.prepare_payload();
  http::write(s, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  EXPECT_EQ(res.result_int(), 413u);
}

// Reads until the server closes the connection; true when it did (EOF or reset).
bool ClosedByServer(tcp::socket& s) {
  char byte;
  beast::error_code ec;
  s.read_some(asio::buffer(&byte, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

tcp::socket Connect(asio::io_context& ioc, uint16_t port) {
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  return s;
}

TEST(AdminServer, ConnectionWithoutRequestIsClosedAtHeaderTimeout) {
  AdminOptions o;
  o.header_timeout = std::chrono::milliseconds(200);
  Fixture f(o);
  asio::io_context ioc;
  tcp::socket silent = Connect(ioc, f.server->Port());
  EXPECT_TRUE(ClosedByServer(silent));
  // The socket is closed before the session's handler counts the timeout: wait for it.
  for (int i = 0; i < 500 && f.server->Stats().request_timeouts == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(f.server->Stats().request_timeouts, 1u);
  // A connection that asks at once is served as before.
  EXPECT_EQ(Client(f.server->Port()).Get("/healthz").status, 200);
}

TEST(AdminServer, AtTheCapTheOldestIdleConnectionMakesRoom) {
  AdminOptions o;
  o.max_connections = 2;
  Fixture f(o);
  asio::io_context ioc;
  tcp::socket oldest = Connect(ioc, f.server->Port());
  tcp::socket second = Connect(ioc, f.server->Port());
  Client probe(f.server->Port());  // the third: admitted by closing `oldest`
  Reply r = probe.Get("/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(ClosedByServer(oldest));
  engine::AdminListenerStats stats = f.server->Stats();
  EXPECT_EQ(stats.connections, 2u);
  EXPECT_EQ(stats.rejected_idle, 1u);
  EXPECT_EQ(stats.rejected_refused, 0u);
  std::string metrics = probe.Get("/metrics").body;
  EXPECT_NE(metrics.find("respscope_admin_connections 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("respscope_admin_connections_rejected_total{reason=\"idle_evicted\"} 1"),
            std::string::npos);
  EXPECT_NE(metrics.find("respscope_accept_fd_exhausted_total{listener=\"admin\"} 0"),
            std::string::npos);
}

TEST(AdminServer, StartFailsOnBadAddressAndStopIsIdempotent) {
  Fixture f;
  AdminOptions o;
  o.address = "not-an-ip";
  AdminServer bad(o, *f.engine);
  EXPECT_TRUE(bad.Start());
  f.server->Stop();
  f.server->Stop();
}

}  // namespace
}  // namespace respscope::admin
