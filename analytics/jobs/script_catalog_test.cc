#include "analytics/jobs/script_catalog.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace respscope::analytics::jobs {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// sha-map-<lib>-<ver>.txt: "<sha1> <name-numkeys> <size>" per line, written by
// tests/fixtures/sha_maps.js with node's own SHA1 of the body each package hands to ioredis.
std::map<std::string, std::string> ShaMap(const std::string& lib) {
  std::map<std::string, std::string> out;
  std::ifstream in(fs::path(RESPSCOPE_FIXTURES_DIR) / "sha-maps" / ("sha-map-" + lib + ".txt"));
  std::string sha, name, size;
  while (in >> sha >> name >> size) out[name] = sha;
  return out;
}

// The body ioredis sends: the template literal `const content = \`...\`;` of the generated
// scripts/*.js (the shipped files contain no escapes; checked by comparing SHAs).
std::string ExtractContent(const std::string& js) {
  const std::string open = "const content = `";
  const size_t a = js.find(open);
  if (a == std::string::npos) return {};
  const size_t b = js.find("`;", a + open.size());
  if (b == std::string::npos) return {};
  return js.substr(a + open.size(), b - a - open.size());
}

std::vector<std::string> Tokens(std::initializer_list<std::string_view> suffixes,
                                std::string_view base = "bull:q:") {
  std::vector<std::string> keys;
  for (std::string_view s : suffixes) keys.push_back(std::string(base) + std::string(s));
  return keys;
}

std::optional<ScriptIdentity> Shape(const std::vector<std::string>& keys, size_t argc = 0) {
  static const QueueKeyParser parser({"bull", "{bq}"});
  std::vector<KeyToken> tokens;
  for (const auto& k : keys) tokens.push_back(parser.Parse(k).token);
  std::vector<std::string_view> argv(argc, "x");
  return IdentifyShape(tokens, argv);
}

