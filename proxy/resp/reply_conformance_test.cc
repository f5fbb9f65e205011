// Conformance of the reply scanner against a real redis-server 7 started on a free port: real
// replies in RESP2 and, after HELLO 3, in RESP3, for a broad set of commands. For each reply
// the scanner's classification (type, null, error prefix, element count, per-element kinds,
// integer) must match what the reply really is, and the frames must tile the byte stream.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "proxy/resp/reply_scanner.h"

namespace respscope::resp {
namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

std::string Cmd(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

class RedisServer {
 public:
  RedisServer() : port_(FreePort()) {
    pid_ = fork();
    if (pid_ == 0) {
      std::string port = std::to_string(port_);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      int fd = Connect(port_);
      if (fd >= 0) {
        close(fd);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ~RedisServer() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  int port_;
  pid_t pid_ = -1;
};

struct Expect {
  std::vector<std::string> command;
  char type;                 // expected type byte
  bool is_null = false;
  std::string error_prefix;  // non-empty: an error with this prefix
  int64_t elements = -1;     // -1: do not check
  std::vector<uint8_t> kinds;  // empty: do not check
  bool check_integer = false;
  int64_t integer = 0;
};

// Sends all commands in one pipeline and scans the replies, reading at whatever sizes the
// kernel delivers.
void RunScript(int port, const std::vector<Expect>& script, const char* label) {
  int fd = Connect(port);
  ASSERT_GE(fd, 0);
  std::string out;
  for (const auto& e : script) out += Cmd(e.command);
  ASSERT_EQ(send(fd, out.data(), out.size(), 0), static_cast<ssize_t>(out.size()));
  ReplyScanner scanner;
  size_t done = 0;
  char buf[4096];
  uint64_t wire = 0, received = 0;
  while (done < script.size()) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << label << ": connection ended after " << done << " replies";
    received += static_cast<uint64_t>(n);
    std::string_view in(buf, static_cast<size_t>(n));
    for (;;) {
      ReplyInfo info;
      ScanStatus st = scanner.Next(&in, &info);
      ASSERT_NE(st, ScanStatus::kError) << label << ": " << scanner.error();
      if (st == ScanStatus::kNeedMore) break;
      ASSERT_LT(done, script.size());
      const Expect& e = script[done];
      std::string what = std::string(label) + " reply to " + e.command[0] + " #" + std::to_string(done);
      wire += info.wire_bytes;
      EXPECT_EQ(info.type, e.type) << what;
      EXPECT_EQ(info.is_null, e.is_null) << what;
      EXPECT_EQ(info.is_error, !e.error_prefix.empty()) << what;
      if (!e.error_prefix.empty()) EXPECT_EQ(info.error_prefix, e.error_prefix) << what;
      if (e.elements >= 0) EXPECT_EQ(static_cast<int64_t>(info.elements), e.elements) << what;
      if (!e.kinds.empty()) {
        EXPECT_EQ(std::vector<uint8_t>(info.element_kind.begin(), info.element_kind.end()), e.kinds)
            << what;
      }
      if (e.check_integer) {
        EXPECT_TRUE(info.has_integer) << what;
        EXPECT_EQ(info.integer, e.integer) << what;
      }
      ++done;
    }
  }
  EXPECT_EQ(wire, received) << label << ": frames must tile the byte stream";
  close(fd);
}

std::vector<Expect> Script(bool resp3) {
  const char null_type = resp3 ? '_' : '$';
  const char null_array = resp3 ? '_' : '*';
  const char map = resp3 ? '%' : '*';
  const char set = resp3 ? '~' : '*';
  std::vector<Expect> s;
  if (resp3) s.push_back({{"HELLO", "3"}, '%'});
  s.push_back({{"FLUSHALL"}, '+'});
  s.push_back({{"SET", "k1", "v1"}, '+'});
  s.push_back({{"GET", "k1"}, '$'});
  s.push_back({{"GET", "missing"}, null_type, true});
  s.push_back({{"MGET", "k1", "missing", "k1"}, '*', false, "", 3, {kElemValue, kElemNull, kElemValue}});
  s.push_back({{"HSET", "h", "f", "1", "g", "2"}, ':', false, "", -1, {}, true, 2});
  s.push_back({{"HGET", "h", "f"}, '$'});
  s.push_back({{"HGET", "h", "nope"}, null_type, true});
  s.push_back({{"HMGET", "h", "f", "nope"}, '*', false, "", 2, {kElemValue, kElemNull}});
  s.push_back({{"HGETALL", "h"}, map, false, "", 4});
  s.push_back({{"HGETALL", "nohash"}, map, false, "", 0});
  s.push_back({{"HEXISTS", "h", "nope"}, ':', false, "", -1, {}, true, 0});
  s.push_back({{"EXISTS", "k1", "missing", "h"}, ':', false, "", -1, {}, true, 2});
  s.push_back({{"SADD", "s", "a", "b"}, ':', false, "", -1, {}, true, 2});
  s.push_back({{"SMEMBERS", "s"}, set, false, "", 2});
  s.push_back({{"SISMEMBER", "s", "z"}, ':', false, "", -1, {}, true, 0});
  s.push_back({{"RPUSH", "l", "a", "b", "c"}, ':', false, "", -1, {}, true, 3});
  s.push_back({{"LRANGE", "l", "0", "-1"}, '*', false, "", 3});
  s.push_back({{"LRANGE", "nolist", "0", "-1"}, '*', false, "", 0});
  s.push_back({{"LINDEX", "l", "9"}, null_type, true});
  s.push_back({{"INCR", "l"}, '-', false, "WRONGTYPE"});
  s.push_back({{"NOSUCHCOMMAND"}, '-', false, "ERR"});
  s.push_back({{"EVALSHA", "0000000000000000000000000000000000000000", "0"}, '-', false, "NOSCRIPT"});
  s.push_back({{"ZADD", "z", "1.5", "m"}, ':', false, "", -1, {}, true, 1});
  s.push_back({{"ZSCORE", "z", "m"}, resp3 ? ',' : '$'});
  s.push_back({{"ZSCORE", "z", "nope"}, null_type, true});
  s.push_back({{"BLPOP", "emptylist", "0.05"}, null_array, true});
  s.push_back({{"XADD", "st", "*", "f", "v"}, '$'});
  s.push_back({{"XREAD", "COUNT", "1", "STREAMS", "st", "0"}, map, false, "", resp3 ? 2 : 1});
  s.push_back({{"MULTI"}, '+'});
  s.push_back({{"GET", "k1"}, '+'});  // +QUEUED
  s.push_back({{"GET", "missing"}, '+'});
  s.push_back({{"EXEC"}, '*', false, "", 2, {kElemValue, kElemNull}});
  s.push_back({{"EVAL", "return {1, false, 'x', {}}", "0"}, '*', false, "", 4,
               {kElemValue, kElemNull, kElemValue, kElemEmpty}});
  s.push_back({{"INFO", "server"}, resp3 ? '=' : '$'});
  s.push_back({{"CONFIG", "GET", "maxmemory"}, map, false, "", 2});
  s.push_back({{"OBJECT", "ENCODING", "nothing"}, null_type, true});
  s.push_back({{"DEL", "k1", "missing"}, ':', false, "", -1, {}, true, 1});
  s.push_back({{"PING"}, '+'});
  return s;
}

class ReplyConformance : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (system("command -v redis-server >/dev/null 2>&1") != 0) return;
    server_ = new RedisServer();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "redis-server is not installed";
  }
  static RedisServer* server_;
};
RedisServer* ReplyConformance::server_ = nullptr;

TEST_F(ReplyConformance, Resp2) { RunScript(server_->port(), Script(false), "RESP2"); }
TEST_F(ReplyConformance, Resp3) { RunScript(server_->port(), Script(true), "RESP3"); }

}  // namespace
}  // namespace respscope::resp
