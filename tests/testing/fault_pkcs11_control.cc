#include "tests/testing/fault_pkcs11_control.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace shaken::testing {

absl::StatusOr<FaultP11> FaultP11::Attach(const std::string& path) {
  // The handle is never closed: the module is linked -z nodelete, and it keeps the count above 0.
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (dl == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not loaded in this process (hsm::Module::Load it first)"));
  }
  FaultP11 f;
  f.stats_ = reinterpret_cast<ShakenFaultP11StatsFn>(dlsym(dl, "shaken_fault_p11_stats"));
  f.reset_ = reinterpret_cast<ShakenFaultP11ResetFn>(dlsym(dl, "shaken_fault_p11_reset"));
  f.configure_ =
      reinterpret_cast<ShakenFaultP11ConfigureFn>(dlsym(dl, "shaken_fault_p11_configure"));
  if (f.stats_ == nullptr || f.reset_ == nullptr || f.configure_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not shaken_fault_pkcs11"));
  }
  return f;
}

ShakenFaultP11Stats FaultP11::Stats() const {
  ShakenFaultP11Stats s{};
  stats_(&s);
  return s;
}

void FaultP11::Reset() const { reset_(); }

absl::Status FaultP11::Configure(std::string_view lines) const {
  if (configure_(std::string(lines).c_str()) < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("fault module refused: ", absl::string_view(lines.data(), lines.size())));
  }
  return absl::OkStatus();
}

absl::Status WriteFaultP11Control(const std::string& path, std::string_view lines) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << lines << "\n";
    f.close();
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<ShakenFaultP11Stats> ReadFaultP11Stats(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::NotFoundError(absl::StrCat("no stats file ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  ShakenFaultP11Stats s{};
  const std::pair<const char*, uint64_t*> fields[] = {
      {"sign_calls", &s.sign_calls},
      {"sign_init_calls", &s.sign_init_calls},
      {"open_session_calls", &s.open_session_calls},
      {"login_calls", &s.login_calls},
      {"injected_failures", &s.injected_failures},
      {"gone_refusals", &s.gone_refusals},
      {"sign_in_flight", &s.sign_in_flight},
      {"sign_max_in_flight", &s.sign_max_in_flight},
      {"control_loads", &s.control_loads},
  };
  for (absl::string_view line : absl::StrSplit(ss.str(), '\n', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    bool known = false;
    for (const auto& [name, field] : fields) {
      if (kv.first == name && absl::SimpleAtoi(kv.second, field)) known = true;
    }
    if (!known) return absl::InvalidArgumentError(absl::StrCat(path, ": bad line \"", line, "\""));
  }
  return s;
}

absl::StatusOr<ShakenFaultP11Stats> WaitForFaultP11Stats(
    const std::string& path, const std::function<bool(const ShakenFaultP11Stats&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<ShakenFaultP11Stats> s;
  while (true) {
    s = ReadFaultP11Stats(path);
    if (s.ok() && done(*s)) return s;
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("fault module stats in ", path, " did not reach the expected state in ",
                   absl::FormatDuration(timeout),
                   s.ok() ? "" : absl::StrCat(" (", s.status().message(), ")")));
}

}  // namespace shaken::testing
