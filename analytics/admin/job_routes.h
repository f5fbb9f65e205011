// The BullMQ / Bull routes of the admin API, from the job tracker and the inspector's queue
// depths:
//   GET /api/v1/queues             every discovered queue: transitions, wait/process/attempts,
//                                  depth per state
//   GET /api/v1/queues/{name}      one queue, by name (any prefix) or prefix:name; 404 if unknown
//   GET /api/v1/jobs/recent        recently changed jobs; ?queue= (label, prefix:name or name)
//                                  and ?state= filter
#pragma once

#include <functional>

#include "analytics/admin/server.h"
#include "analytics/inspector/inspector.h"

namespace respscope::analytics::jobs {
class JobTracker;
}

namespace respscope::admin {

// Adds the routes to server. tracker and whatever depths reads outlive server; the handlers
// call tracker->Snapshot() and depths() on the admin thread.
void AddJobRoutes(AdminServer* server, const analytics::jobs::JobTracker* tracker,
                  std::function<inspector::QueueDepths()> depths);

}  // namespace respscope::admin
