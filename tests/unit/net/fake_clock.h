// A net::Clock that moves only when the test says so: timers run in
// deadline order (ties in creation order) while advance() sweeps time
// forward, and the clock reads each timer's deadline while it runs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "guest-kernel/net/clock.h"

namespace net {

class FakeClock : public Clock {
 public:
  uint64_t now_ns() override { return now_; }
  TimerId add_timer(uint64_t delay_ns, std::function<void()> fn) override {
    const TimerId id = next_id_++;
    timers_.emplace(std::make_pair(now_ + delay_ns, id), std::move(fn));
    deadline_[id] = now_ + delay_ns;
    return id;
  }
  void cancel_timer(TimerId id) override {
    auto it = deadline_.find(id);
    if (it == deadline_.end()) return;
    timers_.erase({it->second, id});
    deadline_.erase(it);
  }

  // Runs every timer due up to now + ns (including ones they add).
  void advance(uint64_t ns) {
    const uint64_t end = now_ + ns;
    while (!timers_.empty() && timers_.begin()->first.first <= end) {
      auto node = timers_.extract(timers_.begin());
      now_ = node.key().first;
      deadline_.erase(node.key().second);
      node.mapped()();
    }
    now_ = end;
  }
  // Runs timers until none is left or `limit` ns have passed.
  void run_all(uint64_t limit = 3600ull * 1'000'000'000) {
    const uint64_t end = now_ + limit;
    while (!timers_.empty() && timers_.begin()->first.first <= end) advance(timers_.begin()->first.first - now_);
  }
  size_t pending() const { return timers_.size(); }

 private:
  uint64_t now_ = 1'000'000'000;  // not 0: "time 0" must not be special
  TimerId next_id_ = 1;
  std::map<std::pair<uint64_t, TimerId>, std::function<void()>> timers_;
  std::map<TimerId, uint64_t> deadline_;
};

}  // namespace net
