#include "stir/timer_queue.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace shaken::stir {
namespace {

TEST(TimerQueueTest, RunsInTimeOrderWhateverTheScheduleOrder) {
  TimerQueue q;
  absl::Mutex mu;
  std::vector<int> order;
  absl::Notification all;
  const absl::Time base = absl::Now() + absl::Milliseconds(50);
  for (int i : {3, 1, 2}) {
    q.Schedule(base + absl::Milliseconds(10 * i), [&, i] {
      absl::MutexLock lock(&mu);
      order.push_back(i);
      if (order.size() == 3) all.Notify();
    });
  }
  ASSERT_TRUE(all.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, CancelledCallbacksNeverRunAndPastTimesRunAtOnce) {
  TimerQueue q;
  std::atomic<int> ran{0};
  TimerQueue::Id later = q.Schedule(absl::Now() + absl::Hours(1), [&] { ran += 100; });
  EXPECT_EQ(q.size(), 1u);
  EXPECT_TRUE(q.Cancel(later));
  EXPECT_FALSE(q.Cancel(later));  // already gone
  absl::Notification now;
  q.Schedule(absl::InfinitePast(), [&] {
    ++ran;
    now.Notify();
  });
  ASSERT_TRUE(now.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(ran.load(), 1);
}

TEST(TimerQueueTest, DestroyingTheQueueDropsWhatHasNotRun) {
  std::atomic<int> ran{0};
  {
    TimerQueue q;
    q.Schedule(absl::Now() + absl::Hours(1), [&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 0);
}

}  // namespace
}  // namespace shaken::stir
