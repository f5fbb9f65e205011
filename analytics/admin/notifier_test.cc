#include "analytics/admin/notifier.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace respscope::admin {
namespace {

engine::AlertEvent Event(const char* status) {
  engine::AlertEvent e;
  e.status = status;
  e.alert = {"low_hit_rate", "warning", "hit_rate", "user:*", 0.42, 0.8, 1000};
  e.time_ms = 2000;
  return e;
}

TEST(Notifier, WebhookBodyCarriesTheAlertAndNothingElse) {
  auto v = boost::json::parse(WebhookBody(Event("firing"))).as_object();
  EXPECT_EQ(v.at("status").as_string(), "firing");
  EXPECT_EQ(v.at("alert").as_string(), "low_hit_rate");
  EXPECT_EQ(v.at("severity").as_string(), "warning");
  EXPECT_EQ(v.at("selector").as_string(), "user:*");
  EXPECT_DOUBLE_EQ(v.at("value").as_double(), 0.42);
  EXPECT_EQ(v.at("since_ms").as_int64(), 1000);
  EXPECT_EQ(v.size(), 10u);
}

TEST(Notifier, SlackBodyIsOneText) {
  auto v = boost::json::parse(SlackBody(Event("resolved"))).as_object();
  ASSERT_EQ(v.size(), 1u);
  std::string text(v.at("text").as_string());
  EXPECT_NE(text.find("RESOLVED"), std::string::npos);
  EXPECT_NE(text.find("low_hit_rate"), std::string::npos);
}

TEST(Notifier, HmacSha256MatchesRfc4231) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Notifier, FailedDeliveriesAreCountedAfterBoundedRetries) {
  ChannelOptions o;
  o.name = "dead";
  o.url = "http://127.0.0.1:1/hook";  // nothing listens on port 1
  o.max_attempts = 3;
  o.backoff = std::chrono::milliseconds(1);
  o.timeout = std::chrono::milliseconds(500);
  o.min_severity = 0;
  Notifier n({o});
  n.Enqueue({Event("firing")});
  ChannelStats s;
  for (int i = 0; i < 500; ++i) {
    s = n.stats()[0].second;
    if (s.failed == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.retries, 2u);
  EXPECT_EQ(s.sent, 0u);
}

TEST(Notifier, BelowMinSeverityIsNotQueued) {
  ChannelOptions o;
  o.name = "critical-only";
  o.url = "http://127.0.0.1:1/hook";
  o.max_attempts = 1;
  o.min_severity = engine::SeverityRank("critical");
  o.max_queue = 0;  // anything queued would be counted as dropped
  Notifier n({o});
  n.Enqueue({Event("firing")});  // warning
  EXPECT_EQ(n.stats()[0].second.dropped, 0u);
  engine::AlertEvent c = Event("firing");
  c.alert.severity = "critical";
  n.Enqueue({c});
  EXPECT_EQ(n.stats()[0].second.dropped, 1u);
}

}  // namespace
}  // namespace respscope::admin
