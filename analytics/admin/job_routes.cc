#include "analytics/admin/job_routes.h"

#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "analytics/jobs/job_tracker.h"

namespace respscope::admin {

namespace {

boost::json::object QueueJson(const analytics::jobs::QueueJobsSnapshot& q,
                              const std::map<std::string, int64_t>* depth) {
  boost::json::object o;
  o["prefix"] = q.prefix;
  o["name"] = q.name;
  boost::json::object t;
  for (size_t i = 0; i < q.transitions.size(); ++i) {
    t[std::string(analytics::jobs::kTransitionNames[i])] = q.transitions[i];
  }
  o["transitions"] = std::move(t);
  auto hist = [](const analytics::jobs::HistogramSnapshot& h) {
    boost::json::object j;
    j["count"] = h.count;
    j["mean_seconds"] = h.count ? h.sum / static_cast<double>(h.count) : 0.0;
    return j;
  };
  o["wait"] = hist(q.wait_seconds);
  o["process"] = hist(q.process_seconds);
  o["attempts"] = hist(q.attempts);
  boost::json::object d;
  if (depth) {
    for (const auto& [state, n] : *depth) d[state] = n;
  }
  o["depth"] = std::move(d);
  return o;
}

boost::json::object JobJson(const analytics::jobs::RecentJobSnapshot& j) {
  boost::json::object o;
  o["prefix"] = j.prefix;
  o["queue"] = j.queue;
  o["label"] = j.prefix == "bull" ? j.queue : j.prefix + ":" + j.queue;
  o["id"] = j.id;
  o["name"] = j.name;
  o["state"] = std::string(analytics::jobs::JobStateName(j.state));
  o["added_ms"] = j.added_ms;
  o["processed_ms"] = j.processed_ms;
  o["finished_ms"] = j.finished_ms;
  o["attempts"] = j.attempts;
  o["failed_reason"] = j.failed_reason;
  o["updated_ms"] = j.updated_unix_ms;
  return o;
}

}  // namespace

void AddJobRoutes(AdminServer* server, const analytics::jobs::JobTracker* tracker,
                  std::function<inspector::QueueDepths()> depths_of) {
  // /api/v1/queues and /api/v1/queues/{name} (name, or prefix:name for other prefixes).
  server->AddRoute("/api/v1/queues", [tracker, depths_of](const HttpRequest& req) {
    HttpResponse res;
    analytics::jobs::JobsSnapshot snap = tracker->Snapshot();
    std::string want;
    if (req.path.size() > std::string_view("/api/v1/queues/").size()) {
      want = req.path.substr(std::string_view("/api/v1/queues/").size());
    }
    const inspector::QueueDepths depths = depths_of();
    boost::json::array queues;
    for (const auto& q : snap.queues) {
      std::string full = q.prefix + ":" + q.name;
      if (!want.empty() && want != q.name && want != full) continue;
      auto it = depths.find(full);
      queues.push_back(QueueJson(q, it == depths.end() ? nullptr : &it->second));
    }
    if (!want.empty()) {
      if (queues.empty()) {
        res.status = 404;
        res.body = R"({"error":"no such queue"})";
      } else {
        res.body = boost::json::serialize(queues[0]);
      }
      return res;
    }
    boost::json::object o;
    o["queues"] = std::move(queues);
    res.body = boost::json::serialize(o);
    return res;
  });
  server->AddRoute("/api/v1/jobs/recent", [tracker](const HttpRequest& req) {
    HttpResponse res;
    analytics::jobs::JobsSnapshot snap = tracker->Snapshot();
    auto q = req.query.find("queue");
    auto st = req.query.find("state");
    boost::json::array jobs;
    for (const auto& j : snap.recent) {
      // queue= takes the metrics label ("name" for prefix bull, else "prefix:name"), the
      // full "prefix:name", or the bare name (any prefix).
      if (q != req.query.end() && q->second != j.queue && q->second != j.prefix + ":" + j.queue) {
        continue;
      }
      if (st != req.query.end() && st->second != analytics::jobs::JobStateName(j.state)) continue;
      jobs.push_back(JobJson(j));
    }
    boost::json::object o;
    o["jobs"] = std::move(jobs);
    res.body = boost::json::serialize(o);
    return res;
  });
}

}  // namespace respscope::admin
