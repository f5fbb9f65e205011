// Exports and reports: the same sanitised data as the JSON API, in forms made for keeping.
//   GET /api/v1/export?format=json     one document: overview, commands, patterns, hot keys,
//                                      slow log, clients
//   GET /api/v1/export?format=ndjson   one JSON object per line, each with a "type"
//   GET /api/v1/export?format=csv      one row per command and per pattern
//   GET /api/v1/report?format=html     a self-contained HTML page to save or mail
// Everything is built from the api.h documents, so the sanitisation of the API covers these
// by construction. Thread: any (reads an immutable snapshot).
#pragma once

#include <string>

#include "analytics/engine/snapshot.h"

namespace respscope::admin {

std::string ExportJson(const engine::Snapshot& s);
std::string ExportNdjson(const engine::Snapshot& s);
std::string ExportCsv(const engine::Snapshot& s);
std::string ReportHtml(const engine::Snapshot& s);

}  // namespace respscope::admin
