#include "proxy/commands/command_table.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "proxy/commands/commands_tsv.h"

// Counts heap allocations while armed: Find() and KeyIndices() run per command on the hot
// path and must not allocate (beyond the caller's out vector).
namespace {
thread_local bool g_count_allocs = false;
thread_local int g_allocs = 0;
}  // namespace

// noinline: GCC 12 otherwise sees free() meet a new-expression and warns
// (-Wmismatched-new-delete) although the pair is replaced consistently.
[[gnu::noinline]] void* operator new(std::size_t n) {
  if (g_count_allocs) ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace respscope::commands {
namespace {

using Argv = std::vector<std::string_view>;
using Idx = std::vector<uint32_t>;

const CommandTable& Table() { return *CommandTable::BuiltIn(); }

const CommandInfo& FindArgv(const CommandTable& t, const Argv& argv) {
  return t.Find(argv.at(0), argv.size() > 1 ? argv[1] : std::string_view());
}

Idx Keys(const CommandTable& t, const Argv& argv) {
  Idx out;
  t.KeyIndices(FindArgv(t, argv), argv, argv.size(), &out);
  return out;
}
Idx Keys(const Argv& argv) { return Keys(Table(), argv); }

bool Blocks(const CommandTable& t, const Argv& argv) {
  return t.IsBlockingCall(FindArgv(t, argv), argv);
}
bool Blocks(const Argv& argv) { return Blocks(Table(), argv); }

const CommandInfo& Named(std::string_view name) {
  const size_t bar = name.find('|');
  if (bar == std::string_view::npos) return Table().Find(name, {});
  return Table().Find(name.substr(0, bar), name.substr(bar + 1));
}

// ---------------------------------------------------------------------------------------------
// The data file.

TEST(CommandsTsv, EmbeddedFileParses) {
  std::vector<CommandInfo> infos;
  std::string error;
  ASSERT_TRUE(detail::ParseCommandsTsv(detail::kCommandsTsv, &infos, &error)) << error;
  EXPECT_GT(infos.size(), 350u);  // 7.0.15: 240 commands + 126 subcommands + waitaof
  EXPECT_EQ(Table().size(), infos.size() + 1);
}

TEST(CommandsTsv, MalformedFilesAreRejectedWithTheLine) {
  const char* kBad[] = {
      "get\t2\treadonly\tidx(1)>range(0,1,0)\tnil\t-\tshare\n"
      "set\t-3\twrite\n",                                              // 3 columns
      "get\t2\treadonly\tidx(1)>range(0,1,0)\tnil\t-\tshare",                 // no final newline
      "get\tx\treadonly\t-\tnone\t-\tshare\n",                                // arity
      "get\t0\treadonly\t-\tnone\t-\tshare\n",                                // arity 0
      "get\t2\treadonly,bogus\t-\tnone\t-\tshare\n",                          // unknown flag
      "GET\t2\treadonly\t-\tnone\t-\tshare\n",                         // uppercase name
      "get\t2\treadonly\t-\tmaybe\t-\tshare\n",                               // unknown lookup
      "get\t2\treadonly\tidx(0)>range(0,1,0)\tnone\t-\tshare\n",              // index 0
      "get\t2\treadonly\tidx(1)>range(0,0,0)\tnone\t-\tshare\n",              // step 0
      "get\t2\treadonly\tidx(1)>range(0,1,2)\tnone\t-\tshare\n",              // limit without -1
      "get\t2\treadonly\tidx(1)range(0,1,0)\tnone\t-\tshare\n",               // no '>'
      "get\t2\treadonly\tkw(STREAMS,1)>range(-1,1,2)\tnone\t-\tshare\n",      // uppercase keyword
      "get\t2\treadonly\tkw(streams,0)>range(-1,1,2)\tnone\t-\tshare\n",      // startfrom 0
      "get\t2\treadonly\tidx(1)>keynum(0,1)\tnone\t-\tshare\n",               // 2 values
      "get\t2\treadonly\tidx(1)>range(0,1,0)\tnone\tblock\tshare\n",          // keyword, not blocking
      "get\t2\treadonly\t-\tnone\t-\tshare\nget\t2\treadonly\t-\tnone\t-\tshare\n",  // duplicate
      "client|setname\t3\t-\t-\tnone\t-\tshare\n",                            // container missing
      "get\t2\treadonly\t-\tnone\t-\tsometimes\n",                   // unknown pool rule
      "get\t2\treadonly\t-\tnone\t-\n",                              // 6 columns
      "# only a comment\n",                                            // no commands
  };
  for (const char* text : kBad) {
    std::vector<CommandInfo> infos;
    std::string error;
    EXPECT_FALSE(detail::ParseCommandsTsv(text, &infos, &error)) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
  std::vector<CommandInfo> infos;
  std::string error;
  EXPECT_FALSE(detail::ParseCommandsTsv("get\t2\t-\t-\tnone\t-\tshare\nset\t-3\n", &infos, &error));
  EXPECT_NE(error.find("line 2"), std::string::npos) << error;
}

// ---------------------------------------------------------------------------------------------
// Connection roles and pool rules: decided once per table, from the name and the pool column.

TEST(Roles, ConnectionStateCommandsPinOrAreAnswered) {
  for (const char* n : {"multi", "watch", "subscribe", "psubscribe", "ssubscribe", "unsubscribe",
                        "monitor", "reset", "readonly", "readwrite", "asking", "sync",
                        "psync", "replconf", "wait", "waitaof", "script|debug", "client",
                        "client|setname", "client|id", "client|tracking", "client|reply",
                        "client|list", "client|kill"}) {
    EXPECT_EQ(Named(n).pool, PoolRule::kPin) << n;
  }
  for (const char* n : {"get", "set", "mget", "eval", "evalsha", "fcall", "exec", "discard",
                        "unwatch", "publish", "ping", "info", "script|load", "xread"}) {
    EXPECT_EQ(Named(n).pool, PoolRule::kShare) << n;
  }
  EXPECT_EQ(Named("auth").pool, PoolRule::kAuth);
  EXPECT_EQ(Named("select").pool, PoolRule::kSelect);
  EXPECT_EQ(Named("quit").pool, PoolRule::kQuit);
  EXPECT_EQ(Named("hello").pool, PoolRule::kHello);
  EXPECT_EQ(Named("client|setinfo").pool, PoolRule::kSetInfo);
  EXPECT_EQ(Named("multi").role, SessionRole::kMulti);
  EXPECT_EQ(Named("client|setname").role, SessionRole::kClientSetName);
  EXPECT_EQ(Named("sunsubscribe").role, SessionRole::kSUnsubscribe);
  EXPECT_EQ(Named("get").role, SessionRole::kNone);
  EXPECT_EQ(Table().Other().pool, PoolRule::kShare);  // net/ pins unknown commands itself
}

// ---------------------------------------------------------------------------------------------
// Find().

TEST(Find, OtherIsIdZero) {
  const CommandInfo& other = Table().Other();
  EXPECT_EQ(other.id, 0);
  EXPECT_EQ(other.name, "other");
  EXPECT_EQ(&Table().Find("nosuchcommand", {}), &other);
  EXPECT_EQ(&Table().Find("", {}), &other);
  EXPECT_EQ(&Table().Find("ge", {}), &other);
  EXPECT_EQ(&Table().Find("gett", {}), &other);
  EXPECT_EQ(&Table().Find(std::string(10000, 'g'), "x"), &other);
  EXPECT_EQ(&Table().Find(std::string_view("g\0t", 3), {}), &other);
  EXPECT_EQ(&Table().Find(std::string_view("get\0", 4), {}), &other);
  EXPECT_EQ(&Table().Find(std::string_view("evalsha\0", 8), {}), &other);
  EXPECT_EQ(&Table().Find(std::string_view("zrangebyscore\0", 14), {}), &other);
  // Bytes next to 'A'..'Z' and with the high bit set are not letters.
  EXPECT_EQ(&Table().Find("\xC7\xC5\xD4", {}), &other);  // "GET" | 0x80
  EXPECT_EQ(&Table().Find("@ET", {}), &other);
  EXPECT_EQ(&Table().Find("GE[", {}), &other);
  EXPECT_EQ(&Table().Find("ZRANGEBYSCOR\xC5", {}), &other);
  // A subcommand is only reachable through its container, as in Redis.
  EXPECT_EQ(&Table().Find("client|setname", {}), &other);
  EXPECT_EQ(&Table().Find("client|", "setname"), &other);
}

TEST(Find, IsCaseInsensitive) {
  for (std::string_view n : {"get", "GET", "Get", "gEt"}) {
    EXPECT_EQ(Table().Find(n, {}).name, "get") << n;
  }
  EXPECT_EQ(Table().Find("GEORADIUSBYMEMBER_RO", {}).name, "georadiusbymember_ro");
  EXPECT_EQ(Table().Find("ZRANGEBYSCORE", "anything").name, "zrangebyscore");
}

TEST(Find, ResolvesSubcommands) {
  EXPECT_EQ(Table().Find("CLIENT", "SetName").name, "client|setname");
  EXPECT_EQ(Table().Find("config", "GET").name, "config|get");
  EXPECT_EQ(Table().Find("XINFO", "stream").name, "xinfo|stream");
  EXPECT_EQ(Table().Find("cluster", "COUNT-FAILURE-REPORTS").name, "cluster|count-failure-reports");
  // Unknown or missing subcommand: the container itself.
  const CommandInfo& client = Table().Find("client", "nosuch");
  EXPECT_EQ(client.name, "client");
  EXPECT_TRUE(client.has_subcommands);
  EXPECT_EQ(Table().Find("client", {}).name, "client");
  EXPECT_EQ(Table().Find("client", std::string(200, 'x')).name, "client");
  EXPECT_EQ(Table().Find("CONFIG", "set|x").name, "config");
  // Not a container: the subcommand argument is ignored.
  EXPECT_EQ(Table().Find("get", "setname").name, "get");
  EXPECT_FALSE(Table().Find("get", {}).has_subcommands);
}

TEST(Find, EveryEntryIsFoundByItsNameAndId) {
  const CommandTable& t = Table();
  for (size_t id = 1; id < t.size(); ++id) {
    const CommandInfo& c = t.at(static_cast<uint16_t>(id));
    EXPECT_EQ(c.id, id);
    EXPECT_EQ(&Named(c.name), &c) << c.name;
    std::string upper = c.name;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    EXPECT_EQ(&Named(upper), &c) << upper;
    std::string mixed = c.name;
    for (size_t i = 0; i < mixed.size(); i += 2) mixed[i] = upper[i];
    EXPECT_EQ(&Named(mixed), &c) << mixed;
  }
}

// ---------------------------------------------------------------------------------------------
// Key extraction, every family.

TEST(KeyIndices, SingleMultiAndStep) {
  EXPECT_EQ(Keys({"GET", "k"}), Idx({1}));
  EXPECT_EQ(Keys({"SET", "k", "v", "EX", "10"}), Idx({1}));
  EXPECT_EQ(Keys({"MGET", "a", "b", "c"}), Idx({1, 2, 3}));
  EXPECT_EQ(Keys({"DEL", "a", "b"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"EXISTS", "a", "b", "c"}), Idx({1, 2, 3}));
  EXPECT_EQ(Keys({"MSET", "a", "1", "b", "2"}), Idx({1, 3}));
  EXPECT_EQ(Keys({"msetnx", "a", "1", "b", "2", "c", "3"}), Idx({1, 3, 5}));
  EXPECT_EQ(Keys({"SMOVE", "src", "dst", "m"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"RENAME", "a", "b"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"BITOP", "AND", "dst", "a", "b"}), Idx({2, 3, 4}));
  EXPECT_EQ(Keys({"PING"}), Idx());
  EXPECT_EQ(Keys({"nosuch", "a", "b"}), Idx());
  EXPECT_EQ(Keys({"GET"}), Idx());  // missing argument: no key, no crash
}

TEST(KeyIndices, ScriptsAndFunctions) {
  EXPECT_EQ(Keys({"EVAL", "return 1", "0"}), Idx());
  EXPECT_EQ(Keys({"EVAL", "return 1", "0", "arg"}), Idx());
  EXPECT_EQ(Keys({"EVAL", "s", "2", "a", "b", "arg"}), Idx({3, 4}));
  EXPECT_EQ(Keys({"EVALSHA", "0123abcd", "2", "a", "b"}), Idx({3, 4}));
  EXPECT_EQ(Keys({"EVAL_RO", "s", "1", "a"}), Idx({3}));
  EXPECT_EQ(Keys({"EVALSHA_RO", "x", "1", "a", "b"}), Idx({3}));
  EXPECT_EQ(Keys({"FCALL", "fn", "1", "k", "arg"}), Idx({3}));
  EXPECT_EQ(Keys({"FCALL_RO", "fn", "2", "k1", "k2"}), Idx({3, 4}));
  // A count that is not a number, negative, or with junk: no keys.
  EXPECT_EQ(Keys({"EVAL", "s", "two", "a", "b"}), Idx());
  EXPECT_EQ(Keys({"EVAL", "s", "-1", "a"}), Idx());
  EXPECT_EQ(Keys({"EVAL", "s", "1 ", "a"}), Idx());
  EXPECT_EQ(Keys({"EVAL", "s", "", "a"}), Idx());
  EXPECT_EQ(Keys({"EVAL", "s", "99999999999999999999999", "a"}), Idx());
  // More keys declared than given: clamped to the arguments.
  EXPECT_EQ(Keys({"EVALSHA", "sha", "5", "a", "b"}), Idx({3, 4}));
  EXPECT_EQ(Keys({"EVAL", "s", "9223372036854775", "a"}), Idx({3}));
  EXPECT_EQ(Keys({"EVAL", "s"}), Idx());
}

TEST(KeyIndices, NumkeysAfterDestination) {
  EXPECT_EQ(Keys({"ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"}), Idx({1, 3, 4}));
  EXPECT_EQ(Keys({"zinterstore", "dst", "1", "a"}), Idx({1, 3}));
  EXPECT_EQ(Keys({"ZDIFFSTORE", "dst", "2", "a", "b"}), Idx({1, 3, 4}));
  EXPECT_EQ(Keys({"ZUNION", "2", "a", "b", "WITHSCORES"}), Idx({2, 3}));
  EXPECT_EQ(Keys({"ZINTERCARD", "2", "a", "b", "LIMIT", "1"}), Idx({2, 3}));
  EXPECT_EQ(Keys({"SINTERCARD", "1", "a"}), Idx({2}));
  EXPECT_EQ(Keys({"ZUNIONSTORE", "dst", "x", "a"}), Idx({1}));  // bad count: dest only
}

TEST(KeyIndices, StreamsKeyword) {
  EXPECT_EQ(Keys({"XREAD", "STREAMS", "s1", "0"}), Idx({2}));
  EXPECT_EQ(Keys({"XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"}), Idx({4, 5}));
  EXPECT_EQ(Keys({"xread", "block", "0", "streams", "s1", "s2", "$", "$"}), Idx({4, 5}));
  EXPECT_EQ(Keys({"XREAD", "StReAmS", "a", "b", "c", "1", "2", "3"}), Idx({2, 3, 4}));
  EXPECT_EQ(Keys({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s1", ">"}), Idx({7}));
  // A group named "streams" is not the keyword: the search starts after GROUP g c.
  EXPECT_EQ(Keys({"XREADGROUP", "GROUP", "streams", "c", "STREAMS", "s1", "s2", ">", ">"}),
            Idx({5, 6}));
  EXPECT_EQ(Keys({"XREAD", "COUNT", "1"}), Idx());
  EXPECT_EQ(Keys({"XREAD", "STREAMS"}), Idx());
}

TEST(KeyIndices, PopFromManyKeys) {
  EXPECT_EQ(Keys({"LMPOP", "2", "a", "b", "LEFT"}), Idx({2, 3}));
  EXPECT_EQ(Keys({"ZMPOP", "1", "z", "MIN", "COUNT", "2"}), Idx({2}));
  EXPECT_EQ(Keys({"BLMPOP", "0.5", "2", "a", "b", "RIGHT"}), Idx({3, 4}));
  EXPECT_EQ(Keys({"BZMPOP", "0", "3", "a", "b", "c", "MAX"}), Idx({3, 4, 5}));
}

TEST(KeyIndices, BlockingPopsEndWithATimeout) {
  EXPECT_EQ(Keys({"BLPOP", "a", "b", "0"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"BRPOP", "a", "1.5"}), Idx({1}));
  EXPECT_EQ(Keys({"BRPOPLPUSH", "src", "dst", "0"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"BZPOPMIN", "z1", "z2", "0"}), Idx({1, 2}));
  EXPECT_EQ(Keys({"BZPOPMAX", "z1", "0"}), Idx({1}));
}

TEST(KeyIndices, OptionalDestinations) {
  EXPECT_EQ(Keys({"SORT", "k"}), Idx({1}));
  EXPECT_EQ(Keys({"SORT", "k", "STORE", "dst"}), Idx({1, 3}));
  EXPECT_EQ(Keys({"sort", "k", "BY", "w_*", "GET", "#", "store", "dst", "LIMIT", "0", "10"}),
            Idx({1, 7}));
  EXPECT_EQ(Keys({"SORT", "k", "STORE", "d1", "STORE", "d2"}), Idx({1, 5}));  // last wins
  EXPECT_EQ(Keys({"SORT_RO", "k", "BY", "w_*"}), Idx({1}));
  EXPECT_EQ(Keys({"GEORADIUS", "k", "0", "0", "10", "km", "STORE", "dst"}), Idx({1, 7}));
  EXPECT_EQ(Keys({"GEORADIUS", "k", "0", "0", "10", "km", "STOREDIST", "d"}), Idx({1, 7}));
  EXPECT_EQ(Keys({"GEORADIUS", "k", "0", "0", "10", "km", "WITHDIST"}), Idx({1}));
  EXPECT_EQ(Keys({"GEORADIUSBYMEMBER", "k", "m", "10", "km", "STORE", "d"}), Idx({1, 6}));
  EXPECT_EQ(Keys({"GEOSEARCHSTORE", "dst", "src", "FROMMEMBER", "m", "BYRADIUS", "1", "km"}),
            Idx({1, 2}));
}

TEST(KeyIndices, MigrateKeysKeyword) {
  EXPECT_EQ(Keys({"MIGRATE", "h", "6379", "k", "0", "5000"}), Idx({3}));
  // With KEYS the key argument is "" (reported; callers skip empty keys) and the keys follow
  // KEYS, searched from the end as Redis does.
  EXPECT_EQ(Keys({"MIGRATE", "h", "6379", "", "0", "5000", "COPY", "KEYS", "a", "b"}),
            Idx({3, 8, 9}));
  EXPECT_EQ(Keys({"migrate", "h", "6379", "", "0", "5000", "AUTH", "pw", "keys", "a"}),
            Idx({3, 9}));
}

TEST(KeyIndices, SubcommandsWithKeys) {
  EXPECT_EQ(Keys({"OBJECT", "ENCODING", "k"}), Idx({2}));
  EXPECT_EQ(Keys({"object", "freq", "k"}), Idx({2}));
  EXPECT_EQ(Keys({"OBJECT", "HELP"}), Idx());
  EXPECT_EQ(Keys({"MEMORY", "USAGE", "k", "SAMPLES", "5"}), Idx({2}));
  EXPECT_EQ(Keys({"XINFO", "STREAM", "s", "FULL"}), Idx({2}));
  EXPECT_EQ(Keys({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"}), Idx({2}));
  EXPECT_EQ(Keys({"CLIENT", "SETNAME", "x"}), Idx());
  EXPECT_EQ(Keys({"CONFIG", "GET", "maxmemory"}), Idx());
}

TEST(KeyIndices, ChannelsAreNotKeys) {
  EXPECT_EQ(Keys({"SPUBLISH", "ch", "msg"}), Idx());
  EXPECT_EQ(Keys({"SSUBSCRIBE", "a", "b"}), Idx());
  EXPECT_EQ(Keys({"SUBSCRIBE", "a"}), Idx());
}

TEST(KeyIndices, TruncatedArgumentsAreNeverIndexed) {
  // Only 3 of 7 arguments captured: positions follow argc, indices stay inside args.
  const Argv mset = {"MSET", "a", "1"};
  Idx out;
  Table().KeyIndices(Named("mset"), mset, 7, &out);
  EXPECT_EQ(out, Idx({1}));
  // The count of EVAL was not captured: no keys.
  out.clear();
  const Argv eval = {"EVAL", "s"};
  Table().KeyIndices(Named("eval"), eval, 5, &out);
  EXPECT_EQ(out, Idx());
  // BLPOP's keys end before the timeout, counted from argc.
  out.clear();
  const Argv blpop = {"BLPOP", "a", "b", "c"};
  Table().KeyIndices(Named("blpop"), blpop, 6, &out);
  EXPECT_EQ(out, Idx({1, 2, 3}));
  // An argc smaller than args is believed (nothing past it).
  out.clear();
  const Argv mget = {"MGET", "a", "b", "c"};
  Table().KeyIndices(Named("mget"), mget, 2, &out);
  EXPECT_EQ(out, Idx({1}));
  // Appends, does not clear.
  Table().KeyIndices(Named("get"), Argv{"GET", "k"}, 2, &out);
  EXPECT_EQ(out, Idx({1, 1}));
}

TEST(HotPath, FindKeyIndicesAndIsBlockingCallDoNotAllocate) {
  const CommandTable& t = Table();
  const Argv argvs[] = {
      {"GET", "k"},
      {"CONFIG", "RESETSTAT"},
      {"cluster", "COUNT-FAILURE-REPORTS", "id"},
      {"EVALSHA", "sha", "2", "a", "b"},
      {"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"},
      {"MIGRATE", "h", "1", "", "0", "1", "KEYS", "a", "b"},
      {"averyveryverylongunknowncommandname", "x"},
  };
  Idx out;
  out.reserve(64);
  g_allocs = 0;
  g_count_allocs = true;
  size_t found = 0;
  for (const Argv& argv : argvs) {
    const CommandInfo& info = FindArgv(t, argv);
    found += info.id != 0;
    t.KeyIndices(info, argv, argv.size(), &out);
    found += t.IsBlockingCall(info, argv);
  }
  g_count_allocs = false;
  EXPECT_EQ(g_allocs, 0);
  // The counter itself works.
  g_count_allocs = true;
  ::operator delete(::operator new(16));
  g_count_allocs = false;
  EXPECT_EQ(g_allocs, 1);
  EXPECT_EQ(found, 7u);  // six known, one blocking call
  EXPECT_EQ(out.size(), 1u + 0 + 0 + 2 + 1 + 3);
}

// ---------------------------------------------------------------------------------------------
// Lookups and flags.

TEST(Lookup, Kinds) {
  for (auto n : {"get", "getex", "getdel", "hget", "lindex", "zscore", "zrank", "zrevrank"}) {
    EXPECT_EQ(Named(n).lookup, LookupKind::kNilIsMiss) << n;
  }
  EXPECT_EQ(Named("mget").lookup, LookupKind::kElementNilIsMiss);
  EXPECT_EQ(Named("hmget").lookup, LookupKind::kFieldsNilIsMiss);
  for (auto n : {"hgetall", "smembers", "lrange", "zrange", "hkeys", "hvals", "xrange"}) {
    EXPECT_EQ(Named(n).lookup, LookupKind::kEmptyIsMiss) << n;
  }
  EXPECT_EQ(Named("hexists").lookup, LookupKind::kZeroIsMiss);
  EXPECT_EQ(Named("sismember").lookup, LookupKind::kZeroIsMiss);
  EXPECT_EQ(Named("exists").lookup, LookupKind::kCountKeys);
  for (auto n : {"set", "strlen", "hstrlen", "scard", "llen", "zcard", "hlen", "lpop", "rpop",
                 "spop", "incr", "client|setname"}) {
    EXPECT_EQ(Named(n).lookup, LookupKind::kNone) << n;
  }
  EXPECT_EQ(Table().Other().lookup, LookupKind::kNone);
}

TEST(Flags, FromCommandAndOverlay) {
  EXPECT_EQ(Named("get").flags & (kFlagRead | kFlagWrite | kFlagFast), kFlagRead | kFlagFast);
  EXPECT_TRUE(Named("set").flags & kFlagWrite);
  EXPECT_TRUE(Named("subscribe").flags & kFlagPubSub);
  EXPECT_TRUE(Named("config|set").flags & kFlagAdmin);
  EXPECT_TRUE(Named("eval").flags & kFlagMovableKeys);
  EXPECT_TRUE(Named("eval").flags & kFlagNoScript);
  EXPECT_TRUE(Named("echo").flags & kFlagStale);
  EXPECT_FALSE(Named("ping").flags & kFlagStale);
  EXPECT_TRUE(Named("info").flags & kFlagLoading);
  for (auto n : {"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro", "script|load"}) {
    EXPECT_TRUE(Named(n).flags & kFlagScript) << n;
  }
  EXPECT_FALSE(Named("script|flush").flags & kFlagScript);
  for (auto n : {"auth", "hello", "migrate", "config|set", "acl|setuser"}) {
    EXPECT_TRUE(Named(n).flags & kFlagSensitiveArgs) << n;
  }
  EXPECT_FALSE(Named("config|get").flags & kFlagSensitiveArgs);
  for (auto n : {"expire", "pexpire", "expireat", "pexpireat"}) {
    EXPECT_TRUE(Named(n).flags & kFlagEchoesArgs) << n;
  }
  EXPECT_FALSE(Named("set").flags & kFlagEchoesArgs);
  for (auto n : {"blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax",
                 "bzmpop", "xread", "xreadgroup", "wait", "waitaof"}) {
    EXPECT_TRUE(Named(n).flags & kFlagBlocking) << n;
  }
  EXPECT_EQ(Named("xread").blocking_keyword, "block");
  EXPECT_EQ(Named("xreadgroup").blocking_keyword, "block");
  EXPECT_EQ(Named("wait").blocking_keyword, "");
  EXPECT_EQ(Named("waitaof").arity, 4);
  EXPECT_EQ(Named("get").arity, 2);
  EXPECT_EQ(Named("mset").arity, -3);
  EXPECT_EQ(Named("client|setname").arity, 3);
  EXPECT_EQ(Table().Other().flags, 0u);
}

TEST(IsBlockingCall, FollowsTheFlagAndTheKeyword) {
  EXPECT_TRUE(Blocks({"BLPOP", "a", "0"}));
  EXPECT_TRUE(Blocks({"bzpopmin", "z", "1"}));
  EXPECT_TRUE(Blocks({"WAIT", "1", "0"}));
  EXPECT_TRUE(Blocks({"WAITAOF", "1", "0", "0"}));
  EXPECT_FALSE(Blocks({"GET", "k"}));
  EXPECT_FALSE(Blocks({"nosuch", "block"}));
  EXPECT_FALSE(Blocks({"XREAD", "STREAMS", "s", "0"}));
  EXPECT_FALSE(Blocks({"XREAD", "COUNT", "5", "STREAMS", "s", "0"}));
  EXPECT_TRUE(Blocks({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}));
  EXPECT_TRUE(Blocks({"xread", "count", "1", "block", "100", "streams", "s", "$"}));
  EXPECT_FALSE(Blocks({"XREAD", "STREAMS", "block", "0"}));  // a stream named "block"
  EXPECT_TRUE(Blocks({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"}));
  EXPECT_FALSE(Blocks({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"}));
  EXPECT_FALSE(Blocks({"XREADGROUP", "GROUP", "block", "block", "STREAMS", "block", ">"}));
}

// ---------------------------------------------------------------------------------------------
// FromCommandReply on hand-made replies.

// Appends rather than `"literal" + std::string`: GCC 12 warns falsely (-Wrestrict) on that.
std::string Bulk(std::string_view s) {
  std::string out(1, '$');
  out.append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n");
  return out;
}

// GET in RESP2, Redis 7 layout.
const std::string kGetResp2 =
    "*10\r\n" + Bulk("get") +
    ":2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
    "*1\r\n+@read\r\n*0\r\n"
    "*1\r\n*6\r\n" +
    Bulk("flags") + "*1\r\n+RO\r\n" + Bulk("begin_search") + "*4\r\n" + Bulk("type") +
    Bulk("index") + Bulk("spec") + "*2\r\n" + Bulk("index") + ":1\r\n" + Bulk("find_keys") +
    "*4\r\n" + Bulk("type") + Bulk("range") + Bulk("spec") + "*6\r\n" + Bulk("lastkey") + ":0\r\n" +
    Bulk("keystep") + ":1\r\n" + Bulk("limit") + ":0\r\n*0\r\n";

// XREAD in RESP3: maps, sets, an attribute, a verbatim string.
const std::string kXreadResp3 =
    "*10\r\n" + Bulk("xread") +
    ":-4\r\n~3\r\n+readonly\r\n+blocking\r\n+movablekeys\r\n"
    ":0\r\n:0\r\n:0\r\n~1\r\n+@read\r\n*0\r\n"
    "*1\r\n%3\r\n+flags\r\n~1\r\n+RO\r\n+begin_search\r\n|1\r\n+ttl\r\n:3\r\n"
    "%2\r\n+type\r\n=11\r\ntxt:keyword\r\n+spec\r\n%2\r\n+keyword\r\n+STREAMS\r\n"
    "+startfrom\r\n:1\r\n+find_keys\r\n%2\r\n+type\r\n+range\r\n+spec\r\n%3\r\n+lastkey\r\n"
    ":-1\r\n+keystep\r\n:1\r\n+limit\r\n:2\r\n*0\r\n";

// A container with one subcommand, key spec with a keynum and an unknown spec.
const std::string kObjectResp2 = "*10\r\n" + Bulk("OBJECT") +
                                 ":-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n"
                                 "*1\r\n*10\r\n" +
                                 Bulk("object|encoding") +
                                 ":3\r\n*1\r\n+readonly\r\n:2\r\n:2\r\n:1\r\n"
                                 "*0\r\n*0\r\n*1\r\n*4\r\n" +
                                 Bulk("begin_search") +
                                 "*4\r\n+type\r\n+index\r\n+spec\r\n"
                                 "*2\r\n+index\r\n:2\r\n" +
                                 Bulk("find_keys") +
                                 "*4\r\n+type\r\n+range\r\n+spec\r\n"
                                 "*6\r\n+lastkey\r\n:0\r\n+keystep\r\n:1\r\n+limit\r\n:0\r\n*0\r\n";

const std::string kSortResp2 =
    "*10\r\n" + Bulk("sort") +
    ":-2\r\n*2\r\n+write\r\n+movablekeys\r\n:1\r\n:1\r\n:1\r\n"
    "*0\r\n*0\r\n*1\r\n*4\r\n+begin_search\r\n*4\r\n+type\r\n+unknown\r\n+spec\r\n*0\r\n"
    "+find_keys\r\n*4\r\n+type\r\n+unknown\r\n+spec\r\n*0\r\n*0\r\n";

// Redis 6 layout: seven elements, first/last/step only.
const std::string kMsetRedis6 =
    "*7\r\n" + Bulk("mset") + ":-3\r\n*1\r\n+write\r\n:1\r\n:-1\r\n:2\r\n*0\r\n";

std::string Reply(std::initializer_list<std::string> entries) {
  std::string out(1, '*');
  out.append(std::to_string(entries.size())).append("\r\n");
  for (const std::string& e : entries) out += e;
  return out;
}

TEST(FromCommandReply, HandMadeRepliesInBothProtocols) {
  std::string error;
  auto t = CommandTable::FromCommandReply(
      Reply({kGetResp2, kXreadResp3, kObjectResp2, kSortResp2, kMsetRedis6, "_\r\n"}), &error);
  ASSERT_NE(t, nullptr) << error;
  EXPECT_EQ(t->size(), 7u);  // other, get, xread, object, object|encoding, sort, mset
  EXPECT_EQ(Keys(*t, {"GET", "k"}), Idx({1}));
  EXPECT_EQ(t->Find("get", {}).flags, kFlagRead | kFlagFast);
  EXPECT_EQ(t->Find("get", {}).lookup, LookupKind::kNilIsMiss);  // from the built-in table
  EXPECT_EQ(Keys(*t, {"XREAD", "STREAMS", "a", "b", "0", "0"}), Idx({2, 3}));
  EXPECT_EQ(t->Find("xread", {}).blocking_keyword, "block");
  EXPECT_TRUE(Blocks(*t, {"XREAD", "BLOCK", "1", "STREAMS", "a", "0"}));
  EXPECT_FALSE(Blocks(*t, {"XREAD", "STREAMS", "a", "0"}));
  EXPECT_EQ(t->Find("OBJECT", "Encoding").name, "object|encoding");
  EXPECT_EQ(Keys(*t, {"OBJECT", "ENCODING", "k"}), Idx({2}));
  EXPECT_EQ(Keys(*t, {"SORT", "k", "STORE", "d"}), Idx({1, 3}));  // built-in specs
  EXPECT_EQ(Keys(*t, {"MSET", "a", "1", "b", "2"}), Idx({1, 3}));
  EXPECT_EQ(t->Find("set", {}).id, 0);
}

TEST(FromCommandReply, SubcommandWithoutContainerGetsOne) {
  const std::string entry =
      "*10\r\n" + Bulk("client|setname") + ":3\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n*0\r\n";
  std::string error;
  auto t = CommandTable::FromCommandReply(Reply({entry}), &error);
  ASSERT_NE(t, nullptr) << error;
  EXPECT_EQ(t->Find("CLIENT", "SETNAME").name, "client|setname");
  EXPECT_EQ(t->Find("client", "kill").name, "client");
}

TEST(FromCommandReply, MalformedRepliesFail) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  std::string attrs;
  for (int i = 0; i < 100000; ++i) attrs += "|1\r\n+a\r\n:1\r\n";
  attrs += "*0\r\n";
  const std::string cases[] = {
      "",
      "*",
      "*1",
      "*1\r",
      "*1\r\n",
      "*1\r\n*10\r\n",
      "*-2\r\n",
      "*x\r\n",
      "*01\r\n_\r\n",
      "*99999999999\r\n:1\r\n",
      "*1\r\n$5\r\nab\r\n",
      "*1\r\n$2\r\nabcd\r\n",
      "*1\r\n$-5\r\n",
      "*1\r\n:12a\r\n",
      "*1\r\n#x\r\n",
      "*1\r\n=3\r\nabc\r\n",
      "*1\r\n?\r\n",
      "*1\r\n@1\r\n",
      "*1\r\n_x\r\n",
      "*0\r\n",       // no command at all
      "*1\r\n_\r\n",  // COMMAND INFO of one unknown name
      "-ERR unknown command\r\n",
      "+OK\r\n",
      ":1\r\n",
      "*0\r\n*0\r\n",                                                   // trailing bytes
      "*1\r\n*3\r\n" + Bulk("get") + ":2\r\n*0\r\n",                    // entry too short
      "*1\r\n*6\r\n" + Bulk("get") + "+2\r\n*0\r\n:0\r\n:0\r\n:0\r\n",  // arity not integer
      "*1\r\n*6\r\n:1\r\n:2\r\n*0\r\n:0\r\n:0\r\n:0\r\n",               // name not string
      "*1\r\n*10\r\n" + Bulk("get") + ":2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n:5\r\n*0\r\n",
      "*1\r\n*10\r\n" + Bulk("get") +
          ":2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*1\r\n*0\r\n*0\r\n",
      "*1\r\n*10\r\n" + Bulk("") + ":2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*0\r\n*0\r\n*0\r\n*0\r\n",
      deep,
      attrs,
  };
  for (const std::string& reply : cases) {
    std::string error;
    EXPECT_EQ(CommandTable::FromCommandReply(reply, &error), nullptr) << reply.substr(0, 80);
    EXPECT_FALSE(error.empty()) << reply.substr(0, 80);
  }
  // A key spec whose values make no sense (step 0, index 0) is an error.
  std::string bad_step = kGetResp2;
  bad_step.replace(bad_step.find("keystep\r\n:1"), 11, "keystep\r\n:0");
  std::string bad_index = kGetResp2;
  bad_index.replace(bad_index.find("index\r\n:1"), 9, "index\r\n:0");
  for (const std::string& entry : {bad_step, bad_index}) {
    std::string error;
    EXPECT_EQ(CommandTable::FromCommandReply(Reply({entry}), &error), nullptr);
    EXPECT_FALSE(error.empty());
  }
  // No error pointer: still fails cleanly.
  EXPECT_EQ(CommandTable::FromCommandReply("*1\r\n", nullptr), nullptr);
}

TEST(FromCommandReply, EveryPrefixAndRandomCorruptionIsHandled) {
  const std::string good = Reply({kGetResp2, kXreadResp3, kObjectResp2, kSortResp2});
  std::string error;
  ASSERT_NE(CommandTable::FromCommandReply(good, &error), nullptr) << error;
  for (size_t n = 0; n < good.size(); ++n) {
    error.clear();
    EXPECT_EQ(CommandTable::FromCommandReply(good.substr(0, n), &error), nullptr) << n;
    EXPECT_FALSE(error.empty()) << n;
  }
  // Corrupted bytes must never crash; they may or may not still parse.
  std::mt19937 rng(42);
  int parsed = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string bad = good;
    for (int k = 0; k < 3; ++k) bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
    error.clear();
    auto t = CommandTable::FromCommandReply(bad, &error);
    if (t) {
      ++parsed;
      Idx out;
      t->KeyIndices(t->Find("get", {}), Argv{"get", "k"}, 2, &out);
    } else {
      EXPECT_FALSE(error.empty());
    }
  }
  EXPECT_LT(parsed, 3000);
}

// ---------------------------------------------------------------------------------------------
// Conformance with a real redis-server: COMMAND in RESP2 and RESP3 gives the built-in table.

class RedisServer {
 public:
  bool Start(std::string* error) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = FreePort();
      if (port_ == 0) continue;
      pid_ = fork();
      if (pid_ == 0) {
        const int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        const std::string port = std::to_string(port_);
        execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               static_cast<char*>(nullptr));
        _exit(127);
      }
      if (pid_ < 0) {
        *error = "fork failed";
        return false;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken or no binary
          pid_ = -1;
          break;
        }
        std::string pong;
        if (Roundtrip("*1\r\n$4\r\nPING\r\n", "", &pong) && pong == "+PONG\r\n") return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      Stop();
    }
    *error = "redis-server did not start";
    return false;
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 200; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  ~RedisServer() { Stop(); }

  // Sends `setup` (whose replies are dropped) then `request` on one new connection and
  // returns the raw reply bytes of `request`. Each is followed by an ECHO of a marker so that
  // the end of a reply is known without parsing it.
  bool Roundtrip(const std::string& request, const std::string& setup, std::string* reply) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    std::string got;
    if (ok && !setup.empty()) ok = Exchange(fd, setup, "respscope-setup-end", &got);
    if (ok) ok = Exchange(fd, request, "respscope-reply-end", reply);
    close(fd);
    return ok;
  }

 private:
  static int FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  static bool Exchange(int fd, const std::string& request, const std::string& marker,
                       std::string* reply) {
    const std::string echo =
        "*2\r\n$4\r\nECHO\r\n$" + std::to_string(marker.size()) + "\r\n" + marker + "\r\n";
    const std::string tail = "$" + std::to_string(marker.size()) + "\r\n" + marker + "\r\n";
    const std::string out = request + echo;
    if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      return false;
    }
    std::string in;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (in.size() < tail.size() || in.compare(in.size() - tail.size(), tail.size(), tail)) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[65536];
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<size_t>(n));
    }
    *reply = in.substr(0, in.size() - tail.size());
    return true;
  }

  int port_ = 0;
  pid_t pid_ = -1;
};

bool SameSpecs(const std::vector<KeySpec>& a, const std::vector<KeySpec>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const KeySpec& x = a[i];
    const KeySpec& y = b[i];
    if (x.begin != y.begin || x.find != y.find || x.keystep != y.keystep) return false;
    if (x.begin == KeySpec::Begin::kIndex && x.begin_index != y.begin_index) return false;
    if (x.begin == KeySpec::Begin::kKeyword &&
        (x.keyword != y.keyword || x.keyword_startfrom != y.keyword_startfrom)) {
      return false;
    }
    if (x.find == KeySpec::Find::kRange && (x.lastkey != y.lastkey || x.limit != y.limit)) {
      return false;
    }
    if (x.find == KeySpec::Find::kKeynum &&
        (x.keynumidx != y.keynumidx || x.firstkey != y.firstkey)) {
      return false;
    }
  }
  return true;
}

const std::vector<Argv>& SampleArgvs() {
  static const std::vector<Argv> kSamples = {
      {"GET", "k"},
      {"SET", "k", "v"},
      {"MGET", "a", "b"},
      {"MSET", "a", "1", "b", "2"},
      {"DEL", "a", "b", "c"},
      {"EVAL", "s", "2", "a", "b", "x"},
      {"EVALSHA", "sha", "1", "a"},
      {"EVAL", "s", "nope", "a"},
      {"FCALL", "f", "1", "k"},
      {"ZUNIONSTORE", "d", "2", "a", "b"},
      {"XREAD", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"},
      {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"},
      {"LMPOP", "2", "a", "b", "LEFT"},
      {"BLMPOP", "0", "1", "a", "LEFT"},
      {"SORT", "k", "STORE", "d"},
      {"SORT_RO", "k"},
      {"GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d"},
      {"MIGRATE", "h", "1", "", "0", "1", "KEYS", "a", "b"},
      {"OBJECT", "ENCODING", "k"},
      {"MEMORY", "USAGE", "k"},
      {"BITOP", "OR", "d", "a", "b"},
      {"BLPOP", "a", "b", "0"},
      {"BRPOPLPUSH", "a", "b", "0"},
      {"BLMOVE", "a", "b", "LEFT", "LEFT", "0"},
      {"BZPOPMIN", "a", "0"},
      {"WAIT", "1", "0"},
      {"CLIENT", "SETNAME", "x"},
      {"SPUBLISH", "ch", "m"},
      {"nosuch", "a"},
  };
  return kSamples;
}

class Conformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("command -v redis-server >/dev/null 2>&1") != 0) return;
    server_ = new RedisServer();
    std::string error;
    if (!server_->Start(&error)) {
      start_error_ = error;
      return;
    }
    const std::string command = "*1\r\n$7\r\nCOMMAND\r\n";
    if (!server_->Roundtrip(command, "", &resp2_) ||
        !server_->Roundtrip(command, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", &resp3_)) {
      start_error_ = "could not read the COMMAND reply";
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "redis-server is not installed";
    ASSERT_TRUE(start_error_.empty()) << start_error_;
  }

  static void ExpectAgreesWithBuiltIn(const CommandTable& t) {
    const CommandTable& b = Table();
    size_t matched = 0;
    for (size_t id = 1; id < t.size(); ++id) {
      const CommandInfo& c = t.at(static_cast<uint16_t>(id));
      const CommandInfo& bc = Named(c.name);
      ASSERT_EQ(bc.name, c.name) << "not in the built-in table: " << c.name;
      EXPECT_EQ(bc.arity, c.arity) << c.name;
      EXPECT_EQ(bc.flags, c.flags) << c.name;
      EXPECT_TRUE(SameSpecs(bc.key_specs, c.key_specs)) << c.name;
      EXPECT_EQ(bc.lookup, c.lookup) << c.name;
      EXPECT_EQ(bc.blocking_keyword, c.blocking_keyword) << c.name;
      EXPECT_EQ(bc.has_subcommands, c.has_subcommands) << c.name;
      EXPECT_EQ(bc.pool, c.pool) << c.name;
      EXPECT_EQ(bc.role, c.role) << c.name;
      ++matched;
    }
    // Everything built in is known to the server, but what is newer than 7.0.
    EXPECT_EQ(matched + 2, b.size() - 1) << "built-in only: waitaof, client|setinfo";
    EXPECT_TRUE(t.from_upstream());
    EXPECT_FALSE(b.from_upstream());
    EXPECT_EQ(t.Find("waitaof", {}).id, 0);
    for (const Argv& argv : SampleArgvs()) {
      const std::string text = std::string(argv[0]) + " " + std::string(argv[1]);
      EXPECT_EQ(FindArgv(t, argv).name, FindArgv(b, argv).name) << text;
      EXPECT_EQ(Keys(t, argv), Keys(b, argv)) << text;
      EXPECT_EQ(Blocks(t, argv), Blocks(b, argv)) << text;
    }
  }

  static inline RedisServer* server_ = nullptr;
  static inline std::string start_error_;
  static inline std::string resp2_;
  static inline std::string resp3_;
};

TEST_F(Conformance, Resp2CommandReplyMatchesBuiltIn) {
  ASSERT_EQ(resp2_.substr(0, 1), "*");
  std::string error;
  auto t = CommandTable::FromCommandReply(resp2_, &error);
  ASSERT_NE(t, nullptr) << error;
  ExpectAgreesWithBuiltIn(*t);
}

TEST_F(Conformance, Resp3CommandReplyMatchesBuiltIn) {
  // RESP3 proper: flags come as sets and key specs as maps.
  ASSERT_NE(resp3_.find("~"), std::string::npos);
  ASSERT_NE(resp3_.find("%"), std::string::npos);
  std::string error;
  auto t = CommandTable::FromCommandReply(resp3_, &error);
  ASSERT_NE(t, nullptr) << error;
  ExpectAgreesWithBuiltIn(*t);
}

TEST_F(Conformance, CorruptedRealRepliesFailCleanly) {
  std::mt19937 rng(7);
  for (const std::string* good : {&resp2_, &resp3_}) {
    ASSERT_FALSE(good->empty());
    for (int round = 0; round < 100; ++round) {
      std::string bad = *good;
      if (round % 2 == 0) {
        bad.resize(rng() % bad.size());  // truncated anywhere
      } else {
        for (int k = 0; k < 4; ++k) bad[rng() % bad.size()] = static_cast<char>(rng() % 256);
      }
      std::string error;
      auto t = CommandTable::FromCommandReply(bad, &error);
      if (round % 2 == 0) {
        EXPECT_EQ(t, nullptr) << bad.size();
      }
      EXPECT_TRUE(t != nullptr || !error.empty());
    }
  }
}

TEST_F(Conformance, CommandInfoOfSomeNames) {
  std::string reply;
  const std::string request =
      "*5\r\n$7\r\nCOMMAND\r\n$4\r\nINFO\r\n$3\r\nGET\r\n$6\r\nnosuch\r\n$14\r\nclient|setname\r\n";
  ASSERT_TRUE(server_->Roundtrip(request, "", &reply));
  std::string error;
  auto t = CommandTable::FromCommandReply(reply, &error);
  ASSERT_NE(t, nullptr) << error;
  EXPECT_EQ(t->Find("get", {}).lookup, LookupKind::kNilIsMiss);
  EXPECT_EQ(t->Find("nosuch", {}).id, 0);
  EXPECT_EQ(t->Find("client", "setname").name, "client|setname");
  EXPECT_EQ(t->Find("set", {}).id, 0);
}

}  // namespace
}  // namespace respscope::commands
