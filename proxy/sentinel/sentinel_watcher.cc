#include "proxy/sentinel/sentinel_watcher.h"

#include <hiredis/hiredis.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>

namespace respscope::sentinel {

namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A failed round is logged at once, then at most this often while it keeps failing.
constexpr auto kFailureLogEvery = std::chrono::seconds(30);
// The subscription is polled in slices this long, so Stop() and Nudge() are seen promptly.
constexpr milliseconds kSlice{100};

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

timeval ToTimeval(milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Reply Run(redisContext* c, const std::vector<std::string>& argv) {
  std::vector<const char*> p;
  std::vector<size_t> l;
  for (const auto& a : argv) {
    p.push_back(a.data());
    l.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(p.size()), p.data(), l.data())));
}

std::string Text(const redisReply* r) {
  return r && r->str ? std::string(r->str, r->len) : std::string();
}

// Connects (timeout on connect and on every reply) and authenticates when a password is given.
Context Open(const config::HostPort& at, milliseconds timeout, const std::string& user,
             const std::string& password, std::string* error) {
  timeval tv = ToTimeval(timeout);
  Context c(redisConnectWithTimeout(at.host.c_str(), at.port, tv));
  if (!c || c->err) {
    *error = c ? c->errstr : "cannot allocate a hiredis context";
    return nullptr;
  }
  redisSetTimeout(c.get(), tv);
  if (!password.empty()) {
    Reply r = user.empty() ? Run(c.get(), {"AUTH", password}) : Run(c.get(), {"AUTH", user, password});
    if (!r) {
      *error = c->errstr;
      return nullptr;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      *error = "AUTH refused: " + Text(r.get());
      return nullptr;
    }
  }
  return c;
}

// An IP address for the data plane, which connects to addresses and never resolves names
// (the sentinels answer with IPs unless `sentinel resolve-hostnames yes`).
std::optional<std::string> ToAddress(const std::string& host, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    *error = "cannot resolve '" + host + "': " + ::gai_strerror(rc);
    return std::nullopt;
  }
  char buf[NI_MAXHOST];
  rc = ::getnameinfo(res->ai_addr, res->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST);
  ::freeaddrinfo(res);
  if (rc != 0) {
    *error = "cannot resolve '" + host + "': " + ::gai_strerror(rc);
    return std::nullopt;
  }
  return std::string(buf);
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

std::optional<config::HostPort> ParseSwitchMaster(std::string_view payload,
                                                  std::string_view master_name) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < payload.size()) {
    size_t end = payload.find(' ', i);
    if (end == std::string_view::npos) end = payload.size();
    if (end > i) words.push_back(payload.substr(i, end - i));
    i = end + 1;
  }
  if (words.size() != 5 || words[0] != master_name) return std::nullopt;
  int port = 0;
  for (char c : words[4]) {
    if (c < '0' || c > '9' || port > 65535) return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return config::HostPort{std::string(words[3]), static_cast<uint16_t>(port)};
}

SentinelWatcher::SentinelWatcher(config::UpstreamUrl url, config::SentinelConfig options,
                                 Listener listener)
    : url_(std::move(url)), options_(std::move(options)), listener_(std::move(listener)) {
  stats_.configured = static_cast<int>(url_.sentinels.size());
}

SentinelWatcher::~SentinelWatcher() {
  Stop();
  DropSubscription();
}

std::optional<config::HostPort> SentinelWatcher::master() const {
  std::lock_guard lock(mu_);
  return master_;
}

SentinelStats SentinelWatcher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::optional<config::HostPort> SentinelWatcher::ResolveNow() {
  Round("start-up");
  return master();
}

void SentinelWatcher::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void SentinelWatcher::Stop() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool SentinelWatcher::Sleep(milliseconds wait) {
  std::unique_lock lock(stop_mu_);
  stop_cv_.wait_for(lock, wait, [&] { return stop_; });
  return !stop_;
}

void SentinelWatcher::Loop() {
  milliseconds backoff = kBackoffMin;
  while (true) {
    {
      std::lock_guard lock(stop_mu_);
      if (stop_) break;
    }
    if (!master()) {
      if (Round("no master known")) {
        backoff = kBackoffMin;
      } else {
        if (!Sleep(backoff)) break;
        backoff = std::min(backoff * 2, kBackoffMax);
      }
      nudged_.store(false, std::memory_order_relaxed);
      continue;
    }
    auto now = Clock::now();
    if (!sub_ && now >= next_subscribe_) {
      Subscribe();
      // None reachable: try again later (each try may cost a timeout per sentinel, and the
      // periodic check covers failovers meanwhile).
      sub_backoff_ = sub_ ? kBackoffMin : std::min(sub_backoff_ * 2, kBackoffMax);
      now = Clock::now();
      next_subscribe_ = now + sub_backoff_;
    }
    auto next_check = last_round_ + options_.check_interval;
    bool nudged = nudged_.load(std::memory_order_relaxed) && now - last_round_ >= kNudgeInterval;
    if (now < next_check && !nudged) {
      WaitForEvents(std::min(
          kSlice, std::chrono::duration_cast<milliseconds>(next_check - now) + milliseconds(1)));
      continue;
    }
    nudged_.store(false, std::memory_order_relaxed);
    Round(nudged ? "a connection to the master failed" : "periodic check");
  }
  DropSubscription();
}

