// fault_pkcs11_control.h: driving shaken_fault_pkcs11 (fault_pkcs11.h) from a test or benchmark.
//
// In process: load the module with hsm::Module::Load(SHAKEN_FAULT_P11_MODULE), then
// FaultP11::Attach(SHAKEN_FAULT_P11_MODULE) reaches the same instance. Out of process (shakend as
// a child): give the child SHAKEN_FAULT_P11_CONTROL and SHAKEN_FAULT_P11_STATS in its environment,
// change faults with WriteFaultP11Control and read counters with ReadFaultP11Stats.
#ifndef SHAKEN_TESTS_TESTING_FAULT_PKCS11_CONTROL_H_
#define SHAKEN_TESTS_TESTING_FAULT_PKCS11_CONTROL_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/fault_pkcs11.h"

namespace shaken::testing {

// FaultP11 is a handle on the shaken_fault_pkcs11 instance loaded in this process. Thread-safe
// (the module's functions are). Copyable; the module is never unloaded.
class FaultP11 {
 public:
  // Attach finds the module at `path` among those this process already loaded (dlopen with
  // RTLD_NOLOAD): FAILED_PRECONDITION when it is not loaded yet or lacks the fault API.
  static absl::StatusOr<FaultP11> Attach(const std::string& path);

  ShakenFaultP11Stats Stats() const;
  // Reset zeroes the counters (see shaken_fault_p11_reset).
  void Reset() const;
  // Configure applies key=value lines at once ("sign_delay_us=30000\ntoken_gone=0").
  // INVALID_ARGUMENT (nothing applied) when a line is bad.
  absl::Status Configure(std::string_view lines) const;

 private:
  ShakenFaultP11StatsFn stats_ = nullptr;
  ShakenFaultP11ResetFn reset_ = nullptr;
  ShakenFaultP11ConfigureFn configure_ = nullptr;
};

// WriteFaultP11Control replaces the control file at `path` atomically (temp file + rename) with
// `lines`; the module applies it within a few milliseconds.
absl::Status WriteFaultP11Control(const std::string& path, std::string_view lines);

// ReadFaultP11Stats parses a stats file written by the module. NOT_FOUND when it does not exist
// yet, INVALID_ARGUMENT when a line is not a known counter.
absl::StatusOr<ShakenFaultP11Stats> ReadFaultP11Stats(const std::string& path);

// WaitForFaultP11Stats re-reads the stats file until `done` holds or `timeout` passes; returns the
// last stats read, or DEADLINE_EXCEEDED naming the last read error.
absl::StatusOr<ShakenFaultP11Stats> WaitForFaultP11Stats(
    const std::string& path, const std::function<bool(const ShakenFaultP11Stats&)>& done,
    absl::Duration timeout);

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_FAULT_PKCS11_CONTROL_H_