// Every script shipped by bullmq 6.7.0, bullmq 5.81.5 and bull 4.16.5 is identified by its body
// alone, with the right name, numkeys and family, and its SHA1 is the one on the wire.
TEST(ScriptCatalog, IdentifiesEveryShippedScript) {
  struct Package {
    std::string lib;
    std::string dir;
    Family family;
    size_t scripts;
  };
  const Package packages[] = {
      {"bullmq-6.7.0", "bullmq/dist/cjs/scripts", Family::kBullMQ, 64},
      {"bullmq-5.81.5", "bullmq5/dist/cjs/scripts", Family::kBullMQ, 52},
      {"bull-4.16.5", "bull/lib/scripts", Family::kBull, 26},
  };
  // The ctest fixture jobs_node_modules installs them (npm ci) when they are missing.
  const fs::path modules = RESPSCOPE_NODE_MODULES_DIR;
  size_t checked = 0;
  for (const Package& pkg : packages) {
    const auto shas = ShaMap(pkg.lib);
    ASSERT_EQ(shas.size(), pkg.scripts) << "tests/fixtures/sha-maps/sha-map-" << pkg.lib
                                        << ".txt (node tests/fixtures/sha_maps.js)";
    const fs::path dir = modules / pkg.dir;
    ASSERT_TRUE(fs::exists(dir)) << dir << ": npm ci --prefix tests/e2e/node";
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string file = entry.path().filename().string();
      if (entry.path().extension() != ".js" || file == "index.js") continue;
      const std::string stem = entry.path().stem().string();  // e.g. moveToFinished-14
      const std::string body = ExtractContent(ReadFile(entry.path()));
      ASSERT_FALSE(body.empty()) << entry.path();
      const ShaHex sha = Sha1Hex(body);
      ASSERT_TRUE(shas.contains(stem)) << pkg.lib << " " << stem;
      EXPECT_EQ(std::string(sha.data(), sha.size()), shas.at(stem)) << pkg.lib << " " << stem;
      auto id = IdentifyBody(body);
      ASSERT_TRUE(id) << pkg.lib << " " << stem;
      EXPECT_EQ(std::string(id->name) + "-" + std::to_string(id->numkeys), stem) << pkg.lib;
      if (id->op != ScriptOp::kOther && id->op != ScriptOp::kSaveStacktrace) {
        EXPECT_EQ(id->family, pkg.family) << pkg.lib << " " << stem;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 64u + 52u + 26u);  // every script has a file; every file was read
}

TEST(ScriptCatalog, HeaderFingerprintsWithoutPackages) {
  // Same header line, family from XADD: Bull's addJob vs BullMQ's addStandardJob.
  const std::string bullmq_add =
      "--[[\n  Adds a job to the queue by doing the following:\n    KEYS[1] 'wait',\n"
      "    KEYS[9] marker key\n]]\nrcall(\"XADD\", KEYS[8], '*')\n";
  const std::string bull_add =
      "--[[\n  Adds a job to the queue by doing the following:\n      KEYS[6] 'priority'\n]]\n"
      "rcall(\"PUBLISH\", ARGV[1] .. 'waiting@', jobId)\n";
  auto a = IdentifyBody(bullmq_add);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->op, ScriptOp::kAddStandardJob);
  EXPECT_EQ(a->family, Family::kBullMQ);
  EXPECT_EQ(a->numkeys, 9);
  auto b = IdentifyBody(bull_add);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->op, ScriptOp::kAddJob);
  EXPECT_EQ(b->family, Family::kBull);
  EXPECT_EQ(b->numkeys, 6);
  // removeJob-2 vs removeUnprocessedChildren-2: KEYS[2]'s documentation.
  auto rj = IdentifyBody(
      "--[[\n    Remove a job from all the statuses it may be in as well as all its data.\n"
      "      KEYS[1] jobKey\n      KEYS[2] repeat key\n]]\nrcall('XADD')");
  ASSERT_TRUE(rj);
  EXPECT_EQ(rj->op, ScriptOp::kRemoveJob);
  auto ruc = IdentifyBody(
      "--[[\n    Remove a job from all the statuses it may be in as well as all its data.\n"
      "      KEYS[1] jobKey\n      KEYS[2] meta key\n]]\nrcall('XADD')");
  ASSERT_TRUE(ruc);
  EXPECT_EQ(ruc->name, "removeUnprocessedChildren");
  EXPECT_EQ(ruc->op, ScriptOp::kOther);
  // Not ours.
  EXPECT_FALSE(IdentifyBody("return redis.call('GET', KEYS[1])"));
  EXPECT_FALSE(IdentifyBody("--[[\n  Something else entirely\n]]\nreturn 1"));
  EXPECT_FALSE(IdentifyBody("--[[ unterminated header"));
  EXPECT_FALSE(IdentifyBody(""));
}

TEST(ScriptCatalog, ShaHelpers) {
  const ShaHex empty = Sha1Hex("");
  EXPECT_EQ(std::string(empty.data(), 40), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  auto parsed = ParseShaHex("DA39A3EE5E6B4B0D3255BFEF95601890AFD80709");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, empty);
  EXPECT_FALSE(ParseShaHex("da39a3ee"));
  EXPECT_FALSE(ParseShaHex("zz39a3ee5e6b4b0d3255bfef95601890afd80709"));
}