bool SentinelWatcher::Round(const char* cause) {
  last_round_ = Clock::now();
  const milliseconds timeout = std::chrono::duration_cast<milliseconds>(options_.timeout);
  std::vector<config::HostPort> candidates;
  std::vector<std::string> problems;
  std::vector<std::string> answered_by;
  int reachable = 0;
  for (const config::HostPort& s : url_.sentinels) {
    std::string error;
    Context c = Open(s, timeout, options_.username, options_.password, &error);
    if (!c) {
      problems.push_back("sentinel " + s.ToString() + ": " + error);
      continue;
    }
    Reply r = Run(c.get(), {"SENTINEL", "get-master-addr-by-name", url_.master_name});
    if (!r) {
      problems.push_back("sentinel " + s.ToString() + ": " + c->errstr);
      continue;
    }
    ++reachable;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
      auto port = ParseSwitchMaster(url_.master_name + " - 0 " + Text(r->element[0]) + " " +
                                        Text(r->element[1]),
                                    url_.master_name);
      if (port) {
        if (std::find(candidates.begin(), candidates.end(), *port) == candidates.end()) {
          candidates.push_back(*port);
          answered_by.push_back(s.ToString());
        }
        continue;
      }
    }
    if (r->type == REDIS_REPLY_NIL) {
      problems.push_back("sentinel " + s.ToString() + ": does not monitor a master named '" +
                         url_.master_name + "'");
    } else if (r->type == REDIS_REPLY_ERROR) {
      problems.push_back("sentinel " + s.ToString() + ": " + Text(r.get()));
    } else {
      problems.push_back("sentinel " + s.ToString() + ": unexpected reply");
    }
  }
  int configured = static_cast<int>(url_.sentinels.size());
  int before;
  {
    std::lock_guard lock(mu_);
    before = stats_.reachable;
    stats_.reachable = reachable;
  }
  if (reachable != before && reachable < configured) {
    spdlog::warn("sentinel: {} of {} sentinels reachable ({})", reachable, configured,
                 Join(problems));
  } else if (reachable != before) {
    spdlog::info("sentinel: all {} sentinels reachable", configured);
  }

  for (size_t i = 0; i < candidates.size(); ++i) {
    std::string error;
    if (VerifyMaster(candidates[i], &error)) {
      Publish(candidates[i], "", std::string("from sentinel ") + answered_by[i] + ", " + cause);
      return true;
    }
    problems.push_back("master " + candidates[i].ToString() + " named by sentinel " +
                       answered_by[i] + ": " + error);
  }
  if (candidates.empty() && reachable == 0) {
    problems.insert(problems.begin(), "no sentinel reachable");
  } else if (candidates.empty()) {
    problems.insert(problems.begin(), "no sentinel named a master");
  }
  std::string why = Join(problems);
  {
    std::lock_guard lock(mu_);
    ++stats_.resolve_failures;
    stats_.last_error = why;
  }
  auto now = Clock::now();
  // No sentinel names anyone (all down, or none monitors the name): the sentinels cannot have
  // moved the master, so one that still says it is the master stays the upstream. Dropping it
  // would turn a Sentinel outage into a Redis outage. A sentinel that names another address
  // wins over this, as it does for the clients of ioredis and go-redis.
  if (std::optional<config::HostPort> known = master(); known && candidates.empty()) {
    std::string error;
    if (VerifyMaster(*known, &error)) {
      if (now - last_failure_log_ >= kFailureLogEvery) {
        last_failure_log_ = now;
        spdlog::warn("sentinel: {} for '{}' ({}); keeping master {}, which still says ROLE "
                     "master: {}",
                     reachable == 0 ? "no sentinel reachable" : "no sentinel named a master",
                     url_.master_name, cause, known->ToString(), why);
      }
      return true;
    }
    problems.push_back("master " + known->ToString() + ": " + error);
    why = Join(problems);
    std::lock_guard lock(mu_);
    stats_.last_error = why;
  }
  if (master() || now - last_failure_log_ >= kFailureLogEvery) {
    last_failure_log_ = now;
    spdlog::error(
        "sentinel: no working master for '{}' ({}): {}; clients get an error until one is "
        "found; retrying with backoff up to {} ms",
        url_.master_name, cause, why, kBackoffMax.count());
  }
  Publish(std::nullopt, why, cause);
  return false;
}

