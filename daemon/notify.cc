#include "daemon/notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace shaken::daemon {
namespace {

// One notification; a STATUS= value is one line.
void Send(std::string_view state, std::string_view status = {}) {
  std::string message(state);
  if (!status.empty()) {
    if (!message.empty()) message += '\n';
    std::string line(status);
    std::replace(line.begin(), line.end(), '\n', ' ');
    absl::StrAppend(&message, "STATUS=", line);
  }
  (void)sd_notify(0, message.c_str());
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_interval_ = absl::Microseconds(static_cast<int64_t>(usec));
  }
}

void ServiceNotifier::Ready(std::string_view status) { Send("READY=1", status); }
void ServiceNotifier::Reloading() { Send("RELOADING=1", "reloading"); }
void ServiceNotifier::Stopping(std::string_view status) { Send("STOPPING=1", status); }
void ServiceNotifier::Status(std::string_view status) { Send("", status); }
void ServiceNotifier::Watchdog() { Send("WATCHDOG=1"); }

}  // namespace shaken::daemon
