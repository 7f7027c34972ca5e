#include "cli/acme/problem.h"

#include <optional>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "stir/absl_compat.h"

namespace shaken::acme {
namespace {

constexpr char kPayloadUrl[] = "shaken.acme/problem";
// Not an RFC 8555 type: an unknown resource (HTTP 404) is reported as malformed with this marker.
constexpr char kNotFound[] = "notFound";

absl::StatusCode CodeFor(absl::string_view type) {
  if (type == "unauthorized" || type == "orderNotReady" || type == "rejectedIdentifier" ||
      type == "userActionRequired" || type == "externalAccountRequired") {
    return absl::StatusCode::kPermissionDenied;
  }
  if (type == "accountDoesNotExist" || type == kNotFound) return absl::StatusCode::kNotFound;
  if (type == "rateLimited") return absl::StatusCode::kResourceExhausted;
  if (type == "serverInternal") return absl::StatusCode::kInternal;
  return absl::StatusCode::kInvalidArgument;
}

std::optional<std::string> TypeOf(const absl::Status& status) {
  auto p = status.GetPayload(kPayloadUrl);  // absl::optional in Debian's abseil
  if (!p.has_value()) return std::nullopt;
  return std::string(*p);
}

}  // namespace

absl::Status Problem(absl::string_view type, absl::string_view detail) {
  absl::Status s(CodeFor(type), detail);
  s.SetPayload(kPayloadUrl, absl::Cord(type));
  return s;
}

absl::Status NotFoundProblem(absl::string_view detail) { return Problem(kNotFound, detail); }

std::string ProblemType(const absl::Status& status) {
  if (std::optional<std::string> t = TypeOf(status)) return *t == kNotFound ? "malformed" : *t;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
      return "malformed";
    case absl::StatusCode::kPermissionDenied:
      return "unauthorized";
    case absl::StatusCode::kResourceExhausted:
      return "rateLimited";
    default:
      return "serverInternal";
  }
}

int ProblemHttpStatus(const absl::Status& status) {
  std::optional<std::string> t = TypeOf(status);
  if (t == kNotFound) return 404;
  const std::string type = ProblemType(status);
  if (type == "unauthorized" || type == "orderNotReady" || type == "rejectedIdentifier" ||
      type == "externalAccountRequired") {
    return 403;
  }
  if (type == "badSignatureAlgorithm" || type == "badNonce" || type == "malformed" ||
      type == "badCSR" || type == "accountDoesNotExist" || type == "unsupportedIdentifier" ||
      type == "badPublicKey" || type == "invalidContact") {
    return 400;
  }
  if (type == "rateLimited") return 503;
  return 500;
}

std::string ProblemJson(const absl::Status& status) {
  nlohmann::json j = {{"type", absl::StrCat(kProblemPrefix, ProblemType(status))},
                      {"detail", std::string(status.message())},
                      {"status", ProblemHttpStatus(status)}};
  if (ProblemType(status) == "badSignatureAlgorithm") j["algorithms"] = {"ES256"};
  return j.dump();
}

}  // namespace shaken::acme
