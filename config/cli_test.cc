// The command line and the precedence defaults < file < flags < RESPSCOPE_* environment.
#include "config/cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/error.h"

namespace respscope::config {
namespace {

// argv from strings; argv[0] is the program.
class Args {
 public:
  Args(std::initializer_list<std::string> args) : strings_(args) {
    strings_.insert(strings_.begin(), "respscope");
    for (const std::string& s : strings_) pointers_.push_back(s.c_str());
  }
  int argc() const { return static_cast<int>(pointers_.size()); }
  const char* const* argv() const { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<const char*> pointers_;
};

std::string UsageErrorOf(std::initializer_list<std::string> args) {
  Args a(args);
  try {
    ParseCommandLine(a.argc(), a.argv());
  } catch (const UsageError& e) {
    return e.what();
  }
  return "(no error)";
}

// A file in a fresh temporary directory, removed with the fixture.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    dir_ =
        std::filesystem::temp_directory_path() /
        ("respscope_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "respscope.yaml").string();
    std::ofstream(path_) << text;
  }
  ~TempFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::string path_;
};

TEST(CommandLineTest, ParsesEveryFlagInBothForms) {
  Args a({"--config", "r.yaml", "--listen=0.0.0.0:7000", "--upstream", "redis://h:1/2", "--admin",
          "[::1]:9", "--threads=8", "--log-level", "DEBUG", "--check-config"});
  CommandLine cli = ParseCommandLine(a.argc(), a.argv());
  EXPECT_EQ(cli.config_file, "r.yaml");
  EXPECT_EQ(cli.listen->at(0).tcp, (HostPort{"0.0.0.0", 7000}));
  EXPECT_EQ(cli.upstream->ToString(), "redis://h:1/2");
  EXPECT_EQ(cli.admin, (HostPort{"::1", 9}));
  EXPECT_EQ(cli.threads, 8);
  EXPECT_EQ(cli.log_level, LogLevel::kDebug);
  EXPECT_TRUE(cli.check_config);
  EXPECT_FALSE(cli.version);
  EXPECT_FALSE(cli.help);

  Args b({"-c", "x.yaml", "-h", "--version", "--threads", "1", "--threads", "2"});
  CommandLine short_forms = ParseCommandLine(b.argc(), b.argv());
  EXPECT_EQ(short_forms.config_file, "x.yaml");
  EXPECT_TRUE(short_forms.help);
  EXPECT_TRUE(short_forms.version);
  EXPECT_EQ(short_forms.threads, 2);  // the last one wins

  Args none({});
  CommandLine empty = ParseCommandLine(none.argc(), none.argv());
  EXPECT_FALSE(empty.config_file || empty.listen || empty.upstream || empty.admin ||
               empty.threads || empty.log_level);
}

TEST(CommandLineTest, Errors) {
  EXPECT_EQ(UsageErrorOf({"--thread", "2"}),
            "unknown option '--thread' (did you mean '--threads'?)");
  EXPECT_EQ(UsageErrorOf({"--verbose"}), "unknown option '--verbose'");
  EXPECT_EQ(UsageErrorOf({"-x"}), "unknown option '-x'");
  EXPECT_EQ(UsageErrorOf({"config.yaml"}),
            "unexpected argument 'config.yaml' (options start with --)");
  EXPECT_EQ(UsageErrorOf({"--listen"}), "--listen needs a value (HOST:PORT or unix:///PATH)");
  EXPECT_EQ(UsageErrorOf({"--config="}), "--config: expected a file name (got nothing)");
  EXPECT_EQ(UsageErrorOf({"--check-config=yes"}), "--check-config takes no value");
  EXPECT_EQ(UsageErrorOf({"--threads", "x"}), "--threads: expected an integer (got 'x')");
  EXPECT_EQ(UsageErrorOf({"--threads", "0"}),
            "--threads: value out of range (must be between 1 and 256, got 0)");
  EXPECT_EQ(UsageErrorOf({"--listen", "6380"}),
            "--listen: expected HOST:PORT like 127.0.0.1:6380 or [::1]:6380 (got '6380')");
  EXPECT_EQ(UsageErrorOf({"--upstream", "redis://:pw@h:0"}),
            "--upstream: invalid URL: port must be a number between 1 and 65535 (got '0')");
  EXPECT_EQ(UsageErrorOf({"--log-level", "loud"}),
            "--log-level: expected one of trace, debug, info, warn, error (got 'loud')");
}

TEST(PrecedenceTest, DefaultsThenFileThenFlagsThenEnvironment) {
  TempFile file(
      "listen: 127.0.0.1:7001\n"
      "upstream: redis://file-redis:6379\n"
      "admin: {listen: 127.0.0.1:7002, token: file-token}\n"
      "threads: 3\n"
      "logging: {level: error}\n");
  const EnvGetter no_env = MapEnv({});

  // File only.
  Args file_only({"--config", file.path()});
  Config c = LoadEffectiveConfig(file_only.argc(), file_only.argv(), no_env);
  EXPECT_EQ(c.listen.at(0).tcp.port, 7001);
  EXPECT_EQ(c.upstream.host, "file-redis");
  EXPECT_EQ(c.admin.listen.port, 7002);
  EXPECT_EQ(c.admin.token, "file-token");
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.logging.level, LogLevel::kError);
  EXPECT_EQ(c.config_file, file.path());
  EXPECT_EQ(c.origins.listen, file.path() + ":1:9");

