// A hiredis connection to the upstream for respscope's own questions (COMMAND at start-up,
// later INFO and queue depths). Never shares a socket with an application connection.
// Thread: one SideChannel per thread that uses it; blocking calls with timeouts.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

struct redisContext;
struct redisReply;

namespace respscope::inspector {

class SideChannel {
 public:
  explicit SideChannel(config::UpstreamUrl url, std::chrono::milliseconds timeout);
  ~SideChannel();

  // Connects (and AUTH/SELECT with the URL's credentials) if not connected. False on failure,
  // with error() set.
  bool Connect();
  // Runs one command (argv form) and returns its reply re-encoded as RESP2 bytes, or an empty
  // string on failure (error() set). Reconnects once on a broken connection.
  std::string CommandRaw(const std::vector<std::string>& argv);
  const std::string& error() const { return error_; }

 private:
  config::UpstreamUrl url_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
  std::string error_;
};

}  // namespace respscope::inspector