TEST(ScriptCatalog, LearnFindRememberAndBound) {
  ScriptCatalog catalog(/*max_scripts=*/2);
  const std::string body =
      "--[[\n  Move job from active to a finished status (completed or failed)\n"
      "    KEYS[14] marker key\n]]\nrcall('XADD')";
  auto id = catalog.LearnBody(body);
  ASSERT_TRUE(id);
  const ShaHex sha = Sha1Hex(body);
  ASSERT_NE(catalog.Find(sha), nullptr);
  EXPECT_EQ(catalog.Find(sha)->op, ScriptOp::kMoveToFinished);
  // A shape match never replaces what a body said.
  ScriptIdentity shaped{Family::kBull, ScriptOp::kPromote, "promote", 5, IdentifiedBy::kShape};
  catalog.Remember(sha, shaped);
  EXPECT_EQ(catalog.Find(sha)->op, ScriptOp::kMoveToFinished);
  // Unknown bodies are not stored.
  EXPECT_FALSE(catalog.LearnBody("return 1"));
  EXPECT_EQ(catalog.size(), 1u);
  catalog.Remember(Sha1Hex("a"), shaped);
  catalog.Remember(Sha1Hex("b"), shaped);
  EXPECT_EQ(catalog.size(), 2u);
  EXPECT_EQ(catalog.dropped(), 1u);
}

// One call shape per interpreted script of each release, as they appear in the captures.
TEST(ScriptCatalog, ShapesOfBullMQ) {
  struct Case {
    std::vector<std::string> keys;
    std::string_view name;
  };
  const Case cases[] = {
      {Tokens(
           {"wait", "paused", "meta", "id", "completed", "delayed", "active", "events", "marker"}),
       "addStandardJob"},
      {Tokens({"marker", "meta", "id", "delayed", "completed", "events"}), "addDelayedJob"},
      {Tokens({"marker", "meta", "id", "prioritized", "delayed", "completed", "active", "events",
               "pc"}),
       "addPrioritizedJob"},
      {Tokens({"meta", "id", "delayed", "waiting-children", "completed", "events"}, "{bq}:emails:"),
       "addParentJob"},
      {Tokens({"repeat", "delayed", "wait", "paused", "meta", "prioritized", "marker", "id",
               "events", "pc", "active"}),
       "addJobScheduler"},
      {Tokens({"repeat", "delayed", "wait", "paused", "meta", "prioritized", "marker", "id",
               "events", "pc", "repeat:every-700ms:1795418749953", "active"}),
       "updateJobScheduler"},
      {Tokens({"wait", "active", "prioritized", "events", "stalled", "limiter", "delayed", "paused",
               "meta", "pc", "marker"}),
       "moveToActive"},
      {Tokens({"wait", "active", "prioritized", "events", "stalled", "limiter", "delayed", "paused",
               "meta", "pc", "failed", "job-1", "metrics:failed", "marker"}),
       "moveToFinished"},
      {Tokens({"marker", "active", "prioritized", "delayed", "job-1", "events", "meta", "stalled",
               "wait", "limiter", "pc"}),
       "moveToDelayed"},
      {Tokens({"marker", "active", "prioritized", "delayed", "job-1", "events", "meta", "stalled",
               "wait", "limiter", "paused", "pc"}),
       "moveToDelayed"},
      {Tokens({"active", "wait", "paused", "job-1", "meta", "events", "delayed", "prioritized",
               "pc", "marker", "stalled"}),
       "retryJob"},
      {Tokens(
           {"job-1", "events", "failed", "wait", "meta", "active", "marker", "prioritized", "pc"}),
       "reprocessJob"},
      {Tokens({"job-1", "events", "completed", "wait", "meta", "paused", "active", "marker"}),
       "reprocessJob"},
      {Tokens({"stalled", "wait", "active", "stalled-check", "meta", "paused", "marker", "events",
               "repeat"}),
       "moveStalledJobsToWait"},
      {Tokens({"active", "wait", "stalled", "paused", "meta", "limiter", "prioritized", "marker",
               "events"}),
       "moveJobFromActiveToWait"},
      {Tokens({"active", "waiting-children", "p1", "p1:dependencies", "p1:unsuccessful", "stalled",
               "events"}),
       "moveToWaitingChildren"},
      {Tokens({"delayed", "wait", "paused", "meta", "prioritized", "active", "pc", "events",
               "marker"}),
       "promote"},
      {Tokens({"job-1", "events", "meta"}), "updateProgress"},
      {Tokens({"job-1", "repeat"}), "removeJob"},
      {Tokens({"completed", "events", "repeat"}), "cleanJobsInSet"},
      {Tokens({"wait", "paused", "delayed", "prioritized", "repeat"}), "drain"},
      {Tokens({"meta", ""}), "obliterate"},
      {Tokens({"paused", "wait", "meta", "prioritized", "events", "delayed", "marker"}), "pause"},
  };
  for (const Case& c : cases) {
    auto id = Shape(c.keys);
    ASSERT_TRUE(id) << c.name;
    EXPECT_EQ(id->name, c.name);
    EXPECT_EQ(id->family, Family::kBullMQ) << c.name;
    EXPECT_EQ(id->by, IdentifiedBy::kShape);
  }
}

