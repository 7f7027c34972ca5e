// runner.h: the conformance runner's shared types: one case's outcome on each path, the interop
// tallies, and the report writer (report.cc).
#ifndef SHAKEN_CONFORMANCE_RUNNER_H_
#define SHAKEN_CONFORMANCE_RUNNER_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "stir/json.h"

namespace shaken::conformance {

// Outcome is what one path (stir's Verifier, or the daemon's Verify RPC) concluded for a case.
struct Outcome {
  bool ran = false;
  std::string skip_why;     // when !ran
  std::string error;        // a request-level error code ("invalid_argument"), else empty
  bool passed = false;
  int sip_code = 0;
  std::string verstat;
  std::string reason;
  std::string detail;
  std::vector<std::string> header_reasons;
  std::string verstat_priority;           // "RPH-Validation-Passed", ... or ""
  std::vector<std::string> rcd_reasons;   // each RcdResult's reason, in header order
  std::string display_name;               // from the first verified rich call data
  std::string mismatch;     // empty when the outcome matches the expectation
};

// CaseResult is one case, run. status: "pass", "fail", "xfail" (a known stir bug, expected),
// "xpass" (an expected failure that now passes: counted as a failure so the data is updated).
struct CaseResult {
  std::string id, file, kind, title, why;
  std::vector<std::string> requirements;
  stir::Json expect;
  std::string expected_fail;  // why the case is expected to fail, when it is
  Outcome stir, daemon;
  std::string signer_detail;  // kind "signer": what was checked
  std::string status;
  std::string failure;
  // secsipidx -check on the same Identity header with the case's certificate ("accepted",
  // "rejected", or "n/a" with peer_note saying why).
  std::string peer = "n/a";
  std::string peer_note;
};

// InteropCount is one direction / mode of the secsipidx interop.
struct InteropCount {
  std::string name;
  std::string how;
  int passed = 0;
  int total = 0;
  std::vector<std::string> failures;  // the first few, for the report
};

struct Report {
  std::string generated_at;
  std::string command;
  std::vector<CaseResult> cases;
  stir::Json requirements;  // conformance/requirements.json "requirements"
  std::vector<InteropCount> interop;
  std::vector<std::string> interop_notes;
  double seconds = 0;
};

// WriteReport writes <dir>/REPORT.md and <dir>/report.json.
absl::Status WriteReport(const Report& report, const std::string& dir);

// Failed tells whether the report holds any failing case or interop shortfall.
bool Failed(const Report& report);

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_RUNNER_H_
