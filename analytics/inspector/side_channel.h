// A connection to the upstream for respscope's own questions (COMMAND at start-up, later INFO
// and queue depths). Never shares a socket with an application connection.
// Thread: one SideChannel per thread that uses it; blocking calls with timeouts.
//
// Protocol and transport are split: hiredis encodes commands (redisFormatCommandArgv) and parses
// replies (redisReader), the same reader as ever; the bytes travel over a socket of our own,
// plain or TLS. Why not hiredis's own connection: Debian's hiredis 0.14 has no TLS and no
// pluggable transport (both came with hiredis 1.0, whose hiredis_ssl Debian 12 does not ship),
// and the side channel must verify the upstream exactly as the data plane does, with the same
// OpenSSL context (upstream_tls, rotated on SIGHUP) and the same handshake failure counters.
// One transport for plain and TLS keeps one code path, which every test exercises.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/tls.h"
#include "config/config.h"

struct redisReader;
struct redisReply;

namespace respscope::inspector {

class SideChannel {
 public:
  // tls: for a rediss:// upstream (null: plain).
  SideChannel(config::UpstreamUrl url, std::chrono::milliseconds timeout,
              std::shared_ptr<common::UpstreamTls> tls = nullptr);
  ~SideChannel();
  SideChannel(const SideChannel&) = delete;
  SideChannel& operator=(const SideChannel&) = delete;

  // Connects (and AUTH/SELECT with the URL's credentials) if not connected. False on failure,
  // with error() set.
  bool Connect();
  // Runs one command (argv form) and returns its reply re-encoded as RESP2 bytes, or an empty
  // string on failure (error() set). Reconnects once on a broken connection.
  std::string CommandRaw(const std::vector<std::string>& argv);
  const std::string& error() const { return error_; }

 private:
  bool Open();  // socket, connect within the timeout, TLS handshake
  void Drop();
  bool SendAll(const char* data, size_t n);
  // One command's reply (the caller frees it), or nullptr with error_ set (connection broken).
  redisReply* Run(const std::vector<std::string>& argv);

  config::UpstreamUrl url_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<common::UpstreamTls> tls_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  redisReader* reader_ = nullptr;
  std::string error_;
};

}  // namespace respscope::inspector
