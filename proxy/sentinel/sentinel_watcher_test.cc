// The parts of the watcher that need no sentinel: reading +switch-master. The rest is covered
// by tests/integration/test_sentinel.py against real redis-sentinel processes.
#include "proxy/sentinel/sentinel_watcher.h"

#include <gtest/gtest.h>

namespace respscope::sentinel {
namespace {

TEST(SwitchMasterTest, ReadsTheNewAddressOfOurMaster) {
  auto m = ParseSwitchMaster("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster");
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (config::HostPort{"127.0.0.1", 6380}));
  m = ParseSwitchMaster("m ::1 1 2001:db8::7 26379", "m");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->host, "2001:db8::7");
}

TEST(SwitchMasterTest, IgnoresOtherMastersAndMalformedPayloads) {
  EXPECT_FALSE(ParseSwitchMaster("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"));
  EXPECT_FALSE(ParseSwitchMaster("mymaster2 127.0.0.1 6379 127.0.0.1 6380", "mymaster"));
  EXPECT_FALSE(ParseSwitchMaster("mymaster 127.0.0.1 6379 127.0.0.1", "mymaster"));
  EXPECT_FALSE(ParseSwitchMaster("mymaster 127.0.0.1 6379 127.0.0.1 0", "mymaster"));
  EXPECT_FALSE(ParseSwitchMaster("mymaster 127.0.0.1 6379 127.0.0.1 70000", "mymaster"));
  EXPECT_FALSE(ParseSwitchMaster("mymaster 127.0.0.1 6379 127.0.0.1 63x9", "mymaster"));
  EXPECT_FALSE(ParseSwitchMaster("", "mymaster"));
}

}  // namespace
}  // namespace respscope::sentinel
