// Which BullMQ / Bull script a SHA1 is.
//
// Two ways to know (bullmq-wire.md section 1):
//  1. From the body, when respscope sees it (EVAL, SCRIPT LOAD): every shipped script starts
//     with a `--[[` header whose first line names the operation ("Move job from active to a
//     finished status (completed or failed)"). That line, plus a few tie-breakers, identifies the
//     script across releases; SHAs and numkeys drift every release, header lines do not.
//     BullMQ bodies emit events with XADD, Bull bodies never do: that tells the family apart
//     where both use the same header line (moveToFinished, addJob/addStandardJob, ...).
//  2. From the shape of the KEYS of a call, for an EVALSHA whose body respscope never saw
//     (respscope started after the application loaded its scripts): the sequence of key
//     suffixes (`wait paused meta id completed delayed active events marker`) is specific to
//     each script of each release. The table covers bullmq 5.x (5.81.5), 6.x (6.7.0) and
//     bull 4.x (4.16.5); other releases are identified when their bodies are seen.
//
// Fingerprint rules were derived from the scripts shipped in the npm packages (see
// tests/e2e/node/package.json); script_catalog_test.cc checks every shipped body and its SHA1
// (tests/fixtures/sha-maps).
//
// Thread: not thread-safe; JobTracker serialises access.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "analytics/jobs/queue_keys.h"

namespace respscope::analytics::jobs {

enum class Family : uint8_t { kUnknown, kBull, kBullMQ };
std::string_view FamilyName(Family f);  // "unknown", "bull", "bullmq"

// The operations the job tracker interprets. Everything else that is recognised (getCounts,
// extendLock, addLog, ...) is kOther: named, but no transition.
enum class ScriptOp : uint8_t {
  kOther,
  kAddStandardJob,      // BullMQ
  kAddDelayedJob,       // BullMQ
  kAddPrioritizedJob,   // BullMQ
  kAddParentJob,        // BullMQ
  kAddJob,              // Bull (one script for all kinds)
  kAddJobScheduler,     // BullMQ
  kUpdateJobScheduler,  // BullMQ
  kMoveToActive,
  kMoveToFinished,
  kMoveToDelayed,
  kRetryJob,
  kReprocessJob,
  kMoveStalledJobsToWait,
  kMoveJobFromActiveToWait,  // BullMQ
  kMoveToWaitingChildren,    // BullMQ
  kPromote,
  kUpdateProgress,
  kRemoveJob,
  kCleanJobsInSet,
  kDrain,  // BullMQ Queue.drain()
  kObliterate,
  kPause,
  kSaveStacktrace,
};

enum class IdentifiedBy : uint8_t { kBody, kShape };

struct ScriptIdentity {
  Family family = Family::kUnknown;
  ScriptOp op = ScriptOp::kOther;
  std::string_view name;  // static storage: "moveToFinished", "addStandardJob", ...
  int numkeys = 0;        // from the header (body) or the call (shape)
  IdentifiedBy by = IdentifiedBy::kBody;
};

// Lowercase 40-hex SHA1 of a script body, as EVALSHA sends it.
using ShaHex = std::array<char, 40>;
ShaHex Sha1Hex(std::string_view body);
// Normalises an EVALSHA argument (any case); nullopt if not 40 hex digits.
std::optional<ShaHex> ParseShaHex(std::string_view arg);

// Identifies a body by its header alone (no SHA, no state). nullopt if it is not a known
// BullMQ / Bull script.
std::optional<ScriptIdentity> IdentifyBody(std::string_view body);

// Identifies a call by the tokens of its KEYS (see QueueKeyParser) and, for a few scripts whose
// KEYS alone are ambiguous, the ARGV count. nullopt if no known shape matches.
std::optional<ScriptIdentity> IdentifyShape(std::span<const KeyToken> keys,
                                            std::span<const std::string_view> argv);

class ScriptCatalog {
 public:
  // A catalog is bounded: BullMQ ships ~70 scripts per release; 4096 covers many releases and
  // applications side by side. Beyond it new SHAs are not remembered (counted).
  explicit ScriptCatalog(size_t max_scripts = 4096) : max_scripts_(max_scripts) {}

  // Learns a body seen in EVAL / SCRIPT LOAD. Returns its identity, or nullopt when the body is
  // not a known script (then nothing is stored). Only bodies that start with `--[[` are hashed.
  std::optional<ScriptIdentity> LearnBody(std::string_view body);
  // Same, when the SHA is already known (e.g. SCRIPT LOAD's reply): saves hashing.
  std::optional<ScriptIdentity> LearnBody(const ShaHex& sha, std::string_view body);
  // Stores what IdentifyBody() said about a body with this SHA (computed by the caller, e.g.
  // outside a lock).
  void Learn(const ShaHex& sha, const ScriptIdentity& body_identity);

  // A SHA learned from a body, or from an earlier shape match (Remember).
  const ScriptIdentity* Find(const ShaHex& sha) const;

  // Remembers a shape-derived identity for a SHA so later calls skip matching. Never replaces a
  // body-derived identity.
  void Remember(const ShaHex& sha, const ScriptIdentity& identity);

  size_t size() const { return by_sha_.size(); }
  uint64_t dropped() const { return dropped_; }

 private:
  struct ShaHash {
    size_t operator()(const ShaHex& s) const noexcept {
      return std::hash<std::string_view>{}(std::string_view(s.data(), s.size()));
    }
  };
  void Store(const ShaHex& sha, const ScriptIdentity& identity);

  size_t max_scripts_;
  std::unordered_map<ShaHex, ScriptIdentity, ShaHash> by_sha_;
  uint64_t dropped_ = 0;
};

}  // namespace respscope::analytics::jobs
