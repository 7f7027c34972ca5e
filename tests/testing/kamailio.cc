#include "tests/testing/kamailio.h"

#include <signal.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/sip_messages.h"

namespace shaken::testing {

absl::StatusOr<std::unique_ptr<Kamailio>> Kamailio::Start(
    const std::string& cfg, const std::string& dir,
    const std::vector<std::pair<std::string, std::string>>& defines) {
  const int port = FreeLoopbackPort();
  const std::string runtime = absl::StrCat(dir, "/kamailio-", port);
  ::mkdir(runtime.c_str(), 0700);
  std::vector<std::string> argv = {"kamailio", "-DD", "-E", "-m", "32", "-M", "4", "-f", cfg,
                                   "-l", absl::StrCat("udp:127.0.0.1:", port), "-Y", runtime,
                                   "-P", runtime + "/kamailio.pid"};
  for (const auto& [name, value] : defines) {
    argv.push_back("-A");
    argv.push_back(absl::StrCat(name, "=\"", value, "\""));
  }
  absl::StatusOr<Child> child = Child::Start(argv, runtime + "/kamailio.log");
  if (!child.ok()) return child.status();
  std::unique_ptr<Kamailio> k(new Kamailio(*std::move(child), port));
  for (int i = 0; i < 50 && !k->child_.Wait(absl::ZeroDuration()).has_value(); ++i) {
    if (AnswersOptions(port)) return k;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("kamailio did not answer OPTIONS on port ", port, ":\n", k->Log()));
}

bool Kamailio::Stop() {
  if (stopped_) return true;
  stopped_ = true;
  child_.Signal(SIGTERM);
  return child_.Wait(absl::Seconds(10)).has_value();
}

Kamailio::~Kamailio() { Stop(); }

}  // namespace shaken::testing
