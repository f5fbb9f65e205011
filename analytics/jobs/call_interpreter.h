// Turns one identified script call (identity, KEYS, ARGV, parsed reply) into job events.
// Pure: no state, no clocks. The tracker applies the events (job_tracker.h).
//
// The reply decides (bullmq-wire.md section 3): an error reply or a negative status code means
// nothing happened and yields no event. Activation replies (`[flatJobHash, jobId, ...]`) yield
// an `active` event whatever script returned them (moveToActive, moveToFinished/moveToDelayed
// with fetch-next).
//
// ARGV positions are those of bullmq 5.x/6.x and bull 4.x; each handler checks what it reads
// (ids non-empty, timestamps numeric, targets in their expected set) so a release with another
// layout yields fewer events rather than wrong ones.
//
// Lifetime: every string_view in a JobEvent points into the call's arguments or reply buffer.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "analytics/jobs/job_types.h"
#include "analytics/jobs/queue_keys.h"
#include "analytics/jobs/script_catalog.h"
#include "proxy/resp/resp_value.h"

namespace respscope::analytics::jobs {

// What a job's options (add) or a worker's keepJobs (finish) say about keeping finished jobs.
enum class Keep : uint8_t {
  kUnknown,  // not on the wire, or unreadable
  kAll,      // kept forever (no removeOnComplete / removeOnFail, or false; keepJobs count -1)
  kBounded,  // removed at once, or kept up to a count or an age
};

struct JobEvent {
  Transition transition = Transition::kAdded;
  // false: the event only carries data (a failure reason from saveStacktrace), no counter.
  bool counts = true;
  std::string_view job_id;  // empty for queue-level transitions
  std::string_view job_name;
  uint64_t count = 1;  // kCleaned: number of jobs
  int64_t ts_ms = -1;  // application clock (unix ms) of the transition; -1 unknown
  // kWaiting / kDelayed / kPrioritized: when the job becomes runnable (unix ms, application
  // clock); -1 means "now", measured on respscope's clock.
  int64_t ready_ms = -1;
  // kWaitingChildren: the job is not runnable until its children finish (invisibly): no wait
  // sample until it is seen ready again.
  bool not_runnable = false;
  // kCompleted / kFailed / kRetried: an attempt ended (processing time can be measured).
  bool ends_attempt = false;
  std::string_view reason;  // kFailed / kRetried: failure text (NOT sanitised)
  int32_t max_attempts = -1;
  // kActive, from the job hash in the activation reply.
  int64_t processed_ms = -1;
  int64_t created_ms = -1;
  int64_t opts_delay_ms = 0;
  int32_t attempts_started = -1;
  // kAdded: the job's removeOnComplete / removeOnFail. kCompleted / kFailed from
  // moveToFinished: keep_completed or keep_failed from its keepJobs.
  Keep keep_completed = Keep::kUnknown;
  Keep keep_failed = Keep::kUnknown;
};

struct ScriptCall {
  ScriptIdentity identity;
  std::span<const std::string_view> keys;
  std::span<const ParsedKey> parsed_keys;  // parallel to keys
  std::span<const std::string_view> argv;  // argv[0] is ARGV[1]
  const resp::RespValue* reply = nullptr;  // never null when interpreting
};

// Appends the call's events. Returns false when the reply says nothing happened (error, failure
// code, unexpected shape): then no event is appended.
bool InterpretCall(const ScriptCall& call, std::vector<JobEvent>* events);

// Exposed for tests: reads an activation reply `[hash, id, ...]` into an kActive event.
bool ReadActivation(const resp::RespValue& reply, int64_t fallback_processed_ms, JobEvent* event);

}  // namespace respscope::analytics::jobs
