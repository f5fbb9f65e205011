// JSON bodies of /api/v1/* built from an immutable engine Snapshot (Boost.JSON). Pure
// functions: no I/O, any thread. Times are unix epoch milliseconds ("*_ms" fields for
// instants) and durations are milliseconds unless the name says otherwise.
#pragma once

#include <string>
#include <vector>

#include "analytics/engine/history.h"
#include "analytics/engine/snapshot.h"

namespace respscope::admin {

std::string OverviewJson(const engine::Snapshot& s);
std::string CommandsJson(const engine::Snapshot& s);
std::string PatternsJson(const engine::Snapshot& s);
std::string HotKeysJson(const engine::Snapshot& s);
std::string SlowLogJson(const engine::Snapshot& s);
std::string ClientsJson(const engine::Snapshot& s);
// {"findings": [{kind, severity, subject, since, since_ms, evidence {window_s, numbers...,
// words...}, recommendation}], "baselines": [...]}.
std::string InsightsJson(const engine::Snapshot& s);
// {"status": healthy|degraded|unhealthy, "score", "reasons", "upstream_up", "findings": counts}.
std::string HealthJson(const engine::Snapshot& s);
// {"spike": {from_ms, to_ms, p99_ms, baseline_p99_ms, baseline_windows} | null, "commands",
// "patterns" (ranked by extra time, ms per second), "clients" (extra commands per second),
// "queues" (extra jobs added per second)}.
std::string CorrelationsJson(const engine::Correlation& c);
std::string HistoryJson(const std::vector<engine::HistoryPoint>& points, int step_s);

}  // namespace respscope::admin
