#include "stir/timer_queue.h"

#include "absl/time/clock.h"

namespace shaken::stir {

TimerQueue::~TimerQueue() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

TimerQueue::Id TimerQueue::Schedule(absl::Time when, absl::AnyInvocable<void() &&> fn) {
  absl::MutexLock lock(&mu_);
  const Id id = next_id_++;
  const bool earliest = timers_.empty() || Key{when, id} < timers_.begin()->first;
  timers_.emplace(Key{when, id}, std::move(fn));
  when_.emplace(id, when);
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { Run(); });
  } else if (earliest) {
    cv_.Signal();
  }
  return id;
}

bool TimerQueue::Cancel(Id id) {
  absl::AnyInvocable<void() &&> dropped;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = when_.find(id);
  if (it == when_.end()) return false;
  auto t = timers_.find(Key{it->second, id});
  dropped = std::move(t->second);
  timers_.erase(t);
  when_.erase(it);
  return true;
}

size_t TimerQueue::size() const {
  absl::MutexLock lock(&mu_);
  return timers_.size();
}

void TimerQueue::Run() {
  mu_.Lock();
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.Wait(&mu_);
      continue;
    }
    auto first = timers_.begin();
    if (first->first.first > absl::Now()) {
      cv_.WaitWithDeadline(&mu_, first->first.first);
      continue;
    }
    absl::AnyInvocable<void() &&> fn = std::move(first->second);
    when_.erase(first->first.second);
    timers_.erase(first);
    mu_.Unlock();
    std::move(fn)();
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace shaken::stir
