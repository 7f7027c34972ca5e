// notify.h: tells the service manager what shakend is doing (sd_notify(3), systemd's
// Type=notify protocol): READY=1 once it serves, RELOADING=1 ... READY=1 around a reload,
// STOPPING=1 when it drains, STATUS= lines an operator reads in `systemctl status`, and WATCHDOG=1
// keep-alives when the unit sets WatchdogSec=. Without NOTIFY_SOCKET (not started by systemd, or
// not Type=notify) every call does nothing.
#ifndef SHAKEN_DAEMON_NOTIFY_H_
#define SHAKEN_DAEMON_NOTIFY_H_

#include <string_view>

#include "absl/time/time.h"

namespace shaken::daemon {

class ServiceNotifier {
 public:
  ServiceNotifier();

  // Ready: start-up finished (or a reload did); `status` is the STATUS= line.
  void Ready(std::string_view status);
  // Reloading: a reload begins (SIGHUP); Ready follows.
  void Reloading();
  // Stopping: the drain begins (SIGTERM).
  void Stopping(std::string_view status);
  // Status: a STATUS= line alone (e.g. a profile's token went down or came back).
  void Status(std::string_view status);
  // Watchdog sends WATCHDOG=1. Call at least every watchdog_interval() / 2.
  void Watchdog();

  // watchdog_interval is the unit's WatchdogSec= for this process, or InfiniteDuration when the
  // watchdog is off.
  absl::Duration watchdog_interval() const { return watchdog_interval_; }

 private:
  absl::Duration watchdog_interval_ = absl::InfiniteDuration();
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_NOTIFY_H_
