// timer_queue.h: TimerQueue runs callbacks at given times on one thread of its own. It is how the
// asynchronous paths (a verification waiting on a fetch, a signature waiting for a session) give a
// caller its answer when its deadline passes, without a thread per waiter.
#ifndef SHAKEN_STIR_TIMER_QUEUE_H_
#define SHAKEN_STIR_TIMER_QUEUE_H_

#include <cstdint>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace shaken::stir {

// TimerQueue: Schedule a callback for a time; Cancel it before it runs. Callbacks run one at a
// time on the queue's thread (started on first use) and must not block. Thread-safe. Destroying
// the queue drops the callbacks that have not run.
class TimerQueue {
 public:
  using Id = uint64_t;

  TimerQueue() = default;
  ~TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Schedule runs `fn` at `when` (at once, on the queue's thread, when `when` has passed).
  Id Schedule(absl::Time when, absl::AnyInvocable<void() &&> fn);
  // Cancel removes a callback that has not started; false when it ran, runs or is unknown.
  bool Cancel(Id id);
  // size is the number of callbacks waiting.
  size_t size() const;

 private:
  using Key = std::pair<absl::Time, Id>;
  void Run();

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<Key, absl::AnyInvocable<void() &&>> timers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<Id, absl::Time> when_ ABSL_GUARDED_BY(mu_);
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_TIMER_QUEUE_H_