  // Flags over the file.
  Args flags({"--config", file.path(), "--listen", "127.0.0.1:8001", "--upstream",
              "redis://flag-redis", "--admin", "127.0.0.1:8002", "--threads", "1", "--log-level",
              "trace"});
  c = LoadEffectiveConfig(flags.argc(), flags.argv(), no_env);
  EXPECT_EQ(c.listen.at(0).tcp.port, 8001);
  EXPECT_EQ(c.upstream.host, "flag-redis");
  EXPECT_EQ(c.admin.listen.port, 8002);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.logging.level, LogLevel::kTrace);
  EXPECT_EQ(c.admin.token, "file-token");
  EXPECT_EQ(c.origins.listen, "--listen");

  // Environment over both.
  EnvGetter env = MapEnv({{"RESPSCOPE_LISTEN", "127.0.0.1:9001"},
                          {"RESPSCOPE_UPSTREAM", "redis://env-redis"},
                          {"RESPSCOPE_ADMIN", "127.0.0.1:9002"},
                          {"RESPSCOPE_ADMIN_TOKEN", "env-token"}});
  c = LoadEffectiveConfig(flags.argc(), flags.argv(), env);
  EXPECT_EQ(c.listen.at(0).tcp.port, 9001);
  EXPECT_EQ(c.upstream.host, "env-redis");
  EXPECT_EQ(c.admin.listen.port, 9002);
  EXPECT_EQ(c.admin.token, "env-token");
  EXPECT_EQ(c.threads, 1);  // no environment override for threads
  EXPECT_EQ(c.origins.upstream, "RESPSCOPE_UPSTREAM");

  // No file: defaults, then flags, then environment.
  Args no_file({"--threads", "2"});
  c = LoadEffectiveConfig(no_file.argc(), no_file.argv(),
                          MapEnv({{"RESPSCOPE_LISTEN", "[::1]:1"}}));
  EXPECT_EQ(c.listen.at(0).tcp, (HostPort{"::1", 1}));
  EXPECT_EQ(c.upstream, UpstreamUrl{});
  EXPECT_EQ(c.threads, 2);
  EXPECT_TRUE(c.config_file.empty());
}

TEST(PrecedenceTest, UpstreamPoolingFromFileFlagAndEnvironment) {
  const EnvGetter no_env = MapEnv({});
  Args none({});
  Config c = LoadEffectiveConfig(none.argc(), none.argv(), no_env);
  EXPECT_EQ(c.upstream_pooling, UpstreamPooling::kAuto);
  Args flag({"--upstream-pooling", "dedicated"});
  c = LoadEffectiveConfig(flag.argc(), flag.argv(), no_env);
  EXPECT_EQ(c.upstream_pooling, UpstreamPooling::kDedicated);
  EXPECT_EQ(c.origins.upstream_pooling, "--upstream-pooling");
  c = LoadEffectiveConfig(flag.argc(), flag.argv(),
                          MapEnv({{"RESPSCOPE_UPSTREAM_POOLING", "auto"}}));
  EXPECT_EQ(c.upstream_pooling, UpstreamPooling::kAuto);
  EXPECT_EQ(c.origins.upstream_pooling, "RESPSCOPE_UPSTREAM_POOLING");
  Args bad({"--upstream-pooling", "shared"});
  EXPECT_THROW(LoadEffectiveConfig(bad.argc(), bad.argv(), no_env), UsageError);
  EXPECT_THROW(LoadEffectiveConfig(none.argc(), none.argv(),
                                   MapEnv({{"RESPSCOPE_UPSTREAM_POOLING", "maybe"}})),
               ConfigError);
}

