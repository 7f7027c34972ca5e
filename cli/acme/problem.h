// problem.h: RFC 8555 §6.7 errors. Inside the engine a refusal is an absl::Status carrying the
// ACME error type as a payload; at the HTTP edge it becomes an application/problem+json document
// ({"type":"urn:ietf:params:acme:error:<type>","detail":...,"status":...}) with its HTTP status.
#ifndef SHAKEN_CLI_ACME_PROBLEM_H_
#define SHAKEN_CLI_ACME_PROBLEM_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shaken::acme {

inline constexpr char kProblemPrefix[] = "urn:ietf:params:acme:error:";

// Problem is `status` code and message with the ACME error `type` ("badNonce", "unauthorized",
// ...) attached. The absl code is chosen to match: INVALID_ARGUMENT for malformed input,
// PERMISSION_DENIED for authorization, NOT_FOUND for accountDoesNotExist, ...
absl::Status Problem(absl::string_view type, absl::string_view detail);

// NotFoundProblem is an unknown resource (an order, authorization, ... URL that names nothing):
// HTTP 404 with type malformed.
absl::Status NotFoundProblem(absl::string_view detail);

// ProblemType is the ACME error type of `status`: its payload, else one derived from the code
// (INVALID_ARGUMENT malformed, PERMISSION_DENIED unauthorized, NOT_FOUND malformed,
// FAILED_PRECONDITION malformed, RESOURCE_EXHAUSTED rateLimited, other serverInternal).
std::string ProblemType(const absl::Status& status);

// ProblemHttpStatus is the HTTP status a problem is sent with (RFC 8555 §6.7 examples and
// Boulder's choices: 400 for malformed input and badNonce, 403 unauthorized / orderNotReady,
// 400 accountDoesNotExist, 404 for unknown resources, 500 serverInternal, 503 rate limits).
int ProblemHttpStatus(const absl::Status& status);

// ProblemJson is the problem document of `status`.
std::string ProblemJson(const absl::Status& status);

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_PROBLEM_H_