TEST(ScriptCatalog, ShapesOfBull) {
  struct Case {
    std::vector<std::string> keys;
    std::string_view name;
    size_t argc = 0;
  };
  const Case cases[] = {
      {Tokens({"wait", "paused", "meta-paused", "id", "delayed", "priority"}), "addJob"},
      {Tokens({"wait", "active", "priority", "active@e2e3", "stalled", "limiter", "delayed",
               "drained"}),
       "moveToActive"},
      {Tokens({"active", "completed", "job-1", "wait", "priority", "active@e2e3", "delayed",
               "stalled", "metrics:completed"}),
       "moveToFinished"},
      {Tokens({"active", "delayed", "job-1", "stalled"}), "moveToDelayed"},
      {Tokens({"active", "wait", "job-1", "meta-paused", "paused", "stalled", "priority"}),
       "retryJob"},
      {Tokens({"job-1", "job-1:lock", "failed", "wait", "meta-paused", "paused"}), "reprocessJob"},
      {Tokens({"stalled", "wait", "active", "failed", "stalled-check", "meta-paused", "paused"}),
       "moveStalledJobsToWait"},
      {Tokens({"delayed", "wait", "paused", "meta-paused", "priority"}), "promote"},
      {Tokens({"wait", "paused", "meta-paused", "paused", "meta"}), "pause"},
      {Tokens({"paused", "wait", "meta-paused", "resumed", "meta"}), "pause"},
      {Tokens({"active", "wait", "delayed", "paused", "completed", "failed", "priority", "job-1",
               "job-1:logs", "limiter", ""}),
       "removeJob"},
      {Tokens({"job-1", "progress"}), "updateProgress"},
      {Tokens({"completed", "priority", "limiter"}), "cleanJobsInSet"},
      {Tokens({"meta-paused", ""}), "obliterate"},
      {Tokens({"job-1"}), "saveStacktrace", 3},
  };
  for (const Case& c : cases) {
    auto id = Shape(c.keys, c.argc);
    ASSERT_TRUE(id) << c.name;
    EXPECT_EQ(id->name, c.name);
    EXPECT_EQ(id->family, Family::kBull) << c.name;
  }
}

TEST(ScriptCatalog, ShapesThatMustNotMatch) {
  EXPECT_FALSE(Shape(Tokens({"job-1"}), 1));             // updateData-1: not saveStacktrace
  EXPECT_FALSE(Shape(Tokens({"job-1", "job-1:logs"})));  // addLog
  EXPECT_FALSE(Shape(Tokens({"stalled"})));              // extendLocks
  EXPECT_FALSE(Shape(Tokens({""})));                     // getCounts
  // Right suffixes, wrong prefix: not ours.
  EXPECT_FALSE(Shape(Tokens({"job-1", "events", "meta"}, "other:q:")));
  // One key short.
  EXPECT_FALSE(
      Shape(Tokens({"wait", "paused", "meta", "id", "completed", "delayed", "active", "events"})));
}

}  // namespace
}  // namespace respscope::analytics::jobs
