// The side channel's retry backoff: starts small, doubles, never beyond kRetryMax or the
// interval.
#include "analytics/inspector/inspector.h"

#include <gtest/gtest.h>

namespace respscope::inspector {
namespace {

using std::chrono::milliseconds;

TEST(RetryDelayTest, DoublesUpToTheCap) {
  const milliseconds interval(30000);
  EXPECT_EQ(RetryDelay(1, interval), milliseconds(250));
  EXPECT_EQ(RetryDelay(2, interval), milliseconds(500));
  EXPECT_EQ(RetryDelay(3, interval), milliseconds(1000));
  EXPECT_EQ(RetryDelay(5, interval), milliseconds(4000));
  EXPECT_EQ(RetryDelay(6, interval), kRetryMax);
  EXPECT_EQ(RetryDelay(1000000, interval), kRetryMax);
}

TEST(RetryDelayTest, NeverSlowerThanTheInterval) {
  EXPECT_EQ(RetryDelay(1, milliseconds(500)), milliseconds(250));
  EXPECT_EQ(RetryDelay(2, milliseconds(500)), milliseconds(500));
  EXPECT_EQ(RetryDelay(9, milliseconds(500)), milliseconds(500));
  EXPECT_EQ(RetryDelay(9, milliseconds(5000)), milliseconds(5000));
}

}  // namespace
}  // namespace respscope::inspector
