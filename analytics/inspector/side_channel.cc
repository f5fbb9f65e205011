#include "analytics/inspector/side_channel.h"

#include <hiredis/hiredis.h>

namespace respscope::inspector {

namespace {
timeval ToTimeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

void Encode(const redisReply* r, std::string* out) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
      *out += "$" + std::to_string(r->len) + "\r\n";
      out->append(r->str, r->len);
      *out += "\r\n";
      break;
    case REDIS_REPLY_STATUS:
      *out += "+";
      out->append(r->str, r->len);
      *out += "\r\n";
      break;
    case REDIS_REPLY_ERROR:
      *out += "-";
      out->append(r->str, r->len);
      *out += "\r\n";
      break;
    case REDIS_REPLY_INTEGER:
      *out += ":" + std::to_string(r->integer) + "\r\n";
      break;
    case REDIS_REPLY_NIL:
      *out += "$-1\r\n";
      break;
    case REDIS_REPLY_ARRAY:
    default:
      *out += "*" + std::to_string(r->elements) + "\r\n";
      for (size_t i = 0; i < r->elements; ++i) Encode(r->element[i], out);
      break;
  }
}

// One command in argv form (binary safe); the reply, or nullptr on a connection error.
redisReply* Run(redisContext* ctx, const std::vector<std::string>& argv) {
  std::vector<const char*> p;
  std::vector<size_t> l;
  for (const auto& a : argv) {
    p.push_back(a.data());
    l.push_back(a.size());
  }
  return static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(p.size()), p.data(), l.data()));
}
}  // namespace

SideChannel::SideChannel(config::UpstreamUrl url, std::chrono::milliseconds timeout)
    : url_(std::move(url)), timeout_(timeout) {}

SideChannel::~SideChannel() {
  if (ctx_) redisFree(ctx_);
}

bool SideChannel::Connect() {
  if (ctx_) return true;
  timeval tv = ToTimeval(timeout_);
  if (url_.IsSentinel()) {
    error_ = "a redis+sentinel:// URL names no server (no master known)";
    return false;
  }
  if (url_.scheme == config::UpstreamScheme::kRediss) {
    error_ = "rediss:// (TLS) is not supported yet";
    return false;
  }
  ctx_ = url_.IsTcp() ? redisConnectWithTimeout(url_.host.c_str(), url_.port, tv)
                      : redisConnectUnixWithTimeout(url_.path.c_str(), tv);
  if (!ctx_ || ctx_->err) {
    error_ = ctx_ ? ctx_->errstr : "cannot allocate hiredis context";
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    return false;
  }
  redisSetTimeout(ctx_, tv);
  auto simple = [&](const std::vector<std::string>& argv) {
    redisReply* r = Run(ctx_, argv);
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok) error_ = r ? std::string(r->str, r->len) : std::string(ctx_->errstr);
    if (r) freeReplyObject(r);
    return ok;
  };
  bool ok = true;
  if (!url_.password.empty()) {
    ok = url_.username.empty() ? simple({"AUTH", url_.password})
                               : simple({"AUTH", url_.username, url_.password});
  }
  if (ok && url_.db) ok = simple({"SELECT", std::to_string(url_.db)});
  // The name only helps people reading CLIENT LIST: a refusal (NOAUTH without credentials in
  // the URL, an ACL without CLIENT) leaves a working connection whose commands get Redis's own
  // answers.
  if (ok) simple({"CLIENT", "SETNAME", "respscope"});
  if (!ok) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  return ok;
}

std::string SideChannel::CommandRaw(const std::vector<std::string>& argv) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!Connect()) return {};
    redisReply* r = Run(ctx_, argv);
    if (!r) {
      error_ = ctx_->errstr;
      redisFree(ctx_);
      ctx_ = nullptr;
      continue;
    }
    std::string out;
    Encode(r, &out);
    freeReplyObject(r);
    return out;
  }
  return {};
}

}  // namespace respscope::inspector