TEST(PrecedenceTest, ValidateSeesTheEffectiveValues) {
  // The file alone clashes (listen on the default admin port); the flag moves admin away.
  TempFile file("listen: 127.0.0.1:9190\n");
  Args clash({"--config", file.path()});
  try {
    LoadEffectiveConfig(clash.argc(), clash.argv(), MapEnv({}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), file.path() +
                                         ":1:9: listen 127.0.0.1:9190 clashes with admin.listen "
                                         "127.0.0.1:9190 (from default)");
  }
  Args fixed({"--config", file.path(), "--admin", "127.0.0.1:9191"});
  EXPECT_NO_THROW(LoadEffectiveConfig(fixed.argc(), fixed.argv(), MapEnv({})));
  // And the environment can introduce a clash of its own, located at the variable.
  try {
    LoadEffectiveConfig(fixed.argc(), fixed.argv(),
                        MapEnv({{"RESPSCOPE_UPSTREAM", "redis://127.0.0.1:9190"}}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "RESPSCOPE_UPSTREAM: upstream redis://127.0.0.1:9190 is respscope's own listen "
              "address 127.0.0.1:9190 (from " +
                  file.path() + ":1:9): it would proxy to itself");
  }
}

struct Outcome {
  std::optional<Config> config;
  int exit_code;
  std::string out, err;
};

Outcome Startup(std::initializer_list<std::string> args, const EnvGetter& env = MapEnv({})) {
  Args a(args);
  std::ostringstream out, err;
  StartupDecision d = ResolveStartup(a.argc(), a.argv(), env, out, err);
  return {d.config, d.exit_code, out.str(), err.str()};
}

TEST(StartupTest, HelpAndVersionExitZero) {
  Outcome help = Startup({"--help"});
  EXPECT_FALSE(help.config);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.out, Usage());
  EXPECT_EQ(help.out.rfind("usage: respscope [--config FILE]", 0), 0u);
  Outcome version = Startup({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("respscope ", 0), 0u);
}

TEST(StartupTest, UsageErrorExitsTwoWithUsage) {
  Outcome o = Startup({"--thread", "2"});
  EXPECT_FALSE(o.config);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err,
            "respscope: unknown option '--thread' (did you mean '--threads'?)\n\n" + Usage());
  EXPECT_EQ(o.out, "");
}

TEST(StartupTest, CheckConfigReportsErrorsWithStatusTwo) {
  TempFile bad("limits:\n  connect_timeout: 2 seconds\n");
  Outcome o = Startup({"--config", bad.path(), "--check-config"});
  EXPECT_FALSE(o.config);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err, bad.path() +
                       ":2:20: limits.connect_timeout: expected a duration like 10ms, 2s, 5m (got "
                       "'2 seconds')\n");
  EXPECT_EQ(o.out, "");

  Outcome missing = Startup({"--config", "/nonexistent.yaml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err,
            "/nonexistent.yaml: cannot read the configuration file (No such file or directory)\n");
}

TEST(StartupTest, CheckConfigOkExitsZeroAndPrintsWarnings) {
  TempFile good("admin: {listen: 0.0.0.0:9190}\n");
  Outcome o = Startup({"--config", good.path(), "--check-config"});
  EXPECT_FALSE(o.config);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_EQ(o.out, good.path() + ": OK\n");
  EXPECT_EQ(o.err.rfind("warning: admin.listen 0.0.0.0:9190 is reachable", 0), 0u) << o.err;

  Outcome no_file = Startup({"--check-config"});
  EXPECT_EQ(no_file.exit_code, 0);
  EXPECT_EQ(no_file.out, "configuration: OK\n");
}

TEST(StartupTest, RunsWithTheEffectiveConfig) {
  Outcome o = Startup({"--threads", "3"}, MapEnv({{"RESPSCOPE_ADMIN_TOKEN", "t"}}));
  ASSERT_TRUE(o.config);
  EXPECT_EQ(o.config->threads, 3);
  EXPECT_EQ(o.config->admin.token, "t");
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "");
}

}  // namespace
}  // namespace respscope::config
