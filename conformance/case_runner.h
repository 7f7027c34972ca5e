// case_runner.h: one verification case of conformance/cases/*.json, run through stir's Verifier
// (a real X5uCertificateSource fetching from the HTTPS x5u server on 127.0.0.1), through the
// daemon's Verify RPC where the case fits its configuration, and through `secsipidx -check`
// where that can judge it; then judged against the case's expectation.
#ifndef SHAKEN_CONFORMANCE_CASE_RUNNER_H_
#define SHAKEN_CONFORMANCE_CASE_RUNNER_H_

#include "absl/status/status.h"
#include "conformance/harness.h"
#include "conformance/runner.h"

namespace shaken::conformance {

// What a case's secsipidx comparison says when secsipidx is not installed.
inline constexpr char kNoSecsipidx[] =
    "secsipidx is not installed (Debian package secsipidx): comparison skipped";

// RunCase runs case `c` on every path and fills `out` (its id is set); errors are set-up
// failures of the case itself.
absl::Status RunCase(Harness* h, const Json& c, CaseResult* out);

// Judge sets r->status ("pass", "fail", "xfail", "xpass") and r->failure from the outcomes.
void Judge(CaseResult* r);

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_CASE_RUNNER_H_
