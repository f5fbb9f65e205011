#include "analytics/admin/notifier.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cstdio>
#include <optional>

namespace respscope::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

std::string WebhookBody(const engine::AlertEvent& e) {
  const auto& a = e.alert;
  return json::serialize(json::object{{"source", "respscope"},
                                      {"status", e.status},
                                      {"alert", a.name},
                                      {"severity", a.severity},
                                      {"metric", a.metric},
                                      {"selector", a.selector},
                                      {"value", a.value},
                                      {"threshold", a.threshold},
                                      {"since_ms", a.since_ms},
                                      {"time_ms", e.time_ms}});
}

std::string SlackBody(const engine::AlertEvent& e) {
  const auto& a = e.alert;
  char numbers[128];
  std::snprintf(numbers, sizeof(numbers), "value %g, threshold %g", a.value, a.threshold);
  std::string text = std::string(e.status == "firing" ? ":rotating_light: FIRING"
                                                      : ":white_check_mark: RESOLVED") +
                     " [" + a.severity + "] " + a.name + ": " + a.metric + " on " + a.selector +
                     " (" + numbers + ") - respscope";
  return json::serialize(json::object{{"text", text}});
}

std::string HmacSha256Hex(std::string_view key, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 15]);
  }
  return out;
}

namespace {

struct Target {
  bool tls = false;
  std::string host, port, path;
};

Target ParseTarget(const std::string& url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) throw std::invalid_argument("bad URL");
  Target t;
  t.tls = u->scheme() == "https";
  t.host = std::string(u->host_address());
  t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
  t.path = std::string(u->encoded_target());
  if (t.path.empty()) t.path = "/";
  return t;
}

// One POST; returns the HTTP status, or 0 with `error` set. The whole attempt is bounded by
// `timeout` (run_for on a private io_context).
int Post(const Target& t, const std::string& body,
         const std::vector<std::pair<std::string, std::string>>& headers,
         std::chrono::milliseconds timeout, std::string& error) {
  asio::io_context ioc;
  http::request<http::string_body> req{http::verb::post, t.path, 11};
  req.set(http::field::host, t.host);
  req.set(http::field::user_agent, "respscope");
  req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  beast::flat_buffer buffer;
  beast::error_code result = asio::error::timed_out;
  tcp::resolver resolver(ioc);

  asio::ssl::context ssl_ctx(asio::ssl::context::tls_client);
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  if (t.tls) {
    ssl_ctx.set_default_verify_paths();
    ssl_ctx.set_verify_mode(asio::ssl::verify_peer);
    secure.emplace(ioc, ssl_ctx);
    SSL_set_tlsext_host_name(secure->native_handle(), t.host.c_str());
    secure->set_verify_callback(asio::ssl::host_name_verification(t.host));
  } else {
    plain.emplace(ioc);
  }
  beast::tcp_stream& lowest = t.tls ? beast::get_lowest_layer(*secure) : *plain;

  auto on_read = [&](beast::error_code ec, size_t) { result = ec; };
  auto on_written = [&](beast::error_code ec, size_t) {
    if (ec) {
      result = ec;
      return;
    }
    if (t.tls) {
      http::async_read(*secure, buffer, res, on_read);
    } else {
      http::async_read(*plain, buffer, res, on_read);
    }
  };
  auto write = [&] {
    if (t.tls) {
      http::async_write(*secure, req, on_written);
    } else {
      http::async_write(*plain, req, on_written);
    }
  };
  resolver.async_resolve(
      t.host, t.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
        if (ec) {
          result = ec;
          return;
        }
        lowest.expires_after(timeout);
        lowest.async_connect(results, [&](beast::error_code ec, const tcp::endpoint&) {
          if (ec) {
            result = ec;
            return;
          }
          if (!t.tls) return write();
          secure->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code ec) {
            if (ec) {
              result = ec;
              return;
            }
            write();
          });
        });
      });
  ioc.run_for(timeout);
  if (result) {
    error = result.message();
    return 0;
  }
  return static_cast<int>(res.result_int());
}

}  // namespace

struct Notifier::Channel {
  ChannelOptions options;
  Target target;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<engine::AlertEvent> queue;
  bool stop = false;
  ChannelStats stats;
  std::thread thread;

  void Run() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stop || !queue.empty(); });
      if (stop) return;
      engine::AlertEvent e = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      bool ok = Deliver(e);
      lock.lock();
      if (ok) {
        ++stats.sent;
      } else {
        ++stats.failed;
      }
    }
  }

  // Sleeps for `d` unless stopped; false when stopped.
  bool Wait(std::chrono::milliseconds d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [&] { return stop; });
  }

  bool Deliver(const engine::AlertEvent& e) {
    std::string body = options.kind == ChannelKind::kSlack ? SlackBody(e) : WebhookBody(e);
    std::vector<std::pair<std::string, std::string>> headers;
    if (options.kind == ChannelKind::kWebhook) {
      headers.emplace_back("X-Respscope-Event", e.status);
      if (!options.hmac_secret.empty()) {
        headers.emplace_back("X-Respscope-Signature",
                             "sha256=" + HmacSha256Hex(options.hmac_secret, body));
      }
    }
    std::chrono::milliseconds backoff = options.backoff;
    std::string last;
    for (uint32_t attempt = 1; attempt <= options.max_attempts; ++attempt) {
      if (attempt > 1) {
        {
          std::lock_guard lock(mu);
          ++stats.retries;
        }
        if (!Wait(backoff)) return false;
        backoff *= 2;
      }
      std::string error;
      int status = Post(target, body, headers, options.timeout, error);
      if (status >= 200 && status < 300) return true;
      last = status ? "HTTP " + std::to_string(status) : error;
    }
    // The URL may carry a token in its path (Slack's does): log the channel name only.
    spdlog::warn(
        "notification channel {}: {} notification of alert {} not delivered after {} "
        "attempts: {}",
        options.name, e.status, e.alert.name, options.max_attempts, last);
    return false;
  }
};

Notifier::Notifier(std::vector<ChannelOptions> channels) {
  for (auto& options : channels) {
    auto c = std::make_unique<Channel>();
    c->target = ParseTarget(options.url);
    c->options = std::move(options);
    channels_.push_back(std::move(c));
  }
  for (auto& c : channels_) c->thread = std::thread([ch = c.get()] { ch->Run(); });
}

Notifier::~Notifier() { Stop(); }

void Notifier::Enqueue(const std::vector<engine::AlertEvent>& events) {
  for (auto& c : channels_) {
    bool queued = false;
    {
      std::lock_guard lock(c->mu);
      for (const auto& e : events) {
        if (engine::SeverityRank(e.alert.severity) < c->options.min_severity) continue;
        if (c->queue.size() >= c->options.max_queue) {
          ++c->stats.dropped;
          continue;
        }
        c->queue.push_back(e);
        queued = true;
      }
    }
    if (queued) c->cv.notify_all();
  }
}

void Notifier::Stop() {
  for (auto& c : channels_) {
    {
      std::lock_guard lock(c->mu);
      c->stop = true;
      c->queue.clear();
    }
    c->cv.notify_all();
  }
  for (auto& c : channels_) {
    if (c->thread.joinable()) c->thread.join();
  }
}

std::vector<std::pair<std::string, ChannelStats>> Notifier::stats() const {
  std::vector<std::pair<std::string, ChannelStats>> out;
  for (const auto& c : channels_) {
    std::lock_guard lock(c->mu);
    out.emplace_back(c->options.name, c->stats);
  }
  return out;
}

}  // namespace respscope::admin