bool SentinelWatcher::VerifyMaster(const config::HostPort& m, std::string* error) {
  const milliseconds timeout = std::chrono::duration_cast<milliseconds>(options_.timeout);
  Context c = Open(m, timeout, url_.username, url_.password, error);
  if (!c) return false;
  Reply r = Run(c.get(), {"ROLE"});
  if (!r) {
    *error = c->errstr;
    return false;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    std::string text = Text(r.get());
    if (text.rfind("NOAUTH", 0) == 0 || text.rfind("NOPERM", 0) == 0) {
      if (!warned_role_) {
        warned_role_ = true;
        spdlog::warn("sentinel: {} refused ROLE ({}); taking the sentinels' word that it is the "
                     "master (put the master's credentials in the upstream URL to check it)",
                     m.ToString(), text);
      }
      return true;
    }
    *error = "ROLE refused: " + text;
    return false;
  }
  if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
      (r->element[0]->type == REDIS_REPLY_STRING || r->element[0]->type == REDIS_REPLY_STATUS)) {
    std::string role = Text(r->element[0]);
    if (role == "master") return true;
    *error = "ROLE says " + role + ", not master";
    return false;
  }
  *error = "unexpected ROLE reply";
  return false;
}

void SentinelWatcher::Publish(const std::optional<config::HostPort>& m, const std::string& why,
                              const std::string& how) {
  std::optional<config::HostPort> resolved;
  std::string error;
  if (m) {
    if (auto ip = ToAddress(m->host, &error)) {
      resolved = config::HostPort{*ip, m->port};
    }
  }
  std::optional<config::HostPort> previous;
  {
    std::lock_guard lock(mu_);
    previous = master_;
    if (announced_ && previous == resolved) return;  // nothing changed
    announced_ = true;
    if (previous && resolved) ++stats_.master_changes;
    master_ = resolved;
    stats_.master = resolved ? resolved->ToString() : "";
  }
  if (resolved && previous) {
    spdlog::warn("sentinel: master '{}' moved from {} to {} ({}); closing the clients of the old "
                 "master",
                 url_.master_name, previous->ToString(), resolved->ToString(), how);
  } else if (resolved) {
    spdlog::info("sentinel: master '{}' is {} ({})", url_.master_name, resolved->ToString(), how);
  }
  if (m && !resolved) {
    listener_(std::nullopt, error);
    return;
  }
  listener_(resolved, why);
}

void SentinelWatcher::Subscribe() {
  const milliseconds timeout = std::chrono::duration_cast<milliseconds>(options_.timeout);
  for (size_t n = 0; n < url_.sentinels.size(); ++n) {
    const config::HostPort& s = url_.sentinels[(next_sub_ + n) % url_.sentinels.size()];
    std::string error;
    Context c = Open(s, timeout, options_.username, options_.password, &error);
    if (!c) continue;
    Reply r = Run(c.get(), {"SUBSCRIBE", "+switch-master"});
    if (!r || r->type != REDIS_REPLY_ARRAY) continue;
    next_sub_ = (next_sub_ + n + 1) % url_.sentinels.size();
    sub_ = c.release();
    sub_name_ = s.ToString();
    spdlog::debug("sentinel: following +switch-master on sentinel {}", sub_name_);
    return;
  }
  // None reachable: the periodic check covers failovers until one is.
}

void SentinelWatcher::DropSubscription() {
  if (sub_) redisFree(static_cast<redisContext*>(sub_));
  sub_ = nullptr;
}

void SentinelWatcher::WaitForEvents(milliseconds wait) {
  if (!sub_) {
    Sleep(wait);
    return;
  }
  auto* c = static_cast<redisContext*>(sub_);
  pollfd p{c->fd, POLLIN, 0};
  int n = ::poll(&p, 1, static_cast<int>(wait.count()));
  if (n <= 0) return;
  if (redisBufferRead(c) != REDIS_OK) {
    spdlog::info("sentinel: subscription to sentinel {} lost ({}); subscribing elsewhere",
                 sub_name_, c->errstr);
    DropSubscription();
    return;
  }
  while (true) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(c, &raw) != REDIS_OK) {
      DropSubscription();
      return;
    }
    if (raw == nullptr) return;
    Reply r(static_cast<redisReply*>(raw));
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || Text(r->element[0]) != "message") {
      continue;
    }
    auto moved = ParseSwitchMaster(Text(r->element[2]), url_.master_name);
    if (!moved) continue;
    std::string error;
    if (VerifyMaster(*moved, &error)) {
      Publish(moved, "", "+switch-master from sentinel " + sub_name_);
      last_round_ = Clock::now();
    } else {
      spdlog::warn("sentinel: +switch-master names {} but {}; asking the sentinels again",
                   moved->ToString(), error);
      Round("+switch-master not confirmed");
    }
    if (!sub_) return;  // a round may not drop it, but stay safe
  }
}

}  // namespace respscope::sentinel
